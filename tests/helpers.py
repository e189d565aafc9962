"""Helpers shared by the tests (importable: ``tests`` is on pytest's pythonpath)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from click.testing import CliRunner, Result

from relances.daemon.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "daemon" / "sample"
UNIT = ROOT / "deploy" / "relances.service"


def under_ci() -> bool:
    """Whether ``$CI`` is set (to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """What the tests need (a real server, a tool, root for a tmpfs) is not there.

    On a developer's machine the test skips with ``reason``; under CI
    (``CI=true``), where scripts/setup.sh --test installed everything and
    the tests run as root, it fails: a run that skipped its real servers
    would pass without having tested them.
    """
    if under_ci():
        pytest.fail(f"{reason} (CI is set: what the tests need must be there, "
                    "so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def write_settings(path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """The project's settings.yaml with some keys replaced, written to ``path``."""
    data = yaml.safe_load((ROOT / "settings.yaml").read_text(encoding="utf-8"))
    for key, value in (overrides or {}).items():
        target = data
        # "levels.1": the YAML's key is the number 1, not the text "1"
        *parents, last = (int(p) if p.isdigit() else p for p in key.split("."))
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Cli:
    """Runs ``relances`` in-process against the test's settings."""

    def __init__(self, settings: Path) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, args: str | list[str], *, ok: bool = True) -> Result:
        argv = shlex.split(args) if isinstance(args, str) else args
        result = self.runner.invoke(
            main, ["--config", str(self.settings), "--user", "tester", *argv],
            catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"relances {argv} exited {result.exit_code}:\n"
                                 f"{result.output}{result.stderr if result.stderr_bytes else ''}")
        return result


def directives() -> list[tuple[str, str, str]]:
    """(section, key, value) for each line of the unit; keys may repeat."""
    section, found = "", []
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def directive(key: str) -> str:
    values = [v for _, k, v in directives() if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]
