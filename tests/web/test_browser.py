"""The screen in a real browser: Debian's Chromium driven by Playwright against
``relances web`` served by uvicorn in its own process.

Chromium is the system's (/usr/bin/chromium, installed by
``scripts/setup.sh --test``); Playwright downloads nothing.  A browser that
cannot start skips these tests on a developer's machine and fails them
under CI, as PostgreSQL does.  Screenshots go to the test's folder, or to
``$RELANCES_SCREENSHOTS`` (``RELANCES_SCREENSHOTS=docs/web`` refreshes those
of docs/web.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT, Cli, unavailable
from web.support import PASSWORD

CHROMIUM = Path(os.environ.get("RELANCES_TEST_CHROMIUM", "/usr/bin/chromium"))
RELANCES = Path(sys.executable).with_name("relances")


@pytest.fixture
def server(people: Cli, tmp_path: Path) -> Iterator[str]:
    """``relances web`` on a free port of localhost, until the test ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "web.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [str(RELANCES), "--config", str(people.settings), "--user", "web", "web",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"relances web exited {process.returncode}:\n"
                            + (tmp_path / "web.log").read_text(encoding="utf-8"))
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("relances web did not answer within a minute:\n"
                            + (tmp_path / "web.log").read_text(encoding="utf-8"))
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """A Chromium page; console errors (a CSP violation among them) and dialogs are kept."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        unavailable(f"playwright is not installed: {exc}")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: scripts/setup.sh --test installs Debian's chromium")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=["--no-sandbox"])
        except Error as exc:
            unavailable(f"Chromium does not start: {exc}")
        context = browser.new_context(locale="fr-FR", viewport={"width": 1500, "height": 900})
        tab = context.new_page()
        tab.problems = []  # type: ignore[attr-defined]
        tab.on("console", lambda m: tab.problems.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        tab.on("dialog", lambda d: (tab.problems.append(f"dialog: {d.message}"), d.dismiss()))  # type: ignore[attr-defined]
        tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))  # type: ignore[attr-defined]
        try:
            yield tab
        finally:
            context.close()
            browser.close()


@pytest.fixture
def shots(tmp_path: Path, database_url: str) -> Path:
    wanted = os.environ.get("RELANCES_SCREENSHOTS")
    if wanted and database_url.startswith("sqlite"):
        folder = Path(wanted) if Path(wanted).is_absolute() else ROOT / wanted
    else:
        folder = tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(page, folder: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _invoices(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("table.relances tbody tr[data-facture]").evaluate_all(
        "rows => rows.map(r => r.dataset.facture)")


def test_a_day_at_the_reminders_table(server: str, page, shots: Path) -> None:  # type: ignore[no-untyped-def]
    # Anonymous: the login page, then the table the visitor asked for.
    page.goto(f"{server}/relances")
    assert page.locator("h1").inner_text() == "Connexion"
    page.get_by_label("Nom d'utilisateur").fill("gestion")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    _shot(page, shots, "connexion.png")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{server}/relances")
    assert _invoices(page) == ["COD_F1023", "COD_F1026", "EV-1", "EV-2"]
    # Hostile names are shown as text: the cells hold the very characters.
    names = page.locator("table.relances tbody td:nth-child(3)").all_inner_texts()
    assert '<script>alert("nom")</script>' in names[2] and '"><img' in names[3]

    # Filter: the URL says what is shown.
    page.get_by_label("Client").fill("intel")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**/relances?client=intel**")
    assert _invoices(page) == ["COD_F1026"]
    assert "1 facture" in page.locator("#totaux").inner_text()
    page.get_by_role("link", name="Effacer les filtres").click()
    page.wait_for_url(f"{server}/relances")

    # Set a level inline: choosing it sends it (the script hides the OK button).
    level = page.get_by_label("Niveau de relance de COD_F1023")
    assert page.locator('tr[data-facture="COD_F1023"] button.sans-script').is_hidden()
    with page.expect_navigation():
        level.select_option("2")
    assert "COD_F1023 : niveau 0 → 2." in page.locator(".message").inner_text()
    assert page.get_by_label("Niveau de relance de COD_F1023").input_value() == "2"
    _shot(page, shots, "relances.png")

    # Record a payment and watch the row leave.
    row = page.locator('tr[data-facture="COD_F1026"]')
    row.get_by_text("Actions").click()
    assert row.get_by_label("Montant du règlement de COD_F1026").input_value() == "680,40"
    row.get_by_label("Réf.").fill("CHQ-4711")
    _shot(page, shots, "reglement.png")
    row.get_by_role("button", name="Enregistrer le règlement").click()
    page.wait_for_selector('tr[data-facture="COD_F1026"]', state="detached")
    assert _invoices(page) == ["COD_F1023", "EV-1", "EV-2"]
    assert "facture soldée" in page.locator(".message").inner_text()

    # The invoice and its history, written under the logged-in name.
    page.goto(f"{server}/factures/COD_F1026")
    history = page.locator("table.historique").inner_text()
    assert "Règlement de 680,40 €" in history and "gestion" in history
    page.goto(f"{server}/factures/COD_F1023")
    assert "Niveau modifié à la main : 0 → 2" in page.locator("table.historique").inner_text()
    _shot(page, shots, "facture.png")
    page.goto(f"{server}/clients/DAN01")
    assert "Total dû 253,06 €" in page.locator(".fiche .totaux").inner_text()
    _shot(page, shots, "client.png")

    # No script ran from a customer's name, and the policy blocked nothing of ours.
    assert page.problems == []


def _log_in(page, server: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/login")
    page.get_by_label("Nom d'utilisateur").fill(name)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{server}/relances")


def test_escalating_previewing_and_sending_a_letter(server: str, page, shots: Path,  # type: ignore[no-untyped-def]
                                                    people: Cli) -> None:
    from relances.daemon.config import load_settings

    _log_in(page, server, "envoi")
    # The escalation's dry run lists what would move; nothing is written until applied.
    page.get_by_role("button", name="Simuler").click()
    assert "0 → 1" in page.locator("table.escalade").inner_text()
    page.get_by_role("button", name="Appliquer l'incrémentation").click()
    page.wait_for_url(f"{server}/relances")
    assert "4 factures passées au niveau supérieur (niveau 1 : 4)." in \
        page.locator(".message").inner_text()

    # A row's letter: its page, the preview as the PDF it would be, then the send.
    row = page.locator('tr[data-facture="COD_F1023"]')
    row.get_by_text("Actions").click()
    row.get_by_role("link", name="Envoyer ou réimprimer…").click()
    page.wait_for_url(f"{server}/envoi/COD_F1023")
    href = page.get_by_role("link", name="Aperçu de la lettre (niveau 1)").get_attribute("href")
    preview = page.request.get(f"{server}{href}")
    assert preview.ok and preview.headers["content-type"] == "application/pdf"
    assert preview.body().startswith(b"%PDF")
    page.get_by_label("Canal").select_option("archive")
    page.get_by_role("button", name="Envoyer", exact=True).click()
    page.wait_for_url(f"{server}/envoi/COD_F1023")
    assert page.locator(".message").inner_text() == "COD_F1023 : 1 envoyée (archive : 1)."
    _shot(page, shots, "envoi.png")

    # The PDF that left opens from the documents sent, byte for byte the archived file.
    link = page.locator("table.documents").get_by_role("link", name="Ouvrir le PDF")
    sent = page.request.get(f"{server}{link.get_attribute('href')}")
    [archived] = (load_settings(people.settings).data_path / "letters").glob("*.pdf")
    assert sent.body() == archived.read_bytes()

    page.get_by_role("link", name="Tableau de bord").click()
    page.wait_for_url(f"{server}/tableau-de-bord")
    assert page.locator("svg.graphique rect").count() == 4
    assert "Archive" in page.locator("table.recouvrement").inner_text()
    _shot(page, shots, "tableau-de-bord.png")
    assert page.problems == []


def test_editing_the_level_1_letter_with_its_live_preview(server: str, page, shots: Path,  # type: ignore[no-untyped-def]
                                                          people: Cli) -> None:
    import io

    from pypdf import PdfReader

    from relances.daemon.config import load_settings

    # What the server answers the frame's requests, passed on to the frame unchanged.
    answers: list[bytes] = []

    def keep(route) -> None:  # type: ignore[no-untyped-def]
        response = route.fetch()
        if response.headers["content-type"] == "application/pdf":
            answers.append(response.body())
        route.fulfill(response=response)

    def previewed(count: int) -> str:
        deadline = time.monotonic() + 30
        while len(answers) < count:
            assert time.monotonic() < deadline, f"{len(answers)} previews, not {count}"
            page.wait_for_timeout(100)
        return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(answers[-1])).pages)

    page.route(f"{server}/courriers/apercu", keep)
    _log_in(page, server, "admin")
    page.get_by_role("link", name="Courriers").click()
    assert "Il s'agit sans doute d'un simple oubli." in previewed(1)
    text = page.locator("#texte")
    # A merge field clicked goes in at the cursor; the preview follows the text by itself.
    original = text.input_value()
    at = original.index("Il s'agit")
    text.evaluate(f"t => {{ t.setSelectionRange({at}, {at}); }}")
    page.locator('button.champ[data-champ="{{ customer.name }}"]').click()
    assert "{{ customer.name }}Il s'agit" in text.input_value()
    assert "DANIERE FLORENCEIl s'agit" in previewed(2)
    text.fill(original.replace("Il s'agit sans doute d'un simple oubli.",
                               "Un simple oubli, sans doute, {{ customer.name }} ?"))
    assert "Un simple oubli, sans doute, DANIERE FLORENCE ?" in previewed(3)
    _shot(page, shots, "courriers.png")
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer").click()
    assert page.url == f"{server}/courriers?niveau=1&langue=fr"
    assert "enregistrée dans" in page.locator(".message").inner_text()
    saved = load_settings(people.settings).data_path / "templates" / "fr" / "letter_1.html"
    assert "Un simple oubli, sans doute" in saved.read_text(encoding="utf-8")

    # A template the check refuses is not saved, and the text typed stays.
    text.fill(original.replace("<p>Madame, Monsieur,</p>", "<p>{{ facture.numero }}</p>"))
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer").click()
    assert "Modèle refusé" in page.locator(".message.error").inner_text()
    assert "unknown merge field 'facture'" in page.locator(".message.error").inner_text()
    assert "<p>{{ facture.numero }}</p>" in page.locator("#texte").input_value()
    assert "Un simple oubli, sans doute" in saved.read_text(encoding="utf-8")
    page.unroute_all(behavior="ignoreErrors")
    # The refusal is a 422, which the console reports; nothing else went wrong.
    assert [p for p in page.problems if "status of 422" not in p] == []
