"""The house: docs/architecture.md names what exists, and the layers hold."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

DOC = ROOT / "docs" / "architecture.md"
FOUNDATION = {"config.py", "storage.py", "models.py", "errors.py", "logs.py", "formatting.py",
              "safexml.py", "safeyaml.py", "webconfig.py", "__init__.py"}
STAGES = {"ledger", "escalation", "bank", "letters", "dispatch", "service", "web", "cli"}
# Every table is described in one module, as Alembic compares them with the migrations.
LONGER = {"models.py": 500}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8"))


def test_every_path_the_page_names_exists() -> None:
    paths = [span for span in _spans()
             if "/" in span and " " not in span and not span.startswith(("http", "["))]
    assert len(paths) > 30, paths
    for span in paths:
        if "<" in span:  # a pattern such as daemon/<stage>/__init__.py
            assert (ROOT / span.split("<")[0]).is_dir(), span
            continue
        assert (ROOT / span).exists(), f"docs/architecture.md names {span}, which does not exist"


def test_every_function_the_page_names_is_in_the_module_it_names() -> None:
    text = DOC.read_text(encoding="utf-8")
    # "`name` in `daemon/x/y.py`" and "`Class.method` in `daemon/x/y.py`"
    pairs = re.findall(r"`([A-Za-z_][\w.]*)`\s+(?:in|of)\s+`((?:daemon|plugins|channels)/[\w/]+\.py)`",
                       text)
    assert len(pairs) > 10, pairs
    for name, path in pairs:
        source = (ROOT / path).read_text(encoding="utf-8")
        for part in name.split("."):
            assert re.search(rf"^\s*(?:async def|def|class) {part}\b|^{part}\b", source,
                             flags=re.MULTILINE), f"{path} has no {name}"


def test_every_stage_is_a_documented_package() -> None:
    daemon = ROOT / "daemon"
    for stage in STAGES:
        init = daemon / stage / "__init__.py"
        assert init.is_file(), stage
        doc = init.read_text(encoding="utf-8").lstrip()
        assert doc.startswith('"""'), f"{init} opens without a docstring"
        assert "import" in doc.split('"""')[1], f"{init}'s docstring does not say what it may import"


def test_only_the_foundation_sits_at_the_root_and_no_module_is_long() -> None:
    daemon = ROOT / "daemon"
    assert {p.name for p in daemon.glob("*.py")} <= FOUNDATION
    packages = {p.name for p in daemon.iterdir() if (p / "__init__.py").is_file()}
    assert packages == STAGES | {"migrations"}
    for path in daemon.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        limit = LONGER.get(path.name, 420) if path.parent == daemon else 420
        assert lines <= limit, f"{path.relative_to(ROOT)} has {lines} lines: split it"


def test_the_tests_mirror_the_stages() -> None:
    for stage in STAGES - {"cli"} | {"channels", "plugins"}:
        assert list((ROOT / "tests" / stage).glob("test_*.py")), f"tests/{stage}/ is empty"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: scripts/setup.sh --test installs import-linter")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_layers_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract has teeth: the ledger importing dispatch fails, naming both."""
    tree = tmp_path / "tree"
    package = tree / "relances"
    for folder in ("daemon", "channels", "plugins"):
        shutil.copytree(ROOT / folder, package / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "sample"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    listing = package / "daemon" / "ledger" / "listing.py"
    listing.write_text(listing.read_text(encoding="utf-8")
                       + "\nfrom relances.daemon.dispatch import outbox  # noqa: E402\n",
                       encoding="utf-8")
    # The copy, not the installed checkout, is what the linter must read: a
    # namespace package `relances` on the path ahead of everything else.
    env_code = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
                "from importlinter.cli import lint_imports_command; "
                "sys.argv = ['lint-imports', '--no-cache', '--no-logo']; lint_imports_command()")
    result = subprocess.run([sys.executable, "-c", env_code, str(tree)], cwd=tree,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "relances.daemon.ledger is not allowed to import relances.daemon.dispatch" \
        in result.stdout, result.stdout + result.stderr
    assert "relances.daemon.ledger.listing -> relances.daemon.dispatch.outbox" in result.stdout


def test_the_package_layout_resolves() -> None:
    for name in ("relances.daemon.ledger.book", "relances.daemon.cli", "relances.channels.email"):
        assert importlib.util.find_spec(name) is not None, name
