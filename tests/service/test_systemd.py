"""The sd_notify protocol against real AF_UNIX datagram sockets."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relances.daemon.service.systemd import Notifier, watchdog_interval


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def _fields(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = _receiver(path)
    yield path, sock
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"relances-test-{uuid.uuid4().hex}"
    sock = _receiver(b"\0" + name.encode())
    yield "@" + name, sock
    sock.close()


def test_each_state_reaches_a_socket_on_the_file_system(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    with Notifier(environ={"NOTIFY_SOCKET": address}) as notifier:
        assert notifier.enabled
        assert notifier.ready("3 reminders waiting")
        assert _fields(sock) == ["READY=1", "STATUS=3 reminders waiting"]
        assert notifier.status("dispatching 12\nreminders")
        # A newline in a status would start a forged field: it is folded.
        assert _fields(sock) == ["STATUS=dispatching 12 reminders"]
        assert notifier.watchdog()
        assert _fields(sock) == ["WATCHDOG=1"]
        assert notifier.stopping("finishing 2 sends")
        assert _fields(sock) == ["STOPPING=1", "STATUS=finishing 2 sends"]
        assert notifier.extend_timeout(45)
        assert _fields(sock) == ["EXTEND_TIMEOUT_USEC=45000000"]


def test_reloading_carries_the_monotonic_clock(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    with Notifier(address) as notifier:
        assert notifier.reloading()
    reloading, monotonic = _fields(sock)
    assert reloading == "RELOADING=1"
    key, value = monotonic.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_an_abstract_socket_is_named_with_an_at_sign(abstract_socket: tuple[str, socket.socket]) -> None:
    address, sock = abstract_socket
    with Notifier(address) as notifier:
        assert notifier.ready()
        assert _fields(sock) == ["READY=1"]
        assert notifier.stopping()
        assert _fields(sock) == ["STOPPING=1"]


def test_the_environment_variable_is_read_by_default(
    path_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    with Notifier() as notifier:
        assert notifier.watchdog()
    assert _fields(sock) == ["WATCHDOG=1"]


def test_without_a_socket_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.status("x")
    assert not notifier.watchdog()
    assert not notifier.stopping()
    assert not notifier.reloading()
    notifier.close()


def test_a_vanished_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify"
    sock = _receiver(str(path))
    notifier = Notifier(str(path))
    assert notifier.ready()
    sock.close()
    path.unlink()
    with caplog.at_level(logging.DEBUG, logger="relances.daemon.service.systemd"):
        assert not notifier.status("one")
        assert not notifier.status("two")
        assert not notifier.watchdog()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    notifier.close()


def test_an_unsupported_address_is_refused_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="relances.daemon.service.systemd"):
        assert not Notifier("vsock:2:1234").ready()
    assert "unsupported notification address" in caplog.text


def test_a_notification_from_another_process(path_socket: tuple[str, socket.socket]) -> None:
    # What systemd sees: a separate process, the variable in its environment.
    address, sock = path_socket
    code = "from relances.daemon.service.systemd import Notifier; Notifier().ready('up')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={**os.environ, "NOTIFY_SOCKET": address})
    assert _fields(sock) == ["READY=1", "STATUS=up"]


def test_watchdog_interval_is_half_the_systemd_setting() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0


def test_no_watchdog_when_unset_invalid_or_meant_for_another_process() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "x"}) is None
