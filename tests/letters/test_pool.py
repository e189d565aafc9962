"""PDF rendering: what the letter says, the appended copy, the worker pool."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from helpers import Cli
from letters_fixtures import (  # noqa: F401
    AS_OF,
    HOSTILE_NAME,
    SAMPLE_COPY,
    letters_settings_fixture,
    page_count,
    pdf_text,
    sessions_fixture,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon.config import Settings
from relances.daemon.letters.documents import LetterJob, prepare_letter, prepare_statement
from relances.daemon.letters.pdf import PdfEngine
from relances.daemon.letters.pool import Renderer, harfbuzz_subset_available
from relances.daemon.models import Customer

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")


async def job_for(sessions: Sessions, settings: Settings, number: str, **kw: Any) -> LetterJob:
    async with sessions() as session:
        return await prepare_letter(session, settings, number, as_of=AS_OF, **kw)


async def test_formal_notice_with_charges_and_the_invoice_copy(
        sessions: Sessions, letters_settings: Settings) -> None:
    job = await job_for(sessions, letters_settings, "COD_F1026")
    rendered = Renderer(letters_settings, workers=1).render_sync(job)
    letter = pdf_text(rendered.letter_pdf)
    for expected in ("INTEL", "COD_F1026", "680,40 €", "MISE EN DEMEURE",
                     "LETTRE RECOMMANDÉE AVEC ACCUSÉ DE RÉCEPTION",
                     "Objet : Mise en demeure – facture COD_F1026", "Lyon, le 22 novembre 2024",
                     "77,17 €", "40,00 €", "797,57 €", "30 novembre 2024",
                     "semestre 2024 : 14,5 %", "semestre 2024 : 14,25 %",
                     "SIRET 123 456 789 00012", "P.J. : copie de notre facture COD_F1026"):
        assert expected in letter, expected
    # For paper and fax: the letter then the invoice's own pages, in one PDF.
    copy_pages = page_count(SAMPLE_COPY.read_bytes())
    assert page_count(rendered.pdf) == page_count(rendered.letter_pdf) + copy_pages
    assert "FACTURE" in pdf_text(rendered.pdf).split("MISE EN DEMEURE")[-1]
    # For email: the letter first, then the copy, as separate files.
    assert [a.filename for a in rendered.attachments] == ["relance-3-COD_F1026.pdf",
                                                          "COD_F1026.pdf"]
    assert rendered.attachments[0].content == rendered.letter_pdf
    assert rendered.attachments[1].content == SAMPLE_COPY.read_bytes()
    assert rendered.subject == "Mise en demeure – facture COD_F1026"
    assert "mise en demeure" in rendered.text_body and "797,57" in rendered.text_body
    assert "<strong>COD_F1026</strong>" in rendered.html_body


@pytest.mark.parametrize("level, wording", [
    (1, "Il s'agit sans doute d'un simple oubli"),
    (2, "Malgré notre précédente relance du 19/11/2024"),
])
async def test_level_wording(sessions: Sessions, letters_settings: Settings, level: int,
                             wording: str) -> None:
    job = await job_for(sessions, letters_settings, "COD_F1026", level=level)
    rendered = Renderer(letters_settings, workers=1).render_sync(job)
    text = " ".join(pdf_text(rendered.pdf).split())
    assert wording in text
    assert f"Relance n°{level} – facture COD_F1026" in text
    assert "MISE EN DEMEURE" not in text and "Pénalités" not in text
    assert rendered.pdf == rendered.letter_pdf and len(rendered.attachments) == 1


async def test_consumer_formal_notice_has_no_charges(sessions: Sessions,
                                                     letters_settings: Settings,
                                                     tmp_path: Path) -> None:
    shutil.copy(SAMPLE_COPY, tmp_path / "invoices" / "COD_F1023.pdf")
    job = await job_for(sessions, letters_settings, "COD_F1023")
    text = pdf_text(Renderer(letters_settings, workers=1).render_sync(job).letter_pdf)
    assert "DANIERE FLORENCE" in text and "253,06 €" in text and "MISE EN DEMEURE" in text
    assert "Pénalités" not in text and "indemnité forfaitaire" not in text.lower()


async def test_english_letter(sessions: Sessions, letters_settings: Settings) -> None:
    job = await job_for(sessions, letters_settings, "NOR-77")
    rendered = Renderer(letters_settings, workers=1).render_sync(job)
    text = " ".join(pdf_text(rendered.pdf).split())
    assert "Subject: Reminder no. 2 – invoice NOR-77" in text
    assert "€1,500.00" in text and "Lyon, 22 November 2024" in text
    assert "Despite our previous reminder" in text
    assert rendered.text_body.startswith("Dear Sir or Madam")


async def test_statement_lists_every_invoice_with_total(
        sessions: Sessions, letters_settings: Settings) -> None:
    async with sessions() as session:
        job = await prepare_statement(session, letters_settings, "INT01", as_of=AS_OF, level=2)
    text = " ".join(pdf_text(Renderer(letters_settings, workers=1).render_sync(job).pdf).split())
    assert "Relevé de compte au 22 novembre 2024" in text
    for number in ("COD_F1026", "COD_F1031", "COD_F1100"):
        assert number in text
    assert "COD_F1040" not in text  # in dispute
    assert "Total restant dû 1 273,06 €" in text


async def test_hostile_data_is_printed_as_text(sessions: Sessions,
                                               letters_settings: Settings) -> None:
    job = await job_for(sessions, letters_settings, "EVIL-1")
    rendered = Renderer(letters_settings, workers=1).render_sync(job)
    text = pdf_text(rendered.pdf)
    assert HOSTILE_NAME in text
    assert '<img src="http://127.0.0.1:9/track.png">' in text
    assert "{{ ''.__class__ }}" in text
    html = PdfEngine(letters_settings).html("fr", job.template, job.context)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Cie" in html
    assert "<script>" not in html and '<img src="http://127.0.0.1:9' not in html


async def test_pool_renders_concurrently_without_blocking_the_loop(
        sessions: Sessions, letters_settings: Settings) -> None:
    """While letters render, the daemon's loop still does its other work.

    With each render, the test reads the ledger through the database driver,
    whose answer comes back through the event loop, and notes whether the
    answer came while that render was still in flight.  Were a render run on
    the loop, its read would be answered only once the render was over: the
    check is on the order of events, not on how long anything takes.
    """
    jobs = [await job_for(sessions, letters_settings, n, level=1)
            for n in ("COD_F1026", "COD_F1031", "NOR-77", "EVIL-1")]
    codes = await _customer_codes(sessions)
    assert codes

    async def while_reading(render: Awaitable[T]) -> tuple[T, list[str], bool]:
        rendering = asyncio.ensure_future(render)
        read = await _customer_codes(sessions)
        answered_while_rendering = not rendering.done()
        return await rendering, read, answered_while_rendering

    async with Renderer(letters_settings, workers=2) as renderer:
        letters = await asyncio.gather(*(while_reading(renderer.render(j)) for j in jobs * 2))
        assert len(renderer.worker_pids) == 2
        report = await while_reading(
            renderer.render_document("fr", "report.html", _report(letters_settings)))
    results = [rendered for rendered, _, _ in letters]
    assert [r.filename for r in results] == [j.filename for j in jobs * 2]
    assert "NORDIC TRADING LTD" in pdf_text(results[2].pdf)
    assert "Tableau des relances" in pdf_text(report[0])
    assert [(read, answered) for _, read, answered in [*letters, report]] == [(codes, True)] * 9


async def _customer_codes(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(Customer.code))).all())


def _report(settings: Settings) -> dict[str, Any]:
    from relances.daemon.letters.mergefields import sample_report_context

    return sample_report_context(settings)


def test_harfbuzz_subset_is_installed() -> None:
    assert harfbuzz_subset_available()


def test_preview_and_report_commands(seeded: Cli, tmp_path: Path) -> None:
    (tmp_path / "invoices").mkdir(exist_ok=True)
    shutil.copy(SAMPLE_COPY, tmp_path / "invoices" / "COD_F1026.pdf")
    out = tmp_path / "l3.pdf"
    result = seeded(["preview", "COD_F1026", "--level", "3", "--as-of", "22/11/2024",
                     "-o", str(out)])
    assert "Mise en demeure – facture COD_F1026" in result.output
    text = pdf_text(out.read_bytes())
    assert "INTEL" in text and "680,40 €" in text and "40,00 €" in text
    assert "FACTURE" in text  # the invoice copy, appended
    failed = seeded(["preview", "COD_F1026", "--as-of", "22/11/2024"], ok=False)
    assert failed.exit_code == 1 and "level 0: nothing to send" in failed.output
    report = tmp_path / "table.pdf"
    seeded(["report", "--as-of", "2024-11-22", "-o", str(report)])
    table = pdf_text(report.read_bytes())
    assert "DANIERE FLORENCE" in table and "COD_F1023" in table and "933,46 €" in table


EARLY = """
import os, sys, time
from relances.daemon.config import settings_from_data
from relances.daemon.letters.mergefields import sample_context
from relances.daemon.letters.job import LetterJob
from relances.daemon.letters.pool import Renderer

settings = settings_from_data({})
job = LetterJob(kind="letter", level=1, language="fr", template="letter_1.html",
                context=sample_context(settings), invoice_numbers=("F1",), customer_code="C",
                copy_paths=(), subject="s", filename="f.pdf")
renderer = Renderer(settings, workers=2)
renderer.start_early()
pids = renderer.worker_pids
print(len(pids), "early")
if sys.argv[1] == "render":
    print(renderer.render_sync(job).pdf[:5].decode())
    import asyncio
    async def many():
        return await asyncio.gather(*(renderer.render(job) for _ in range(6)))
    asyncio.run(many())
    print(len(renderer.worker_pids), "workers")
processes = [p for pool in (renderer._early, renderer._pool) if pool
             for p in pool._processes.values()]
renderer.close()
print(sorted({p.exitcode for p in processes}))
"""


@pytest.mark.parametrize("work", ["render", "nothing"])
def test_an_early_worker_renders_or_stops_at_once(work: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", EARLY, work], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out[0] == "1 early"  # one worker forked before anything is known
    if work == "render":
        # It renders the first letter; more in flight than its share start the others.
        assert out[1:3] == ["%PDF-", "2 workers"]
        assert out[3] == "[0]"  # stopped after their work
    else:
        # Nothing was due: the worker is ended, not waited for while it loads.
        assert out[1] == "[-15]"
