"""Log output of the long-running commands: the JSON formatter and its configuration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fairque.core.logs import JsonFormatter, configure_logging


@contextmanager
def bare_root() -> Iterator[None]:
    """The root logger without handlers (as in a new process), restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("fairque.worker.tasklog")
    try:
        raise ValueError("bad input")
    except ValueError as e:
        error = e
    return logger.makeRecord(
        logger.name,
        logging.ERROR,
        __file__,
        1,
        "task %s failed",
        ("t1",),
        (type(error), error, error.__traceback__),
        extra=extra,
    )


def test_a_json_line_has_the_standard_keys_the_extra_fields_and_the_traceback() -> None:
    line = JsonFormatter().format(_record(task_id="t1", user_id="user:1", duration=0.123))
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "ERROR" and document["logger"] == "fairque.worker.tasklog"
    assert document["message"] == "task t1 failed"
    assert document["time"].endswith("+00:00")
    assert (document["task_id"], document["user_id"], document["duration"]) == (
        "t1",
        "user:1",
        0.123,
    )
    assert "ValueError: bad input" in document["exception"]
    assert "args" not in document and "msg" not in document and "levelno" not in document


def test_a_field_that_is_not_json_is_written_as_text() -> None:
    document = json.loads(JsonFormatter().format(_record(where=object())))
    assert document["where"].startswith("<object object at")


def test_configure_logging_sets_up_the_root_once_and_refuses_unknown_values() -> None:
    with bare_root():
        _configure_twice_and_log()
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("INFO", "xml")
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD", "text")


def _configure_twice_and_log() -> None:
    configure_logging("warning", "json")
    configure_logging("debug", "text")  # a second call changes nothing
    root = logging.getLogger()
    assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
    assert root.level == logging.WARNING
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("fairque.scheduler.scheduler").warning("lock lost", extra={"owner": "b"})
    document = json.loads(stream.getvalue())
    assert document["logger"] == "fairque.scheduler.scheduler" and document["owner"] == "b"
