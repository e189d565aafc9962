"""The command line loads its commands on demand: each name must lead to its command."""

from __future__ import annotations

import ast
import subprocess
import sys

import click

from relances.daemon.cli.main import COMMANDS, main


def test_every_listed_command_loads() -> None:
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name


def loaded(code: str, *modules: str) -> list[str]:
    """Which of ``modules`` a fresh interpreter holds once it has run ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found: list[str] = ast.literal_eval(out.stdout)
    return found


def commands(*names: str) -> str:
    """Code that loads these commands' modules as `relances NAME` does."""
    return ("from relances.daemon.cli.main import main\nimport click\n"
            f"for name in {names!r}:\n    main.get_command(click.Context(main), name)")


def test_reading_the_ledger_does_not_load_the_pdf_engine() -> None:
    assert loaded(commands("list"), "weasyprint") == []


def test_a_command_that_renders_forks_its_worker_before_loading_the_heavy_parts() -> None:
    # `send` and `preview` fork their first render worker (rendering_command) once
    # their module is loaded: what both processes hold by then must be light, so
    # that the worker imports WeasyPrint while the command loads SQLAlchemy.
    code = commands("send", "preview", "report") + "\nimport relances.daemon.letters.pool"
    assert loaded(code, "weasyprint", "sqlalchemy", "alembic") == []


def test_the_render_worker_needs_no_database_library() -> None:
    code = "import relances.daemon.letters.pool, relances.daemon.letters.pdf"
    assert loaded(code, "sqlalchemy") == []
