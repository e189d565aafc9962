"""A real server or tool that is not there skips on a developer's machine and
fails the run under CI: a CI run cannot pass by skipping what it tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, unavailable

REASON = "cupsd did not start: no message"
TESTS = ROOT / "tests"


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_under_ci_it_fails_with_the_reason(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception) as caught:
        unavailable(REASON)
    assert str(caught.value).startswith(f"{REASON} (CI is set: ")
    assert caught.value.pytrace is False  # the reason, not a traceback into the helper


def test_without_ci_it_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        unavailable(REASON)
    assert str(caught.value) == REASON


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_ci_set_to_a_false_value_skips(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        unavailable(REASON)


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                           str(folder)], capture_output=True, text=True, cwd=folder,
                          env={**environment, **env}, timeout=60)


def test_a_fixture_that_calls_it_fails_the_run_under_ci(tmp_path: Path) -> None:
    """What CI sees: the test that needed the server errors, and pytest exits 1."""
    (tmp_path / "test_needs_a_server.py").write_text(f"""
import pytest
from helpers import unavailable

@pytest.fixture
def server():
    unavailable({REASON!r})

def test_it(server):
    pass
""", encoding="utf-8")
    failed = _run(tmp_path, CI="true")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 error" in failed.stdout and f"{REASON} (CI is set: " in failed.stdout

    skipped = _run(tmp_path)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout and REASON in skipped.stdout
