"""``relances import``: the seller's books into the ledger.

The ERP's export of open invoices (TSV as on its screen, CSV, JSON), the
customers and payments files, the FEC, Factur-X invoices, e-invoicing
statuses (CDAR), bank statements.  Every import
is all-or-nothing: one bad row aborts it with the file, the line and the
column, and the database is left as it was; ``--dry-run`` says what would
change and writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.apply import BankImport, import_statement
from relances.daemon.bank.read import read_statement
from relances.daemon.cli.main import async_command
from relances.daemon.cli.options import FILE
from relances.daemon.ledger import imports, infiles
from relances.daemon.ledger.reconcile import InvoiceImport
from relances.daemon.models import utcnow
from relances.daemon.storage import App

T = TypeVar("T")
SHOWN = 50

dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Say what would change; write nothing.")
force_option = click.option(
    "--force", is_flag=True,
    help="Settle what a complete file no longer lists even beyond the guard "
         "(imports.complete_guard).")
trust_option = click.option(
    "--trust-file", is_flag=True,
    help="Apply a higher Reste even on an invoice with a payment recorded here.")


async def in_transaction(app: App, dry_run: bool, body: Callable[[AsyncSession], Awaitable[T]],
                         *, source: str | None = None, file: Path | str = "") -> T:
    """``body(session)`` in one transaction, committed, or rolled back for a dry run;
    the files it opens may be ``imports.max_file_mb`` at most.  With ``source``, the
    import is recorded in the same transaction as the inbox records its own
    (``import:SOURCE``, for ``relances status`` and the dashboard)."""
    with infiles.size_limit(app.settings.imports.max_file_mb):
        return await _in_transaction(app, dry_run, body, source, file)


async def _in_transaction(app: App, dry_run: bool, body: Callable[[AsyncSession], Awaitable[T]],
                          source: str | None, file: Path | str) -> T:
    started = utcnow()
    async with app.sessions() as session:
        transaction = await session.begin()
        try:
            result = await body(session)
            if source is not None:
                name = Path(file).name if file else source
                session.add(imports.import_run(source=source, user=app.user, started=started,
                                               summary=f"{name}: {result}"))
                await session.flush()
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
    return result


def report(source: Path | str, result: InvoiceImport, dry_run: bool) -> None:
    if dry_run:
        for line in result.changes[:SHOWN]:
            click.echo(f"  {line}")
        if len(result.changes) > SHOWN:
            click.echo(f"  … and {len(result.changes) - SHOWN} more")
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{source}: {prefix}{result}")


@click.group("import")
def import_group() -> None:
    """Import the seller's books and the bank: exports, customers, payments, FEC, Factur-X,
    e-invoicing statuses, statements.

    An import is all-or-nothing: one bad row aborts it with the line and the
    column, and the database is left as it was.
    """


@import_group.command("invoices")
@click.argument("file", type=FILE)
@click.option("--complete/--not-complete", default=None,
              help="The file lists every open invoice: settle those it does not list "
                   "[default: imports.invoices.complete].")
@force_option
@trust_option
@dry_run_option
@async_command
async def import_invoices(app: App, file: Path, complete: bool | None, force: bool,
                          trust_file: bool, dry_run: bool) -> None:
    """Import the ERP's export of open invoices; re-importing the same file changes nothing.

    A payment recorded in Relances is never undone by an export that does not
    know it yet; an export's level and "Relancé le" apply only to invoices
    Relances has never reminded itself.
    """
    result = await in_transaction(app, dry_run, lambda session: imports.import_invoices(
        session, file, settings=app.settings, user=app.user, complete=complete, force=force,
        trust_file=trust_file), source="invoices", file=file)
    report(file, result, dry_run)


@import_group.command("fec")
@click.argument("file", type=FILE)
@force_option
@trust_option
@dry_run_option
@async_command
async def import_fec(app: App, file: Path, force: bool, trust_file: bool, dry_run: bool) -> None:
    """Import the open receivables of a FEC (Fichier des Écritures Comptables).

    The FEC describes the whole ledger: what it shows as settled, and every
    open invoice it does not show, leaves the reminders table.
    """
    result = await in_transaction(app, dry_run, lambda session: imports.import_fec(
        session, file, settings=app.settings, user=app.user, force=force,
        trust_file=trust_file), source="fec", file=file)
    report(file, result, dry_run)


@import_group.command("facturx")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--partial", is_flag=True,
              help="Import the good files of a folder and report the others "
                   "[default: all or nothing].")
@dry_run_option
@async_command
async def import_facturx(app: App, paths: tuple[Path, ...], partial: bool, dry_run: bool) -> None:
    """Import Factur-X invoices (PDF files, or folders of them).

    Each PDF becomes its invoice's copy, joined to the formal notice.
    """
    async def body(session: AsyncSession) -> imports.FacturxImport:
        done = await imports.import_facturx(session, list(paths), settings=app.settings,
                                            user=app.user, partial=partial)
        if not dry_run:  # before the commit: a copy that fails imports nothing
            imports.copy_invoice_pdfs(done.copies)
        return done

    done = await in_transaction(app, dry_run, body, source="facturx",
                                file=paths[0] if len(paths) == 1 else "")
    for line in done.refused:
        click.echo(f"refused: {line}", err=True)
    names = ", ".join(str(p) for p in paths)
    report(names, done.result, dry_run)
    if done.refused:
        click.echo(f"{len(done.imported)} files imported, {len(done.refused)} refused", err=True)


@import_group.command("bank")
@click.argument("files", nargs=-1, required=True, type=FILE)
@dry_run_option
@async_command
async def import_bank(app: App, files: tuple[Path, ...], dry_run: bool) -> None:
    """Import bank statements (camt.053, CFONB 120, OFX, MT940): payments matched to invoices.

    Each entry is read once, however often its statement is imported; what
    matches nothing certain waits in `relances bank review`.
    """
    with infiles.size_limit(app.settings.imports.max_file_mb):
        statements = [read_statement(file) for file in files]  # every file whole, before writing

    async def body(session: AsyncSession) -> list[BankImport]:
        return [await import_statement(session, app.settings, statement, user=app.user)
                for statement in statements]

    results = await in_transaction(app, dry_run, body)
    prefix = "dry run, nothing written: " if dry_run else ""
    for file, statement, result in zip(files, statements, results, strict=True):
        click.echo(f"{file}: {prefix}{statement.format}, {result}")
    if any(result.review for result in results):
        click.echo("waiting for a person: `relances bank review`")


@import_group.command("cdar")
@click.argument("files", nargs=-1, required=True, type=FILE)
@dry_run_option
@async_command
async def import_cdar(app: App, files: tuple[Path, ...], dry_run: bool) -> None:
    """Import e-invoicing statuses (CDAR messages from the platform).

    212 Encaissée settles the invoice; 207, 208, 210 and 213 put it on hold;
    211 Paiement transmis pauses its reminders (imports.cdar.payment_sent_days).
    Each status acts once, however often its file is imported.
    """
    result = await in_transaction(app, dry_run, lambda session: imports.import_cdar(
        session, list(files), settings=app.settings, user=app.user),
        source="cdar", file=files[0] if len(files) == 1 else "")
    for line in result.changes[:SHOWN] if dry_run else ():
        click.echo(f"  {line}")
    for line in result.left_out:
        click.echo(f"left out: {line}", err=True)
    if result.unknown:
        shown = ", ".join(sorted(set(result.unknown))[:SHOWN])
        click.echo(f"not in the ledger (import the invoices, then this file again): {shown}",
                   err=True)
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{', '.join(str(f) for f in files)}: {prefix}{result}")


@import_group.command("customers")
@click.argument("file", type=FILE)
@dry_run_option
@async_command
async def import_customers(app: App, file: Path, dry_run: bool) -> None:
    """Import or update customers' contact details, language and kind."""
    result = await in_transaction(app, dry_run, lambda session: imports.import_customers(
        session, file, app.settings.policies, settings=app.settings, user=app.user),
        source="customers", file=file)
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{file}: {prefix}{result.created} new customers, {result.updated} updated, "
               f"{result.unchanged} unchanged")


@import_group.command("payments")
@click.argument("file", type=FILE)
@dry_run_option
@async_command
async def import_payments(app: App, file: Path, dry_run: bool) -> None:
    """Import payments; a paid invoice leaves the reminders table."""
    result = await in_transaction(app, dry_run, lambda session: imports.import_payments(
        session, file, app.user), source="payments", file=file)
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{file}: {prefix}{result.created} payments recorded, "
               f"{result.unchanged} already known")


COMMANDS = [import_group]
