"""Documents without sending: ``relances preview`` and ``relances report``."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relances.daemon import formatting as fmt
from relances.daemon.cli.main import rendering_command
from relances.daemon.cli.options import DATE

if TYPE_CHECKING:
    # What reads the ledger is imported in the commands' bodies: they fork their
    # render worker before loading it (rendering_command).
    from relances.daemon.letters.pool import Renderer
    from relances.daemon.storage import App

log = logging.getLogger(__name__)

OUTPUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.command("preview")
@click.argument("number")
@click.option("--level", type=click.IntRange(1, 3), default=None,
              help="Write at this level instead of the invoice's current one.")
@click.option("--statement", is_flag=True,
              help="The customer's statement (NUMBER: an invoice number or a customer code).")
@click.option("--html", "as_html", is_flag=True,
              help="Write the letter's HTML as it goes to the PDF engine, stylesheet and "
                   "images inlined, instead of the PDF.")
@click.option("-o", "--output", type=OUTPUT, default=None,
              help="File to write [default: the document's file name, here].")
@click.option("--as-of", type=DATE, default=None, help="Business date [default: today].")
@rendering_command(workers=1)
async def preview(app: App, number: str, level: int | None, statement: bool, as_html: bool,
                  output: Path | None, as_of: dt.date | None, renderer: Renderer) -> None:
    """Render a reminder letter (or statement) to PDF without sending or stamping it.

    With --html, write instead the letter's HTML exactly as the PDF engine
    lays it out, as one file a browser opens (the stylesheet in a <style>,
    images as data: URLs): for a template's author, or to time the engine
    on it alone.
    """
    from relances.daemon.letters.documents import prepare_letter, prepare_statement_for

    as_of = as_of or app.settings.today()
    async with app.sessions() as session:
        if statement:
            job = await prepare_statement_for(session, app.settings, number, as_of=as_of,
                                                level=level)
        else:
            job = await prepare_letter(session, app.settings, number, level=level, as_of=as_of)
    if as_html:
        target = output or Path(job.filename).with_suffix(".html")
        target.write_text(renderer.render_html_sync(job), encoding="utf-8")
        click.echo(fmt.printable(f"{target}: {job.subject} ({job.customer_code}, "
                                 f"level {job.level}, HTML)"))
        return
    rendered = renderer.render_sync(job)
    target = output or Path(job.filename)
    target.write_bytes(rendered.pdf)
    copies = f", {len(job.copy_paths)} invoice copy(ies) appended" if job.copy_paths else ""
    click.echo(fmt.printable(f"{target}: {job.subject} ({job.customer_code}, "
                             f"level {job.level}{copies})"))


@click.command("report")
@click.option("-o", "--output", type=OUTPUT, default=None,
              help="PDF file to write [default: relances-DATE.pdf].")
@click.option("--as-of", type=DATE, default=None, help="Business date [default: today].")
@rendering_command(workers=1)
async def report_command(app: App, output: Path | None, as_of: dt.date | None,
                         renderer: Renderer) -> None:
    """Print the reminders table (overdue unpaid invoices) as a landscape PDF."""
    from relances.daemon.letters import report

    as_of = as_of or app.settings.today()
    async with app.sessions() as session:
        context = await report.load_report_context(session, app.settings, as_of=as_of)
    pdf = renderer.render_document_sync(
        context["language"], report.TEMPLATE, context)
    target = output or Path(f"relances-{as_of.isoformat()}.pdf")
    target.write_bytes(pdf)
    click.echo(f"{target}: {context['totals']['count']} invoices")


COMMANDS = [preview, report_command]
