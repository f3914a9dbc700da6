"""The dashboard in a real browser: headless Chromium driven by Playwright against a real
``fairque ui`` process, a real ``fairque worker`` and the test server.

Playwright cannot download its own browser here: the tests use Debian's ``chromium``
(``apt-get install chromium``, as .ci/run does), or the browser named by
``FAIRQUE_TEST_CHROMIUM``, and skip saying so when there is none. Screenshots of each
page go to ``test-artifacts/ui/`` (git-ignored; ``FAIRQUE_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.queue.runs import RunState
from tests.timing import budget, wait_until

from .procs import CLI, REPO_ROOT, Proc, Procs

pytestmark = pytest.mark.slow

UI_DAGS = Path(__file__).parent / "ui_dags"
CHROMIUM_ENV = "FAIRQUE_TEST_CHROMIUM"
ARTIFACTS = Path(os.environ.get("FAIRQUE_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts") / "ui"
GREEN = "#dcfce7"  # the fill of a finished node (fairque.dag.render.STATE_COLORS)


def chromium() -> str | None:
    """Debian's chromium (or the browser ``FAIRQUE_TEST_CHROMIUM`` names)."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return named
    return next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch arguments: the system's chromium, no sandbox (CI runs
    as root)."""
    path = chromium()
    if path is None:
        pytest.skip(
            "no Chromium for the browser tests: apt-get install chromium, or set "
            f"{CHROMIUM_ENV} to a Chromium binary (Playwright cannot download one here)"
        )
    return {"executable_path": path, "args": ["--no-sandbox"], "headless": True}


def outside_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one: no
    packet is sent, connecting a UDP socket only picks the address."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, never needed
            address: str = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(url: str, **headers: str) -> int | None:
    """The HTTP status of a GET (None while nothing listens)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=budget(2)) as r:
            status: int = r.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def start_ui(procs: Procs, name: str, *options: str, env: dict[str, str] | None = None) -> Proc:
    argv = [*CLI, "ui", "--redis-url", procs.redis_url, "--dags-folder", str(UI_DAGS), *options]
    if env:
        os.environ.update(env)
    try:
        return procs.start(name, argv)
    finally:
        for key in env or {}:
            os.environ.pop(key, None)


@pytest.fixture
def ui(procs: Procs) -> Iterator[str]:
    """A ``fairque ui`` process and a worker; yields the dashboard's base URL."""
    procs.worker("ui-browser-worker")
    port = free_port()
    proc = start_ui(procs, "ui", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: answers(f"{base}/api/v1/workers") == 200 or not proc.alive(),
        30,
        lambda: f"the dashboard to answer{procs.tails()}",
    )
    assert proc.alive(), procs.tails()
    wait_until(lambda: b"ui-browser-worker" in _get(f"{base}/api/v1/workers"), 30, "the worker")
    yield base


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=budget(5)) as r:
        body: bytes = r.read()
        return body


@pytest.fixture
def queue(make_config: Any) -> Iterator[TaskQueue]:
    config: FairQueueConfig = make_config()
    with TaskQueue(config) as q:
        yield q


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def all_green(page: Any) -> bool:
    fills: list[str] = page.eval_on_selector_all(
        "#run-graph g.node path, #run-graph g.node polygon",
        "els => els.map(e => e.getAttribute('fill'))",
    )
    return bool(fills) and all(f == GREEN for f in fills)


def test_overview_trigger_follow_and_logs(ui: str, page: Any, queue: TaskQueue) -> None:
    queue.push(Task.create("waiting-tenant", func="tests.integration.ui_tasks:slow", priority=2))
    page.set_default_timeout(budget(15) * 1000)
    page.goto(ui + "/")
    assert page.title() == "Overview · fairque"
    page.get_by_text("waiting-tenant").first.wait_for()
    shot(page, "overview")
    page.goto(ui + "/workers")
    page.get_by_text("ui-browser-worker").first.wait_for()
    shot(page, "workers")
    page.goto(ui + "/dags")
    shot(page, "dags")
    page.click("a.dag-link:text('greeting')")
    page.fill("input[name='param.name']", "Browser")
    page.fill("input[name='param.times']", "3")
    page.select_option("select[name='param.loud']", "true")
    page.select_option("select[name='param.mode']", label="fancy")  # an enum's choice
    shot(page, "dag")
    page.click("#trigger-form button[type=submit]")
    page.wait_for_url("**/runs/greeting__manual__*")
    page.evaluate("window.fairqueMarker = 42")  # gone if the page reloads
    page.wait_for_function(
        "() => [...document.querySelectorAll('#run-tasks tr[data-state]')]"
        ".every(r => r.dataset.state === 'finished')"
    )
    wait_until(lambda: all_green(page), 15, "every node of the graph green")
    assert page.evaluate("window.fairqueMarker") == 42
    assert page.locator("#run-graph svg").count() == 1
    assert "greeting" in page.inner_text("#run-graph")  # the XCom lineage edge's label
    shot(page, "run")
    page.click("a.task-link:text('hello')")
    page.wait_for_selector("#task-log")
    assert page.inner_text("#task-log") == "hello Browser!\n" * 3
    shot(page, "run-task-panel")
    page.click("#run-graph a[*|href$='task=shout']")  # a node of the graph opens its task
    page.wait_for_selector("h2:has-text('Task shout')")
    assert page.inner_text("#task-log") == "(no output)"
    page.go_back()
    page.wait_for_selector("#task-log")
    page.click("a.log-link")
    page.wait_for_selector("h1:has-text('Task')")
    assert "hello Browser!" in page.inner_text("#task-log")
    shot(page, "task")
    run = queue.list_runs("greeting", limit=1)[0]
    assert run.state is RunState.SUCCESS and run.conf["times"] == 3 and run.conf["loud"] is True
    assert run.conf["mode"] == "fancy"


def test_a_failed_task_cleared_from_the_page_then_the_run_succeeds(
    ui: str, page: Any, queue: TaskQueue, tmp_path: Path
) -> None:
    page.set_default_timeout(budget(20) * 1000)
    page.goto(ui + "/dags/flaky")
    page.fill("input[name='param.directory']", str(tmp_path))
    page.click("#trigger-form button[type=submit]")
    page.wait_for_url("**/runs/flaky__manual__*")
    page.wait_for_selector("#run-tasks tr[data-task='middle'][data-state='failed']")
    assert "the flag file is not there yet" in page.inner_text("#run-tasks")
    shot(page, "run-failed")
    (tmp_path / "flag").touch()
    page.click("#clear-failed")
    page.wait_for_selector(".flash.notice")
    page.evaluate("window.fairqueMarker = 7")
    page.wait_for_selector("#run-tasks tr[data-task='last'][data-state='finished']")
    wait_until(lambda: all_green(page), 15, "every node of the graph green")
    assert page.evaluate("window.fairqueMarker") == 7
    run_id = queue.list_runs("flaky", limit=1)[0].run_id
    assert queue.get_run(run_id).state is RunState.SUCCESS


def test_hostile_names_run_no_script(ui: str, page: Any, queue: TaskQueue) -> None:
    bad = '"><img/src=x/onerror=alert(1)><script>alert(2)</script>'
    task = Task.create(
        bad,
        func="tests.integration.ui_tasks:hostile",
        task_id=f"x:{bad}",
        run_id="x",
        name=bad,
        max_retries=0,
    )
    queue.enqueue_tasks([task], "x", dag_id=bad, tenant=bad)
    wait_until(lambda: queue.get_run("x").state is RunState.FAILED, 20, "the hostile run to fail")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(budget(15) * 1000)
    for name, path in [
        ("xss-overview", "/"),
        ("xss-runs", "/runs"),
        ("xss-run", "/runs/x?task=" + urllib.request.quote(bad, safe="")),
        ("xss-task", "/tasks/" + urllib.request.quote(f"x:{bad}", safe="") + "?attempt=1"),
    ]:
        page.goto(ui + path)
        page.wait_for_load_state("load")
        assert page.locator("img").count() == 0, name
        shot(page, name)
    assert bad in page.inner_text("h1")
    assert "alert(1)" in page.inner_text("#task-log")
    assert dialogs == []


def test_a_token_is_needed_on_another_address(procs: Procs, page: Any) -> None:
    port = free_port()
    refused = start_ui(procs, "ui-open", "--host", "0.0.0.0", "--port", str(port))
    assert refused.wait_exit(30) == 1
    assert "give a token" in refused.output()
    proc = start_ui(
        procs,
        "ui-token",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        env={"FAIRQUE_UI_TOKEN": "browser-s3cret"},
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: answers(f"{base}/api/v1/workers") is not None or not proc.alive(),
        30,
        lambda: f"the dashboard to answer{procs.tails()}",
    )
    assert answers(f"{base}/api/v1/workers") == 401
    bearer = {"Authorization": "Bearer browser-s3cret"}
    assert answers(f"{base}/api/v1/workers", **bearer) == 200
    outside = outside_address()
    if outside is not None:  # from another address too (as another machine would come)
        assert answers(f"http://{outside}:{port}/api/v1/workers") == 401
        assert answers(f"http://{outside}:{port}/api/v1/workers", **bearer) == 200
    page.set_default_timeout(budget(15) * 1000)
    page.goto(f"http://{outside or '127.0.0.1'}:{port}/dags")  # the browser from outside
    page.wait_for_url(re.compile(r"/login\?next=/dags$"))
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    page.get_by_text("wrong token").wait_for()
    shot(page, "login")
    page.fill("input[name=token]", "browser-s3cret")
    page.click("button[type=submit]")
    page.wait_for_url("**/dags")
    page.get_by_text("greeting").first.wait_for()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["fairque_auth"]["httpOnly"] and cookies["fairque_auth"]["sameSite"] == "Strict"
    proc.kill_group()
    warned = start_ui(procs, "ui-noauth", "--host", "0.0.0.0", "--port", str(port), "--no-auth")
    wait_until(lambda: "--no-auth" in warned.output(), 30, lambda: warned.tail())
