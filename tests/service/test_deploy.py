"""The systemd unit: it verifies, its timeouts fit the settings, and the
program works inside its sandbox's W^X rule."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, UNIT, directive, write_settings
from letters_fixtures import SAMPLE_COPY, pdf_text

from relances.daemon.config import DaemonSettings
from relances.daemon.service.systemd import watchdog_interval

INSTALLED_BINARY = "/opt/relances/.venv/bin/relances"

# Installs a seccomp filter with the rule systemd applies for
# MemoryDenyWriteExecute=yes (mmap asking for write and execute, mprotect
# or pkey_mprotect adding execute, shmat with SHM_EXEC: EPERM), then runs
# the program given on the command line.  x86-64 only.
SANDBOX = r"""
import ctypes, os, struct, sys
ALLOW, EPERM = 0x7fff0000, 0x00050000 | 1
LD, JEQ, AND, JSET, RET = 0x20, 0x15, 0x54, 0x45, 0x06
program = [
    (LD, 0, 0, 4), (JEQ, 0, 13, 0xC000003E),              # AUDIT_ARCH_X86_64
    (LD, 0, 0, 0),                                        # syscall number
    (JEQ, 4, 0, 9), (JEQ, 6, 0, 10), (JEQ, 5, 0, 329), (JEQ, 6, 0, 30),
    (RET, 0, 0, ALLOW),
    (LD, 0, 0, 32), (AND, 0, 0, 6), (JEQ, 5, 4, 6),       # mmap: PROT_WRITE|PROT_EXEC
    (LD, 0, 0, 32), (JSET, 3, 2, 4),                      # mprotect: PROT_EXEC
    (LD, 0, 0, 32), (JSET, 1, 0, 0x8000),                 # shmat: SHM_EXEC
    (RET, 0, 0, ALLOW), (RET, 0, 0, EPERM),
]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Program(len(program), ctypes.addressof(code))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    print("seccomp unavailable:", os.strerror(ctypes.get_errno()))
    sys.exit(77)

import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    pass
else:
    sys.exit("the W^X filter let a writable executable mapping through")

from relances.daemon.cli.main import main
for args in sys.argv[1:]:
    main(args.split("\x1f"), standalone_mode=False)
"""


def test_the_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify wants ExecStart's program to exist: point it at this checkout's.
    binary = Path(sys.executable).with_name("relances")
    unit = tmp_path / "relances.service"
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    unit.write_text(text.replace(INSTALLED_BINARY, str(binary)), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_the_service_is_a_notify_daemon_reloaded_by_sighup() -> None:
    assert directive("Type") == "notify"
    assert directive("NotifyAccess") == "main"
    assert directive("ExecStart") == (
        f"{INSTALLED_BINARY} --config /etc/relances/settings.yaml daemon")
    assert directive("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert directive("KillMode") == "mixed"
    assert directive("User") == directive("Group") == "relances"


def test_stop_timeout_leaves_room_for_the_grace_period() -> None:
    # systemd's SIGKILL must not cut the grace period short.
    grace = DaemonSettings().grace_period
    assert float(directive("TimeoutStopSec")) >= grace + 10


def test_the_watchdog_is_pinged_well_within_its_timeout() -> None:
    seconds = int(directive("WatchdogSec"))
    interval = watchdog_interval({"WATCHDOG_USEC": str(seconds * 1_000_000)})
    assert interval == seconds / 2


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp program is written for x86-64")
def test_a_letter_renders_under_memory_deny_write_execute(tmp_path: Path) -> None:
    assert directive("MemoryDenyWriteExecute") == "yes"
    settings = write_settings(tmp_path / "settings.yaml", {
        "database.url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"})
    (tmp_path / "invoices").mkdir()
    shutil.copy(SAMPLE_COPY, tmp_path / "invoices" / "COD_F1026.pdf")
    out = tmp_path / "l3.pdf"
    common = ["--config", str(settings), "--user", "tester"]
    commands = [
        [*common, "init"],
        [*common, "import", "customers", str(SAMPLE / "customers.csv")],
        [*common, "import", "invoices", str(SAMPLE / "seed.tsv")],
        [*common, "preview", "COD_F1026", "--level", "3", "--as-of", "22/11/2024", "-o", str(out)],
    ]
    result = subprocess.run([sys.executable, "-c", SANDBOX, *("\x1f".join(c) for c in commands)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if result.returncode == 77:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    text = pdf_text(out.read_bytes())
    assert "MISE EN DEMEURE" in text and "680,40 €" in text
    assert "FACTURE" in text  # the invoice copy, merged into the same PDF
