"""Service logging: journald priority prefixes under systemd, a human format elsewhere."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relances.daemon.logs import configure_logging, journal_priority

LOGGER = "relances.test"

# A program that logs one record of each level and an exception, as the service would.
PROGRAM = """
import logging
from relances.daemon.logs import configure_logging
configure_logging("debug")
log = logging.getLogger("relances.daemon.service.lifecycle")
log.debug("claimed %d reminders", 3)
log.info("sent %s", "F1026")
log.warning("retrying in %ds", 60)
log.error("SMTP refused")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("dispatch failed")
"""


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _log_each_level() -> None:
    log = logging.getLogger(LOGGER)
    log.debug("claimed %d reminders", 3)
    log.info("sent %s", "F1026")
    log.warning("retrying in %ds", 60)
    log.error("SMTP refused")
    log.critical("database gone")


def test_journald_lines_carry_the_sd_daemon_priority_and_no_time() -> None:
    out = io.StringIO()
    configure_logging(logging.DEBUG, journald=True, stream=out)
    _log_each_level()
    assert out.getvalue().splitlines() == [
        f"<7>{LOGGER}: claimed 3 reminders",
        f"<6>{LOGGER}: sent F1026",
        f"<4>{LOGGER}: retrying in 60s",
        f"<3>{LOGGER}: SMTP refused",
        f"<2>{LOGGER}: database gone",
    ]


def test_every_line_of_a_traceback_keeps_the_error_priority() -> None:
    out = io.StringIO()
    configure_logging("INFO", journald=True, stream=out)
    try:
        raise RuntimeError("lost connection")
    except RuntimeError:
        logging.getLogger(LOGGER).exception("dispatch failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == f"<3>{LOGGER}: dispatch failed"
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: lost connection"


def test_the_human_format_has_the_time_and_level_name() -> None:
    out = io.StringIO()
    configure_logging("info", journald=False, stream=out)
    _log_each_level()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # debug is below the level
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d INFO {LOGGER}: sent F1026", lines[0])
    assert lines[1].endswith(f"WARNING {LOGGER}: retrying in 60s")
    assert not any(line.startswith("<") for line in lines)


def test_a_second_call_replaces_the_first_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", journald=True, stream=first)
    handler = configure_logging("warning", journald=True, stream=second)
    assert handler in logging.getLogger().handlers
    _log_each_level()
    assert first.getvalue() == ""
    assert second.getvalue().splitlines()[0] == f"<4>{LOGGER}: retrying in 60s"


def test_capture_handlers_are_left_in_place(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("info", journald=True, stream=io.StringIO())
    logging.getLogger(LOGGER).warning("still captured")
    assert "still captured" in caplog.text


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("loud", stream=io.StringIO())


def test_priorities_follow_sd_daemon() -> None:
    assert [journal_priority(n) for n in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    assert journal_priority(5) == 7


def _run(tmp_path: Path, journal_stream: str | None) -> list[str]:
    """Run PROGRAM with stderr to a file, as systemd runs it with stderr to journald."""
    err_path = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with err_path.open("wb") as err:
        if journal_stream == "match":
            stat = os.fstat(err.fileno())
            journal_stream = f"{stat.st_dev}:{stat.st_ino}"
        if journal_stream is not None:
            env["JOURNAL_STREAM"] = journal_stream
        subprocess.run([sys.executable, "-c", PROGRAM], stderr=err, env=env, check=True, timeout=60)
    return err_path.read_text(encoding="utf-8").splitlines()


def test_under_systemd_the_journal_stream_is_recognised(tmp_path: Path) -> None:
    lines = _run(tmp_path, "match")
    assert lines[:4] == [
        "<7>relances.daemon.service.lifecycle: claimed 3 reminders",
        "<6>relances.daemon.service.lifecycle: sent F1026",
        "<4>relances.daemon.service.lifecycle: retrying in 60s",
        "<3>relances.daemon.service.lifecycle: SMTP refused",
    ]
    assert all(line.startswith("<3>") for line in lines[4:])


@pytest.mark.parametrize("journal_stream", [None, "1:2", "garbage"])
def test_a_stderr_that_is_not_the_journal_gets_the_human_format(
    tmp_path: Path, journal_stream: str | None
) -> None:
    # An inherited JOURNAL_STREAM that names another file is not the journal.
    lines = _run(tmp_path, journal_stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d DEBUG "
                        r"relances.daemon.service.lifecycle: claimed 3 reminders", lines[0])
    assert not any(line.startswith("<") for line in lines)
