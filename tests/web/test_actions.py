"""The forms that change the ledger: each one works, writes the history with the
logged-in user's name, and is refused to a role that may not use it."""

from __future__ import annotations

import re

import pytest
from helpers import Cli

from relances.daemon.web.accounts import allows


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-facture="([^"]+)"', html)


def test_setting_a_level_from_the_table(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances?client=DAN01")
    response = browser.post("/actions/niveau", {"numero": "COD_F1023", "niveau": "2",
                                                "retour": "/relances?client=DAN01"})
    assert response.status_code == 303 and response.headers["location"] == "/relances?client=DAN01"
    page = browser.get("/relances?client=DAN01").text
    assert "COD_F1023 : niveau 0 → 2." in page
    assert '<option value="2" selected>2</option>' in page
    assert rows(browser.get("/relances?niveau=2").text) == ["COD_F1023"]
    # The same history line as `relances set-level`, under the web user's name.
    history = people(["history", "COD_F1023"]).stdout
    assert re.search(r"Niveau modifié à la main : 0 → 2\s+gestion", history), history


def test_a_full_payment_takes_the_row_out_of_the_table(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    browser.post("/actions/reglement", {"numero": "COD_F1026", "montant": "680,40",
                                        "date": "01/12/2026", "mode": "chèque",
                                        "reference": "CHQ-99", "retour": "/relances"})
    page = browser.get("/relances").text
    assert "COD_F1026 : règlement de 680,40 € enregistré, facture soldée." in page
    assert "COD_F1026" not in rows(page)
    detail = browser.get("/factures/COD_F1026").text
    assert "réglée" in detail and "CHQ-99" in detail and "01/12/2026" in detail
    assert "Règlement de 680,40 € reçu le 01/12/2026 (soldée)" in detail
    assert re.search(r"Règlement de 680,40 € reçu le 01/12/2026 \(soldée\)\s+gestion",
                     people(["history", "COD_F1026"]).stdout)


def test_a_partial_payment_lowers_what_remains(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    browser.post("/actions/reglement", {"numero": "COD_F1023", "montant": "53,06",
                                        "retour": "/relances"})
    page = browser.get("/relances").text
    assert "reste 200,00 €" in page
    assert rows(page)[0] == "COD_F1023" and 'value="200,00"' in page


def test_a_payment_the_ledger_refuses_changes_nothing(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    for amount, message in (("9999", "exceeds"), ("cent", "amount"), ("-5", "positive")):
        browser.post("/actions/reglement", {"numero": "COD_F1023", "montant": amount,
                                            "retour": "/relances"})
        page = browser.get("/relances").text
        assert 'class="message error"' in page and message in page.lower(), amount
    assert "Aucun règlement." in browser.get("/factures/COD_F1023").text
    browser.post("/actions/reglement", {"numero": "NOPE", "retour": "/relances"})
    assert "no invoice numbered &#39;NOPE&#39;" in browser.get("/relances").text


def test_hold_and_release(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    browser.post("/actions/litige", {"numero": "EV-1", "motif": "<b>contesté</b>",
                                     "retour": "/relances"})
    page = browser.get("/relances?litige=oui").text
    assert rows(page) == ["EV-1"]
    assert "&lt;b&gt;contesté&lt;/b&gt;" in page and "<b>contesté" not in page
    assert "Lever le litige" in page
    assert "EV-1" not in rows(browser.get("/relances?litige=non").text)
    browser.post("/actions/fin-litige", {"numero": "EV-1", "retour": "/relances"})
    assert rows(browser.get("/relances?litige=oui").text) == []
    history = people(["history", "EV-1"]).stdout
    assert re.search(r"Fin de litige\s+gestion", history) and "Mise en litige" in history


def test_a_hold_needs_a_reason(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    browser.post("/actions/litige", {"numero": "EV-1", "motif": " ", "retour": "/relances"})
    assert "indiquez le motif du litige" in browser.get("/relances").text
    assert rows(browser.get("/relances?litige=oui").text) == []


def test_a_note_on_the_customer_card(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/clients/INT01")
    response = browser.post("/actions/note", {"client": "INT01", "type": "call",
                                              "texte": "Promet un virement <vendredi>",
                                              "retour": "/clients/INT01"})
    assert response.headers["location"] == "/clients/INT01"
    page = browser.get("/clients/INT01").text
    assert "INT01 : note enregistrée." in page
    assert "<strong>Appel</strong> — gestion : Promet un virement &lt;vendredi&gt;" in page


def test_a_form_goes_back_only_to_this_site(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = browser.post("/actions/niveau", {"numero": "COD_F1023", "niveau": "1",
                                                    "retour": target})
        assert response.headers["location"] == "/relances", target


ACTIONS = [
    ("/actions/niveau", {"numero": "COD_F1023", "niveau": "3"}),
    ("/actions/reglement", {"numero": "COD_F1023", "montant": "253,06"}),
    ("/actions/litige", {"numero": "COD_F1023", "motif": "contesté"}),
    ("/actions/fin-litige", {"numero": "COD_F1023"}),
    ("/actions/note", {"client": "DAN01", "texte": "appel"}),
]


@pytest.mark.parametrize("role", ["lecture", "gestion", "envoi", "admin"])
def test_every_action_checks_the_role_on_the_server(as_role, people: Cli, role: str) -> None:  # type: ignore[no-untyped-def]
    browser = as_role(role)
    browser.get("/relances")
    for path, form in ACTIONS:
        response = browser.post(path, {**form, "retour": "/relances"})
        if allows(role, "gestion"):
            assert response.status_code == 303, path
        else:
            assert response.status_code == 403, path
            assert "Accès refusé" in response.text and "gestion" in response.text
    history = people(["history", "COD_F1023"]).stdout
    notes = people(["customer", "DAN01"]).stdout
    if allows(role, "gestion"):
        assert role in history and "appel" in notes
    else:  # nothing was written
        assert "(aucune étape)" in history and "(aucune)" in notes


def test_a_promise_to_pay_from_the_card_holds_the_customers_reminders(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt
    from zoneinfo import ZoneInfo

    people(["set-level", "COD_F1023", "1"])
    day = dt.datetime.now(ZoneInfo("Europe/Paris")).date() + dt.timedelta(days=7)
    browser = as_role("gestion")
    page = browser.get("/clients/DAN01").text
    assert '<option value="promise">Promesse de règlement</option>' in page
    browser.post("/actions/note", {"client": "DAN01", "type": "promise", "texte": "par virement",
                                   "promesse_le": "", "retour": "/clients/DAN01"})
    assert "DAN01 : indiquez la date du règlement promis." in browser.get("/clients/DAN01").text
    browser.post("/actions/note", {"client": "DAN01", "type": "promise", "texte": "par virement",
                                   "promesse_le": day.strftime("%d/%m/%Y"),
                                   "retour": "/clients/DAN01"})
    until = (day + dt.timedelta(days=3)).strftime("%d/%m/%Y")
    page = browser.get("/clients/DAN01").text
    assert (f"DAN01 : promesse de règlement pour le {day:%d/%m/%Y} enregistrée, relances "
            f"suspendues jusqu&#39;au {until}.") in page
    assert f"Règlement promis pour le {day:%d/%m/%Y} : relances suspendues jusqu'au {until}" in page
    assert f"Promesse de règlement pour le {day:%d/%m/%Y} : par virement" in page
    assert re.search(rf"Promesse de règlement pour le {day:%d/%m/%Y} \(relances suspendues "
                     rf"jusqu&#39;au {until}\)</td><td>gestion", page)
    assert "0 reminders would be sent" in people(["send", "--dry-run"]).stdout


def test_forms_refuse_what_a_person_would_not_mean(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    browser.get("/relances")

    def said(url: str, data: dict[str, str]) -> str:
        browser.post(url, {**data, "retour": "/relances"})
        page = browser.get("/relances").text
        found = re.findall(r'<p class="message error"[^>]*>(.*?)</p>', page, re.S)
        assert found, (url, data)
        return found[-1]

    assert said("/actions/reglement", {"numero": "COD_F1023", "montant": ""}) == \
        "COD_F1023 : indiquez le montant du règlement."
    assert "serait dans le futur" in said("/actions/reglement", {
        "numero": "COD_F1023", "montant": "10", "date": "07/12/2099"})
    assert "« Mode » : 64 caractères au plus (65 saisis)." in said("/actions/reglement", {
        "numero": "COD_F1023", "montant": "10", "mode": "x" * 65})
    assert "serait déjà fini" in said("/actions/litige", {
        "numero": "COD_F1023", "motif": "contesté", "jusqu_au": "01/01/2020"})
    assert "la facture n&#39;est pas en litige" in said("/actions/fin-litige",
                                                         {"numero": "COD_F1023"})
    assert "« Échange » : 4000 caractères au plus" in said("/actions/note", {
        "client": "DAN01", "type": "note", "texte": "x" * 4001})
    people(["pay", "COD_F1026"])
    assert "la facture est réglée" in said("/actions/litige", {"numero": "COD_F1026",
                                                               "motif": "contesté"})
    # Nothing of it was written.
    assert "Aucun règlement." in browser.get("/factures/COD_F1023").text
    history = people(["history", "COD_F1023"]).stdout
    assert "litige" not in history.lower() and "Règlement" not in history
