"""The dashboard's pages, JSON API and actions through Starlette's TestClient against the
test server (a worker thread runs the tasks where a test needs them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from fairque import FairQueueConfig, Task, TaskQueue, TaskState, Worker
from fairque.cli.app import app as cli_app
from fairque.core.tenants import ShareTotals
from fairque.queue.runs import RunState
from fairque.ui import create_app
from tests.integration.ui_tasks import HOSTILE
from tests.timing import wait_until

from .conftest import ConfigFactory, background_worker

UI_DAGS = Path(__file__).parent / "ui_dags"
LOCAL = "http://127.0.0.1:8844"


@pytest.fixture
def config(make_config: ConfigFactory) -> FairQueueConfig:
    return make_config()


@pytest.fixture
def queue(config: FairQueueConfig) -> Iterator[TaskQueue]:
    with TaskQueue(config) as q:
        yield q


def client_for(config: FairQueueConfig, **options: Any) -> TestClient:
    app = create_app(config, **{"dags_folder": UI_DAGS, **options})
    return TestClient(app, base_url=LOCAL, follow_redirects=False)


@pytest.fixture
def client(config: FairQueueConfig) -> Iterator[TestClient]:
    with client_for(config) as c:
        yield c


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    with background_worker(redis_url, "ui-worker", allowed_modules=["tests"]) as running:
        yield running


def csrf(client: TestClient, page: str = "/") -> str:
    """Open a page (which sets the CSRF cookie) and return the token of its forms."""
    client.get(page)
    token = client.cookies.get("fairque_csrf")
    assert token
    return token


def post(client: TestClient, path: str, **form: Any) -> Any:
    data = {"csrf_token": csrf(client), **form}
    return client.post(path, data=data, headers={"Origin": LOCAL})


class _Elements(HTMLParser):
    """Every element a browser would build that could run a script."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        handlers = [name for name, _ in attrs if name.startswith("on")]
        if tag == "img" or handlers or (tag == "script" and not dict(attrs).get("src")):
            self.found.append(f"<{tag} {attrs}>")


def injected(page: str) -> list[str]:
    """The script-running elements of a page (none, for a page that escapes its data)."""
    parser = _Elements()
    parser.feed(page)
    return parser.found


def wait_run(queue: TaskQueue, run_id: str, *states: RunState) -> None:
    wait_until(
        lambda: queue.get_run(run_id).state in states, 20, lambda: f"run {run_id} in {states}"
    )


# --- reading --------------------------------------------------------------------------


def test_pages_answer_with_security_headers(client: TestClient, queue: TaskQueue) -> None:
    queue.push(Task.create("alice", func="tests.integration.ui_tasks:slow"))
    for page in ("/", "/workers", "/dags", "/dags/greeting", "/runs"):
        response = client.get(page)
        assert response.status_code == 200, (page, response.text)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in response.text  # only <script src=...>
    assert "alice" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200


def test_overview_pages_sorts_and_searches_tenants(client: TestClient, queue: TaskQueue) -> None:
    for i in range(12):
        for _ in range(i + 1):
            queue.push(Task.create(f"tenant-{i:02d}", func="x:y", priority=3))
    doc = client.get("/api/v1/overview", params={"per_page": 5}).json()
    assert doc["tenants_total"] == 12 and doc["total"] == 12 and doc["pages"] == 3
    assert [t["user_id"] for t in doc["tenants"]][:2] == ["tenant-11", "tenant-10"]
    assert doc["tenants"][0]["queued"] == 12
    assert doc["tenants"][0]["queued_by_priority"] == {"3": 12}
    assert doc["tenants"][0]["next_task_age"] is not None
    assert doc["states"]["queued"] == sum(range(1, 13))
    page3 = client.get("/api/v1/tenants?per_page=5&page=3&sort=user&order=asc").json()
    assert [t["user_id"] for t in page3["tenants"]] == ["tenant-10", "tenant-11"]

    def ids(**params: Any) -> list[str]:
        tenants = client.get("/api/v1/tenants", params={"per_page": 5, **params}).json()
        return [t["user_id"][-2:] for t in tenants["tenants"]]

    assert ids(page=2) == ["06", "05", "04", "03", "02"]
    assert ids(order="asc") == ["00", "01", "02", "03", "04"]
    assert ids(sort="user", page=1) == ["11", "10", "09", "08", "07"]
    assert ids(sort="running") == ["00", "01", "02", "03", "04"]  # all 0: by id
    queue.push(Task.create("tenant-05", func="x:y", priority=3))  # ties with tenant-06
    assert ids(page=2) == ["05", "06", "04", "03", "02"]
    found = client.get("/api/v1/tenants", params={"search": "NT-0"}).json()
    assert found["total"] == 10
    page = client.get("/", params={"search": "tenant-03"}).text
    assert "tenant-03" in page and "tenant-04" not in page


POLICY_FIGURES = ("weight", "max_running", "rate", "burst", "own", "parked", "queued")
MOVING_FIGURES = ("served_last_minute", "work_last_minute", "tokens", "share", "fair_share")


def test_overview_shows_tenant_policies_as_tenant_list_does(
    client: TestClient, queue: TaskQueue, redis_url: str, monkeypatch: Any
) -> None:
    queue.set_tenant_policy("acme", weight=2, max_running=1)
    queue.set_tenant_policy("globex", rate="1/h", burst=2)
    queue.set_tenant_policy("idle", weight=5)  # a policy, never a task: not competing
    for user in ("acme", "globex", "initech"):
        for _ in range(3):
            queue.push(Task.create(user, func="x:y"))
    popped = [queue.pop() for _ in range(4)]
    assert sorted(r.user_id for r in popped if r) == ["acme", "globex", "globex", "initech"]
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    result = CliRunner().invoke(cli_app, ["tenant", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {t["user_id"]: t for t in json.loads(result.output)["tenants"]}
    doc = client.get("/api/v1/overview", params={"sort": "user", "order": "asc"}).json()
    assert [t["user_id"] for t in doc["tenants"]] == ["acme", "globex", "initech"]
    assert doc["fairness"] == "count" and doc["jain_index"] is not None
    for row in doc["tenants"]:
        cli = listed[row["user_id"]]
        assert {k: row[k] for k in POLICY_FIGURES} == {k: cli[k] for k in POLICY_FIGURES}
        for name in MOVING_FIGURES:  # the sliding minute and the tokens move with time
            assert row[name] == pytest.approx(cli[name], abs=0.02), (row["user_id"], name)
    acme, globex, initech = doc["tenants"]
    assert (acme["running"], acme["max_running"], acme["parked"]) == (1, 1, ["capped"])
    assert acme["fair_share"] == pytest.approx(0.5) and globex["share"] == pytest.approx(0.5)
    assert globex["rate"] == pytest.approx(1 / 3600) and globex["tokens"] < 0.01
    assert initech["served_last_minute"] == 1 and initech["weight"] == 1
    page = client.get("/", params={"sort": "user", "order": "asc"}).text
    row = page[page.index('<td class="tenant">acme</td>') :]
    row = row[: row.index("</tr>")]
    assert "1 / 1" in row and "capped" in row and ">2</td>" in row  # running/cap, weight
    assert "25% of the service of the last minute, fair share 50%" in row
    assert "burst 2" in page and "0.000277778/s" in page


def test_share_totals_summed_on_the_server_are_the_tenant_lists(queue: TaskQueue) -> None:
    assert queue.tenant_share_totals() == ShareTotals()  # no tenant at all
    queue.set_tenant_policy("*", weight=3)
    queue.set_tenant_policy("heavy", weight=0.5)
    queue.set_tenant_policy("idle", weight=7)  # not competing
    for user, n in (("heavy", 6), ("light", 2), ("mid", 3)):
        for _ in range(n):
            queue.push(Task.create(user, func="x:y"))
    for _ in range(7):
        record = queue.pop()
        assert record is not None
        queue.finish(record, None)
    totals = queue.tenant_share_totals()
    listing = queue.list_tenants()
    competing = [
        t for t in listing["tenants"] if t["queued"] or t["running"] or t["served_last_minute"]
    ]
    assert sorted(t["user_id"] for t in competing) == ["heavy", "light", "mid"]
    assert totals.by_time is (listing["fairness"] == "time") is False
    assert totals.weights == pytest.approx(sum(t["weight"] for t in competing)) == 6.5
    assert totals.service == pytest.approx(
        sum(t["served_last_minute"] for t in competing), abs=0.01
    )
    assert totals.jain is not None and listing["jain_index"] is not None
    assert totals.jain == pytest.approx(listing["jain_index"], abs=0.002)
    heavy, idle = queue.tenant_page(["heavy", "idle"], totals)
    assert heavy["share"] == pytest.approx(competing[0]["share"], abs=0.002)
    assert heavy["fair_share"] == competing[0]["fair_share"] == pytest.approx(0.5 / 6.5, abs=1e-4)
    assert idle["fair_share"] == 0 and idle["share"] == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=age", "sort must be one of queued, running, user, not 'age'"),
        ("page=0", "page must be 1 or more, not 0"),
        ("per_page=x", "per_page must be a whole number, not 'x'"),
        ("per_page=100000", "per_page must be at most 500"),
        ("order=up", "order must be asc or desc"),
    ],
)
def test_bad_queries_are_refused_naming_the_problem(
    client: TestClient, query: str, message: str
) -> None:
    response = client.get(f"/api/v1/overview?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert message.split(",")[0] in client.get(f"/?{query}").text


def test_unknown_things_are_404_with_the_cli_text(client: TestClient) -> None:
    assert client.get("/api/v1/runs/nope").status_code == 404
    assert "nope" in client.get("/api/v1/runs/nope").json()["error"]
    assert client.get("/api/v1/tasks/nope").status_code == 404
    assert client.get("/api/v1/dags/nope").status_code == 404
    assert "no DAG with id &#39;nope&#39;" in client.get("/dags/nope").text
    assert client.get("/runs/nope").status_code == 404


def test_api_documents_are_the_cli_json(
    client: TestClient, queue: TaskQueue, worker: Worker, redis_url: str, monkeypatch: Any
) -> None:
    response = post(client, "/dags/greeting/trigger", **{"param.name": "ann", "param.times": "2"})
    assert response.status_code == 303, response.text
    run_id = queue.list_runs("greeting", limit=1)[0].run_id
    assert response.headers["location"].startswith("/runs/greeting__manual__")
    wait_run(queue, run_id, RunState.SUCCESS)
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    monkeypatch.setenv("FAIRQUE_DAGS_FOLDER", str(UI_DAGS))
    runner = CliRunner()

    def cli_json(*args: str) -> Any:
        result = runner.invoke(cli_app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    api_run = client.get(f"/api/v1/runs/{run_id}").json()
    assert api_run == cli_json("run", "show", run_id)
    assert api_run["conf"] == {"name": "ann", "times": 2, "loud": False, "mode": "plain"}
    pulls = [e for e in api_run["lineage"] if e["kind"] == "pull"]
    assert [(e["key"], e["producer"], e["consumer"]) for e in pulls] == [
        ("greeting", "hello", "shout")
    ]
    assert client.get("/api/v1/runs").json()["runs"] == cli_json("run", "list")
    assert client.get("/api/v1/dags").json() == cli_json("dag", "list")
    workers = client.get("/api/v1/workers").json()
    assert [w["id"] for w in workers] == ["ui-worker"]
    task_id = api_run["tasks"]["hello"]["task_id"]
    task = client.get(f"/api/v1/tasks/{task_id}").json()
    assert task["state"] == "finished" and task["result"] == "hello ann"
    attempts = client.get(f"/api/v1/tasks/{task_id}/attempts").json()["attempts"]
    assert [a["outcome"] for a in attempts] == ["finished"]
    logs = client.get(f"/api/v1/tasks/{task_id}/logs").json()
    assert logs["text"] == "hello ann\nhello ann\n" and logs["attempt"] == 1
    assert client.get(f"/api/v1/tasks/{task_id}/logs?attempt=2").status_code == 400
    dag = client.get("/api/v1/dags/greeting").json()
    assert dag["params"]["times"]["type"] == "integer" and dag["runs"]["total"] == 1
    overview = client.get("/api/v1/overview").json()
    assert overview["states"]["finished"] == 2 and overview["tenants"][0]["finished"] == 2
    page = client.get(f"/runs/{run_id}").text
    assert "<svg" in page and "hello" in page and "greeting" in page
    assert f'href="/runs/{quote(run_id, safe="")}?task=shout"' in page  # a node opens its task
    assert "hello ann" in client.get(f"/runs/{run_id}?task=hello").text


# --- actions --------------------------------------------------------------------------


def test_trigger_checks_the_conf_as_the_cli_does(client: TestClient, queue: TaskQueue) -> None:
    response = post(client, "/dags/greeting/trigger", **{"param.times": "many"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert "error=" in location
    page = client.get(location).text
    assert "times" in page and "must be an integer" in page
    response = post(client, "/dags/greeting/trigger", conf="[1]")
    assert "must+be+a+JSON+object" in response.headers["location"]
    response = post(client, "/dags/greeting/trigger", conf='{"nope": 1}')
    assert "nope" in client.get(response.headers["location"]).text
    assert queue.list_runs("greeting") == []


class _Options(HTMLParser):
    """The option values of each select, as a browser reads them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.selects: dict[str, list[str]] = {}
        self._current: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "select":
            self._current = self.selects.setdefault(found.get("name") or "", [])
        elif tag == "option":
            self._current.append(found.get("value") or "")


def test_enum_choices_of_the_trigger_form_reach_the_conf(
    config: FairQueueConfig, queue: TaskQueue, tmp_path: Path
) -> None:
    choices = ['say "hi"', "<b>bold</b>", "it's"]
    (tmp_path / "quoted.yaml").write_text(
        json.dumps(
            {
                "dag_id": "quoted",
                "params": {
                    "pick": {"type": "string", "default": "it's", "enum": choices},
                    "nums": {"type": "array", "default": ['a"b']},
                },
                "tasks": {"only": {"callable": "tests.integration.ui_tasks:hello"}},
            }
        ),
        encoding="utf-8",
    )
    with client_for(config, dags_folder=tmp_path) as client:
        page = client.get("/dags/quoted").text
        assert "<b>bold</b>" not in page
        assert 'placeholder="[&#34;a\\&#34;b&#34;]"' in page  # the array default, escaped
        parsed = _Options()
        parsed.feed(page)
        values = parsed.selects["param.pick"]
        assert [json.loads(v) for v in values[1:]] == choices  # each option is one choice
        for choice, value in zip(choices, values[1:], strict=True):
            response = post(client, "/dags/quoted/trigger", **{"param.pick": value})
            assert response.status_code == 303, response.text
            assert queue.list_runs("quoted", limit=1)[0].conf["pick"] == choice


def test_actions_need_the_csrf_token_and_same_origin(client: TestClient, queue: TaskQueue) -> None:
    token = csrf(client)
    no_token = client.post("/dags/greeting/trigger", data={}, headers={"Origin": LOCAL})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["error"]
    wrong = client.post("/dags/greeting/trigger", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    cross = client.post(
        "/dags/greeting/trigger", data={"csrf_token": token}, headers={"Origin": "http://evil"}
    )
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    assert queue.list_runs() == []
    set_cookie = client.get("/", headers={"Cookie": ""}).headers["set-cookie"]
    assert "samesite=strict" in set_cookie.lower() and "httponly" in set_cookie.lower()


def test_read_only_hides_and_refuses_actions(config: FairQueueConfig, queue: TaskQueue) -> None:
    with client_for(config, read_only=True) as client:
        page = client.get("/dags/greeting").text
        assert "Trigger" not in page and 'method="post"' not in page
        response = post(client, "/dags/greeting/trigger")
        assert response.status_code == 403 and "read-only" in response.json()["error"]
    assert queue.list_runs() == []


def test_pause_unpause_cancel_and_errors_as_the_cli(
    client: TestClient, queue: TaskQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fairque.ui")
    assert post(client, "/dags/greeting/pause").status_code == 303
    assert client.get("/api/v1/dags/greeting").json()["paused"] is True
    assert "action pause dag_id='greeting' by testclient" in caplog.text
    post(client, "/dags/greeting/unpause")
    assert client.get("/api/v1/dags/greeting").json()["paused"] is False
    run_id = post(client, "/dags/greeting/trigger").headers["location"].split("/")[2].split("?")[0]
    from urllib.parse import unquote

    run_id = unquote(run_id)
    response = post(client, f"/runs/{run_id}/cancel")
    assert response.status_code == 303 and "canceled" in unquote(response.headers["location"])
    assert queue.get_run(run_id).state is RunState.CANCELED
    again = post(client, f"/runs/{run_id}/cancel")
    page = client.get(again.headers["location"]).text
    assert "it has ended (canceled)" in page
    nothing = post(client, f"/runs/{run_id}/clear", task="nope")
    assert "nope" in client.get(nothing.headers["location"]).text
    alone = "alone"
    queue.push(Task.create("u1", func="x:y", task_id=alone))
    refused = post(client, f"/tasks/{alone}/retry")
    assert "not part of a run" in client.get(refused.headers["location"]).text
    assert post(client, f"/tasks/{alone}/cancel").status_code == 303
    assert queue.get_task(alone).state.value == "canceled"
    assert "refused" in caplog.text


def test_clear_a_failed_task_then_the_run_succeeds(
    client: TestClient, queue: TaskQueue, worker: Worker, tmp_path: Path
) -> None:
    response = post(client, "/dags/flaky/trigger", **{"param.directory": str(tmp_path)})
    run_id = queue.list_runs("flaky", limit=1)[0].run_id
    assert response.status_code == 303
    wait_run(queue, run_id, RunState.FAILED)
    page = client.get(f"/runs/{run_id}/live").text
    assert "the flag file is not there yet" in page
    (tmp_path / "flag").touch()
    assert post(client, f"/runs/{run_id}/clear").status_code == 303
    wait_run(queue, run_id, RunState.SUCCESS)
    task_id = queue.get_run(run_id).task_ids["middle"]
    attempts = client.get(f"/api/v1/tasks/{task_id}/attempts").json()["attempts"]
    assert [a["outcome"] for a in attempts] == ["failed", "finished"]
    first = client.get(f"/tasks/{task_id}?attempt=1").text
    assert "Logs of attempt 1" in first and "looking for" in first


# --- escaping and access --------------------------------------------------------------


def test_hostile_names_are_escaped_everywhere(
    client: TestClient, queue: TaskQueue, worker: Worker
) -> None:
    bad = '"><img/src=x/onerror=alert(1)><script>alert(1)</script>'
    tasks = [
        Task.create(
            bad,
            func="tests.integration.ui_tasks:hostile",
            task_id=f"r:{bad}",
            run_id="r",
            name=bad,
            max_retries=0,
        )
    ]
    queue.enqueue_tasks(tasks, "r", dag_id=bad, tenant=bad)
    wait_run(queue, "r", RunState.FAILED)
    task_id = f"r:{bad}"
    pages = [
        client.get("/").text,
        client.get("/runs").text,
        client.get("/runs/r").text,
        client.get(f"/runs/r?task={bad}").text,
        client.get(f"/tasks/{task_id}").text,
        client.get(f"/tasks/{task_id}?attempt=1").text,
        client.get("/", params={"search": bad}).text,
        client.get("/dags/flaky").text,  # a param description holds a <script>
    ]
    for page in pages:
        assert injected(page) == []
    assert "&lt;script&gt;" in pages[2] and "&lt;script&gt;" in pages[4]
    assert HOSTILE in client.get(f"/api/v1/tasks/{task_id}/logs").json()["text"]


def test_a_token_guards_pages_api_and_actions(config: FairQueueConfig) -> None:
    with client_for(config, token="s3cret") as client:
        assert client.get("/api/v1/overview").status_code == 401
        assert client.get("/").headers["location"].startswith("/login")
        assert (
            client.get("/api/v1/overview", headers={"Authorization": "Bearer s3cret"}).status_code
            == 200
        )
        assert (
            client.get("/api/v1/overview", headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
        token = csrf(client, "/login")
        wrong = client.post("/login", data={"csrf_token": token, "token": "no"})
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        for elsewhere in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
            sent = client.post(
                f"/login?next={quote(elsewhere, safe='')}",
                data={"csrf_token": token, "token": "s3cret"},
            )
            assert sent.headers["location"] == "/", elsewhere
        client.cookies.delete("fairque_auth")
        right = client.post("/login", data={"csrf_token": token, "token": "s3cret"})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "s3cret" not in cookie
        assert client.get("/").status_code == 200
        paused = client.post("/dags/greeting/pause", headers={"Authorization": "Bearer s3cret"})
        assert paused.json()["ok"] is True


def test_without_a_token_only_loopback_host_names_are_answered(
    config: FairQueueConfig,
) -> None:
    app = create_app(config, dags_folder=UI_DAGS)
    with TestClient(app, base_url="http://evil.example:8844") as client:
        assert client.get("/").status_code == 400
    with TestClient(create_app(config, allow_any_host=True), base_url="http://h:1") as client:
        assert client.get("/api/v1/workers").status_code == 200


def test_redis_down_is_a_clear_503(make_config: ConfigFactory) -> None:
    config = FairQueueConfig.create_default(redis="redis://127.0.0.1:1/0")
    with client_for(config) as client:
        response = client.get("/api/v1/overview")
        assert response.status_code == 503
        assert "127.0.0.1:1" in response.json()["error"] or "Redis" in response.json()["error"]
        assert client.get("/").status_code == 503


def test_mounted_under_a_prefix_links_and_redirects_keep_it(config: FairQueueConfig) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/fq", app=create_app(config, dags_folder=UI_DAGS))])
    with TestClient(outer, base_url=LOCAL, follow_redirects=False) as client:
        page = client.get("/fq/dags").text
        assert 'href="/fq/dags/greeting"' in page and 'src="/fq/static/app.js"' in page
        assert client.get("/fq/static/app.css").status_code == 200
        token = client.cookies.get("fairque_csrf")
        response = client.post(
            "/fq/dags/greeting/pause", data={"csrf_token": token}, headers={"Origin": LOCAL}
        )
        assert response.headers["location"].startswith("/fq/dags/greeting?")


def test_dag_list_pages(client: TestClient) -> None:
    everything = client.get("/api/v1/dags").json()
    assert [d["dag_id"] for d in everything] == ["flaky", "greeting"]
    assert client.get("/api/v1/dags?per_page=1&page=2").json() == everything[1:]
    page = client.get("/dags?per_page=1").text
    assert "page 1 of 2" in page and "flaky" in page and "/dags/greeting" not in page


def test_a_pipeline_run_is_drawn_from_its_records(client: TestClient, queue: TaskQueue) -> None:
    first = Task.create("u", func="x:a", task_id="p:first", run_id="p", name="first")
    second = Task.create(
        "u", func="x:b", task_id="p:second", run_id="p", name="second", depends_on=["p:first"]
    )
    queue.enqueue_tasks([first, second], "p")
    page = client.get("/runs/p").text
    assert "pipeline — run p (queued)" in page
    assert 'href="/tasks/p%3Afirst" class="dep-link"' in client.get("/tasks/p:second").text
    assert page.count('class="node"') == 2 and page.count('class="edge"') == 1


def test_a_waiting_sensor_shows_its_pokes(
    client: TestClient, queue: TaskQueue, worker: Worker, tmp_path: Path
) -> None:
    from tests.integration import control_tasks

    flag = tmp_path / "flag"
    waiting = queue.enqueue(control_tasks.wait_file(str(flag)))
    wait_until(lambda: waiting.task("wait_file").pokes >= 2, 10, "two pokes of the sensor")
    page = client.get(f"/runs/{quote(waiting.run_id, safe='')}?task=wait_file").text
    row = page[page.index('data-task="wait_file"') :]
    assert re.search(r'<td class="attempts">[01] \(\d+ pokes\)</td>', row[: row.index("</tr>")])
    assert re.search(r"\d+ pokes", page[page.index("<svg") : page.index("</svg>")])
    assert 'pokes: a sensor\'s "not yet", not attempts' in page
    flag.touch()
    wait_until(lambda: waiting.task("wait_file").state is TaskState.FINISHED, 10, "the sensor")


def test_a_mapped_run_is_one_node_and_its_instances_follow_it(
    config: FairQueueConfig, queue: TaskQueue, redis_url: str
) -> None:
    from fairque.dag.loader import load_dags
    from fairque.dag.runs import trigger

    folder = Path(__file__).parents[2] / "dags"
    dag = load_dags(folder).get("mapped_fanout")
    run_id = trigger(queue, dag, conf={"count": 3}).run_id
    with background_worker(redis_url, "ui-mapper", allowed_modules=["examples"]):
        wait_run(queue, run_id, RunState.SUCCESS)
    with client_for(config, dags_folder=folder) as client:
        page = client.get(f"/runs/{quote(run_id, safe='')}").text
    rows = re.findall(r'<tr data-task="([^"]+)" data-state="(\w+)"( class="instance")?', page)
    assert [(name, bool(instance)) for name, _, instance in rows] == [
        ("list_files", False),
        ("process", False),
        ("process[0]", True),
        ("process[1]", True),
        ("process[2]", True),
        ("summarize", False),
    ]
    graph = page[page.index("<svg") : page.index("</svg>")]
    assert "mapped x3: 3 finished" in graph and "process[0]" not in graph  # one node


def test_tenant_show_gives_the_figures_tenant_list_gives(
    queue: TaskQueue, redis_url: str, monkeypatch: Any
) -> None:
    queue.set_tenant_policy("acme", weight=2, max_running=1)
    for user in ("acme", "acme", "initech"):
        queue.push(Task.create(user, func="x:y"))
    assert queue.pop() is not None
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    listed = CliRunner().invoke(cli_app, ["tenant", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    for entry in json.loads(listed.output)["tenants"]:
        result = CliRunner().invoke(cli_app, ["tenant", "show", entry["user_id"], "--json"])
        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        assert {k: shown[k] for k in POLICY_FIGURES} == {k: entry[k] for k in POLICY_FIGURES}
        for name in MOVING_FIGURES:
            assert shown[name] == pytest.approx(entry[name], abs=0.02), name
        assert shown["running"] == entry["running"]
    # a tenant without a task or a policy yet: its policy and (empty) live figures
    result = CliRunner().invoke(cli_app, ["tenant", "show", "newcomer", "--json"])
    assert result.exit_code == 0, result.output
    newcomer = json.loads(result.output)
    assert (newcomer["weight"], newcomer["queued"], newcomer["running"]) == (1.0, 0, 0)
    assert newcomer["share"] == 0 and newcomer["fair_share"] == 0
    refused = CliRunner().invoke(cli_app, ["tenant", "show", ""])
    assert refused.exit_code == 1 and "user_id must not be empty" in refused.output
