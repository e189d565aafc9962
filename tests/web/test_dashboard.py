"""Tableau de bord: the overdue amount by age as an SVG chart, what each level
and channel recovered within 15 days, what waits for someone, the last runs."""

from __future__ import annotations

import re

from helpers import Cli


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_board_shows_ages_recovery_and_runs(as_role, people: Cli, tsv) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1023", "1"])
    people(["send", "--invoice", "COD_F1023"])
    people(["pay", "COD_F1023", "53,06"])  # today: within 15 days of the letter
    browser = as_role("lecture")
    page = browser.get("/tableau-de-bord")
    assert page.status_code == 200
    html = page.text
    # Every overdue invoice of the sample is more than 90 days late.
    bars = dict(re.findall(r'<rect class="barre-(\d)" x="140" y="\d+" width="(\d+)"', html))
    assert bars == {"0": "0", "1": "0", "2": "0", "3": "420"}, bars
    words = text_of(html)
    assert "plus de 90 jours : 1 080,40 € 1 080,40 € (4 factures)" in words
    assert re.search(r"1\s+Archive\s+1\s+1 \(100 %\)\s+53,06 €", words), words
    assert "Aucune relance à valider." in words and "0 envoi en échec" in words
    assert re.search(r"Import des factures \S+ \S+ tester invoices.tsv: ", words), words
    assert re.search(r"Envoi \S+ \S+ tester 1 queued; 1 sent", words), words
    assert '<svg class="graphique" role="img"' in html and "<script" not in html.split("<main>")[1]


def test_a_payment_long_after_the_letter_is_not_recovered_by_it(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1026", "2"])
    people(["send", "--invoice", "COD_F1026", "--as-of", "2026-11-01"])
    people(["pay", "COD_F1026", "80", "--on", "2026-10-31"])  # before the letter
    words = text_of(as_role("lecture").get("/tableau-de-bord").text)
    assert re.search(r"2\s+Archive\s+1\s+0 \(0 %\)\s+0,00 €", words), words


def test_a_payment_recorded_before_the_days_letter_is_not_recovered_by_it(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["set-level", "COD_F1023", "1"])
    people(["pay", "COD_F1023", "50"])  # today, before the letter
    people(["send", "--invoice", "COD_F1023"])
    words = text_of(as_role("lecture").get("/tableau-de-bord").text)
    assert re.search(r"1\s+Archive\s+1\s+0 \(0 %\)\s+0,00 €", words), words
