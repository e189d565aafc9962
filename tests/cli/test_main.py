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
