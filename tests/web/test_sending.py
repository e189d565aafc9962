"""Sending from the screen: the preview first, a letter through the archive
channel, the exact PDF that left, a reprint, the escalation's dry run, a batch;
each written under the logged-in user's name, and refused to roles below
``envoi``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers import Cli

from relances.daemon.config import load_settings

PDF_LINK = re.compile(r'href="/documents/(\d+)"')


def archived(cli: Cli) -> list[Path]:
    settings = load_settings(cli.settings)
    folder = settings.data_path / "letters"
    return sorted(folder.glob("*.pdf")) if folder.exists() else []


def messages(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip()
            for m in re.findall(r'<p class="message [^"]*"[^>]*>(.*?)</p>', html, re.S)]


def test_a_letter_previewed_then_sent_is_the_pdf_that_left(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1023", "1"])
    browser = as_role("envoi")
    page = browser.get("/envoi/COD_F1023").text
    assert "Aperçu de la lettre (niveau 1)" in page and 'name="canal"' in page
    preview = browser.get("/apercu/COD_F1023?niveau=1")
    assert preview.status_code == 200 and preview.headers["content-type"] == "application/pdf"
    assert preview.content.startswith(b"%PDF") and not archived(people)  # nothing left

    response = browser.post("/actions/envoi", {"numero": "COD_F1023", "document": "lettre",
                                               "canal": "", "retour": "/envoi/COD_F1023"})
    assert response.status_code == 303 and response.headers["location"] == "/envoi/COD_F1023"
    page = browser.get("/envoi/COD_F1023").text
    assert "COD_F1023 : 1 envoyée (archive : 1)." in messages(page)
    [letter] = archived(people)
    # The invoice's page links the exact PDF that left, and it opens.
    detail = browser.get("/factures/COD_F1023").text
    [reminder_id] = PDF_LINK.findall(detail)
    document = browser.get(f"/documents/{reminder_id}")
    assert document.headers["content-type"] == "application/pdf"
    assert document.content == letter.read_bytes()
    assert reminder_id in PDF_LINK.findall(browser.get("/clients/DAN01").text)
    # Stamped, and written in the history under the web user's name.
    assert re.search(r"Relance niveau 1 \(Archive\)\s+envoi", people(["history", "COD_F1023"]).stdout)

    # The same level again is refused unless asked for; then it leaves again.
    browser.post("/actions/envoi", {"numero": "COD_F1023", "retour": "/relances"})
    assert any("rien à envoyer" in m for m in messages(browser.get("/relances").text))
    browser.post("/actions/envoi", {"numero": "COD_F1023", "forcer": "1", "retour": "/relances"})
    assert "COD_F1023 : 1 envoyée (archive : 1)." in messages(browser.get("/relances").text)


def test_a_reprint_sends_the_same_document_and_stamps_nothing(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1026", "2"])
    people(["send", "--invoice", "COD_F1026"])
    browser = as_role("envoi")
    stamp = re.compile(r"<dt>Niveau</dt><dd>.*?</dd>\s*<dt>Relancé le</dt><dd>.*?</dd>")
    before = stamp.findall(browser.get("/factures/COD_F1026").text)
    assert before and "<dd>2</dd>" in before[0]
    browser.get("/envoi/COD_F1026")
    browser.post("/actions/reimpression", {"numero": "COD_F1026", "canal": "archive",
                                           "retour": "/envoi/COD_F1026"})
    page = browser.get("/envoi/COD_F1026").text
    assert any(m.startswith("COD_F1026 : duplicata envoyé par archive") for m in messages(page))
    assert re.search(r"Réimpression relance niveau 2 \(Archive\)\s+envoi",
                     people(["history", "COD_F1026"]).stdout)
    # The archive keeps one file per content: the duplicata is the letter already there.
    [letter] = archived(people)
    assert any(str(letter) in m for m in messages(page))
    # Neither the level nor "Relancé le" moved.
    assert stamp.findall(browser.get("/factures/COD_F1026").text) == before


def test_nothing_to_send_and_bad_choices_are_said(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("envoi")
    browser.get("/relances")
    browser.post("/actions/envoi", {"numero": "COD_F1023", "retour": "/relances"})
    assert any("niveau 0 : rien à envoyer" in m for m in messages(browser.get("/relances").text))
    browser.post("/actions/envoi", {"numero": "NOPE", "retour": "/relances"})
    assert any("NOPE" in m for m in messages(browser.get("/relances").text))
    browser.post("/actions/reimpression", {"numero": "COD_F1023", "retour": "/relances"})
    assert any("nothing to reprint" in m for m in messages(browser.get("/relances").text))
    browser.post("/actions/envoi-groupe", {"retour": "/relances"})
    assert any("Cochez au moins une facture" in m for m in messages(browser.get("/relances").text))
    assert browser.get("/documents/999").status_code == 404
    assert browser.get("/envoi/NOPE").status_code == 404


def test_escalation_shows_what_would_change_before_it_is_applied(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("envoi")
    browser.get("/relances")
    dry = browser.post("/actions/escalade", {"simulation": "1", "client": ""})
    assert dry.status_code == 200
    assert "COD_F1023" in dry.text and "0 → 1" in dry.text and "rien n'est encore écrit" in dry.text
    assert "<dt>Niveau</dt><dd>0</dd>" in browser.get("/factures/COD_F1023").text  # unwritten
    applied = browser.post("/actions/escalade", {"client": "DAN01"})
    assert applied.headers["location"] == "/relances?client=DAN01"
    page = browser.get("/relances?client=DAN01").text
    assert "1 facture passée au niveau supérieur (niveau 1 : 1) pour DAN01." in messages(page)
    assert "<dt>Niveau</dt><dd>1</dd>" in browser.get("/factures/COD_F1023").text
    assert "<dt>Niveau</dt><dd>0</dd>" in browser.get("/factures/COD_F1026").text  # not DAN01's
    history = people(["history", "COD_F1023"]).stdout
    assert re.search(r"Passage au niveau 1 \(incrémentation\)\s+envoi", history), history


def test_a_batch_of_selected_rows_goes_on_after_the_answer(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    for number in ("COD_F1023", "COD_F1026", "EV-1"):
        people(["set-level", number, "1"])
    browser = as_role("envoi")
    browser.get("/relances")
    response = browser.client.post("/actions/envoi-groupe", data={
        "csrf": browser.csrf, "numeros": ["COD_F1023", "COD_F1026"], "document": "lettre",
        "retour": "/relances"}, follow_redirects=False)
    assert response.status_code == 303
    deadline = time.monotonic() + 60
    while True:
        page = browser.get("/relances").text
        if "Dernier envoi groupé" in page or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Dernier envoi groupé (envoi, 2 relances) : 2 envoyées (archive : 2)." in page
    assert len(archived(people)) == 2  # EV-1 was not selected
    browser.post("/actions/envoi-groupe", {"tout": "1", "retour": "/relances"})
    deadline = time.monotonic() + 60
    while "1 relance) : 1 envoyée" not in (page := browser.get("/relances").text):
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
    assert len(archived(people)) == 3


@pytest.mark.parametrize("role", ["lecture", "gestion"])
def test_roles_below_envoi_may_not_send(as_role, role: str, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1023", "1"])
    browser = as_role(role)
    page = browser.get("/relances").text
    assert "Envoyer la sélection" not in page and "/envoi/" not in page
    assert browser.get("/envoi/COD_F1023").status_code == 403
    for url, data in (("/actions/envoi", {"numero": "COD_F1023"}),
                      ("/actions/reimpression", {"numero": "COD_F1023"}),
                      ("/actions/envoi-groupe", {"tout": "1"}),
                      ("/actions/escalade", {"simulation": "1"})):
        assert browser.post(url, data).status_code == 403, url
    assert not archived(people)
    # Reading the preview and the documents is reading.
    assert browser.get("/apercu/COD_F1023").content.startswith(b"%PDF")


def test_a_send_without_the_session_token_is_refused(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1023", "1"])
    browser = as_role("envoi")
    assert browser.post("/actions/envoi", {"numero": "COD_F1023"}, csrf="").status_code == 403
    assert browser.post("/actions/envoi", {"numero": "COD_F1023"}, csrf="x").status_code == 403
    assert not archived(people)


def test_the_table_exports_as_csv_for_excel_and_prints_as_pdf(as_role) -> None:  # type: ignore[no-untyped-def]
    import io

    from pypdf import PdfReader

    browser = as_role("lecture")
    page = browser.get("/relances?client=DAN01").text
    assert 'href="/relances.csv?client=DAN01"' in page
    response = browser.get("/relances.csv?client=DAN01")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffCode;Affilié;Nom;")
    lines = text.splitlines()
    assert len(lines) == 2 and "COD_F1023" in lines[1] and "253,06" in lines[1] \
        and "24/11/2023" in lines[1]
    english = browser.get("/relances.csv?format=csv-en").content.decode("utf-8")
    assert english.startswith("customer_code,") and "253.06" in english and "COD_F1026" in english
    pdf = browser.get("/relances.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    printed = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "COD_F1023" in printed and "COD_F1026" in printed
    # The printed table is the filtered one, as the CSV is.
    assert 'href="/relances.pdf?client=DAN01"' in page
    pdf = browser.get("/relances.pdf?client=DAN01")
    printed = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "COD_F1023" in printed and "COD_F1026" not in printed and "Ech." in printed


def test_a_held_customer_is_said_why_nothing_leaves(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt
    from zoneinfo import ZoneInfo

    day = dt.datetime.now(ZoneInfo("Europe/Paris")).date() + dt.timedelta(days=5)
    people(["set-level", "COD_F1023", "1"])
    people(["set-level", "COD_F1026", "1"])
    people(["note", "DAN01", "promis", "--promise", day.isoformat()])
    browser = as_role("envoi")
    page = browser.get("/envoi/COD_F1023").text
    assert f"Pas de relance aujourd'hui : le client a promis de régler le {day:%d/%m/%Y}" in page
    browser.post("/actions/envoi", {"numero": "COD_F1023", "forcer": "1", "retour": "/relances"})
    [said] = messages(browser.get("/relances").text)
    assert said.startswith(f"COD_F1023 : rien à envoyer, le client a promis de régler le "
                           f"{day:%d/%m/%Y}"), said
    browser.client.post("/actions/envoi-groupe", data={
        "csrf": browser.csrf, "numeros": ["COD_F1023", "COD_F1026"], "document": "lettre",
        "retour": "/relances"}, follow_redirects=False)
    said = messages(browser.get("/relances").text)
    assert any(m.startswith("Non envoyées : COD_F1023 : le client a promis") for m in said), said
    assert any(m.startswith("Envoi de 1 relance commencé") for m in said), said


def test_the_send_page_says_when_the_customer_was_just_contacted(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt
    from zoneinfo import ZoneInfo

    people(["set-level", "COD_F1023", "1"])
    yesterday = dt.datetime.now(ZoneInfo("Europe/Paris")).date() - dt.timedelta(days=1)
    people(["send", "--invoice", "COD_F1023"])
    # As if it had left yesterday.
    import asyncio

    from sqlalchemy import update

    from relances.daemon.models import Reminder
    from relances.daemon.storage import App

    async def backdate() -> None:
        app = App.load(people.settings, "t")
        try:
            async with app.sessions.begin() as db:
                await db.execute(update(Reminder).values(
                    sent_at=dt.datetime.combine(yesterday, dt.time(10), ZoneInfo("Europe/Paris"))))
        finally:
            await app.close()

    asyncio.run(backdate())
    people(["set-level", "COD_F1023", "2"])
    browser = as_role("envoi")
    page = browser.get("/envoi/COD_F1023").text
    wait = (yesterday + dt.timedelta(days=7)).strftime("%d/%m/%Y")
    assert (f"le client a reçu une relance le {yesterday:%d/%m/%Y} : la suivante attend le "
            f"{wait}") in page
    browser.post("/actions/envoi", {"numero": "COD_F1023", "retour": "/relances"})
    assert any("la suivante attend le" in m for m in messages(browser.get("/relances").text))
    browser.post("/actions/envoi", {"numero": "COD_F1023", "forcer": "1", "retour": "/relances"})
    assert "COD_F1023 : 1 envoyée (archive : 1)." in messages(browser.get("/relances").text)
