"""The command line loads its commands on demand: each name must lead to its command."""

from __future__ import annotations

import subprocess
import sys

import click

from relances.daemon.cli.main import COMMANDS, main


def test_every_listed_command_loads() -> None:
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name


def test_reading_the_ledger_does_not_load_the_pdf_engine() -> None:
    code = ("import sys\nfrom relances.daemon.cli.main import main\nimport click\n"
            "main.get_command(click.Context(main), 'list')\n"
            "print('weasyprint' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_command_that_renders_forks_its_worker_before_loading_the_heavy_parts() -> None:
    # `send` and `preview` fork their first render worker (rendering_command) once
    # their module is loaded: what both processes hold by then must be light, so
    # that the worker imports WeasyPrint while the command loads SQLAlchemy.
    code = ("import sys\nfrom relances.daemon.cli.main import main\nimport click\n"
            "for name in ('send', 'preview', 'report'):\n"
            "    main.get_command(click.Context(main), name)\n"
            "import relances.daemon.letters.pool\n"
            "print(sorted(m for m in ('weasyprint', 'sqlalchemy', 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_render_worker_needs_no_database_library() -> None:
    code = ("import sys\nimport relances.daemon.letters.pool, relances.daemon.letters.pdf\n"
            "print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
