"""The pages: what an anonymous visitor, a reader and a manager see, hostile names escaped."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from helpers import Cli, write_settings
from web.support import HOSTILE, Browser, make_client

ROW = re.compile(r'<tr data-facture="([^"]+)"')


def rows(html: str) -> list[str]:
    return ROW.findall(html)


@pytest.mark.parametrize("path", ["/relances", "/clients/DAN01", "/factures/COD_F1023",
                                  "/relances?client=DAN01&niveau=1"])
def test_an_anonymous_visitor_gets_the_login_page(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?suivant=")
    page = client.get(path)
    assert page.url.path == "/login"
    assert "<h1>Connexion</h1>" in page.text
    assert "DANIERE" not in page.text


def test_logging_in_goes_where_the_visitor_was_going(browser: Browser) -> None:
    page = browser.get("/factures/COD_F1023")
    assert 'name="suivant" value="/factures/COD_F1023"' in page.text
    wrong = browser.post("/login", {"nom": "gestion", "mot_de_passe": "wrong password",
                                    "suivant": "/factures/COD_F1023"})
    assert wrong.status_code == 401
    assert "Nom ou mot de passe incorrect." in wrong.text
    right = browser.post("/login", {"nom": "gestion", "mot_de_passe": "correct horse battery",
                                    "suivant": "/factures/COD_F1023"})
    assert right.status_code == 303 and right.headers["location"] == "/factures/COD_F1023"
    assert "Facture COD_F1023" in browser.get("/factures/COD_F1023").text


def test_a_login_never_sends_the_browser_to_another_site(browser: Browser) -> None:
    browser.get("/login")
    response = browser.post("/login", {"nom": "gestion", "mot_de_passe": "correct horse battery",
                                       "suivant": "//evil.example/"})
    assert response.headers["location"] == "/relances"


def test_the_table_shows_the_seed_columns_and_totals(as_role) -> None:  # type: ignore[no-untyped-def]
    page = as_role("lecture").get("/relances").text
    for header in ("Code", "Affilié", "Nom", "email", "Date Fac.", "N° Fac.", "Affect.", "Repr.",
                   "Total Fac.", "Reste", "Échéance", "Ech.", "Rglmt.", "Relancé le", "N"):
        assert f">{header}<" in page or f">{header} ▲<" in page, header
    assert rows(page) == ["COD_F1023", "COD_F1026", "EV-1", "EV-2"]
    assert "<strong>4</strong> factures" in page
    assert "Total Fac. <strong>1 133,46 €</strong>" in page
    # The seed's first row, cell by cell.
    first = page.split('<tr data-facture="COD_F1023"')[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", first, re.S)]
    assert cells[:14] == ["DAN01", "DAN01", "DANIERE FLORENCE", "", "24/11/2023", "COD_F1023", "PC",
                          "PC", "253,06", "253,06", "24/11/2023", "Divers", "1", "22/11/2024"]


def test_a_reader_is_offered_no_form_that_changes_anything(as_role) -> None:  # type: ignore[no-untyped-def]
    for path in ("/relances", "/clients/DAN01", "/factures/COD_F1023"):
        page = as_role("lecture").get(path).text
        assert "/actions/" not in page, path
    assert "/actions/niveau" in as_role("gestion").get("/relances").text


ESCAPED = ("&lt;script&gt;alert(&#34;nom&#34;)&lt;/script&gt;",
           "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")


def test_hostile_names_are_written_as_text(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("gestion")
    for path, shown in (("/relances", [0, 1]), ("/clients/EVIL1", [0]), ("/clients/EVIL2", [1]),
                        ("/factures/EV-1", [0]), ("/factures/EV-2", [1]),
                        ("/relances?client=%3Cscript%3E", [0])):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        for index in shown:
            assert ESCAPED[index] in page.text, (path, HOSTILE[index])
        # The only script is the package's file: no inline script, no handler, no style.
        assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/relances.js" defer>']
        assert not re.search(r"<[^>]+\son\w+=", page.text), path
        assert "style=" not in page.text, path


FILTERS = [
    ("client=DAN01", ["COD_F1023"]),
    ("client=intel", ["COD_F1026"]),  # a part of the name, in any case
    ("client=%25", []),  # a LIKE wildcard is a character like any other
    ("min=200", ["COD_F1023", "COD_F1026"]),
    ("max=253%2C06", ["COD_F1023", "EV-1", "EV-2"]),
    ("min=200&max=300", ["COD_F1023"]),
    ("niveau=1", []),
    ("niveau=0&client=EVIL2", ["EV-2"]),
    ("litige=non", ["COD_F1023", "COD_F1026", "EV-1", "EV-2"]),
    ("litige=oui", []),
]


def test_the_filters(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("lecture")
    for query, expected in FILTERS:
        page = browser.get(f"/relances?{query}").text
        assert rows(page) == expected, query
        assert f"<strong>{len(expected)}</strong> facture" in page, query


def test_a_filter_that_cannot_be_read_is_said_and_ignored(as_role) -> None:  # type: ignore[no-untyped-def]
    page = as_role("lecture").get("/relances?min=beaucoup&niveau=7").text
    assert "Filtre ignoré : montant illisible." in page and "Filtre ignoré : niveau illisible." in page
    assert len(rows(page)) == 4


SORTS = [
    ("tri=reste&ordre=desc", ["COD_F1026", "COD_F1023", "EV-2", "EV-1"]),
    ("tri=reste", ["EV-1", "EV-2", "COD_F1023", "COD_F1026"]),
    ("tri=nom", ["EV-2", "EV-1", "COD_F1023", "COD_F1026"]),  # '"' < '<' < 'D' < 'I'
    ("tri=echeance&ordre=desc", ["EV-2", "EV-1", "COD_F1026", "COD_F1023"]),
    ("tri=inconnu", ["COD_F1023", "COD_F1026", "EV-1", "EV-2"]),
]


def test_sorting(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("lecture")
    for query, expected in SORTS:
        assert rows(browser.get(f"/relances?{query}").text) == expected, query


def test_a_sorted_header_links_to_the_other_direction_and_keeps_the_filter(as_role) -> None:  # type: ignore[no-untyped-def]
    page = as_role("lecture").get("/relances?client=EVIL1&tri=reste").text
    assert 'href="/relances?client=EVIL1&amp;tri=reste&amp;ordre=desc"' in page


def test_paging_keeps_the_totals_of_every_row(people: Cli, tsv) -> None:  # type: ignore[no-untyped-def]
    many = [f"BULK\t\tVRAC\t\t01/01/2025\tB-{i:03d}\t\t\t10,00\t10,00\t01/02/2025\t\t\t\t\t\t"
            for i in range(25)]
    people(["import", "invoices", str(tsv(*many, name="bulk.tsv"))])
    settings = people.settings.read_text(encoding="utf-8")
    url = re.search(r"url: (.+)", settings).group(1).strip()  # type: ignore[union-attr]
    write_settings(people.settings, {"database.url": url, "web.page_size": 10})
    with make_client(people.settings) as client:
        browser = Browser(client)
        assert browser.login("lecture").status_code == 303
        first = browser.get("/relances").text
        assert len(rows(first)) == 10 and "Page 1 / 3" in first
        assert "<strong>29</strong> factures" in first
        assert 'href="/relances?page=2" rel="next"' in first
        last = browser.get("/relances?page=3").text
        assert len(rows(last)) == 9 and "<strong>29</strong> factures" in last
        assert "Total Fac. <strong>1 383,46 €</strong>" in last
        assert rows(browser.get("/relances?page=99").text) == rows(last)
        shown = set()
        for page in (1, 2, 3):
            shown |= set(rows(browser.get(f"/relances?page={page}&tri=numero").text))
        assert len(shown) == 29


def test_the_customer_card(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["note", "INT01", "Appel : règlement promis", "--kind", "call"])
    page = as_role("lecture").get("/clients/INT01").text
    assert "<h1>INTEL <small>INT01</small></h1>" in page
    assert "compta@intel.example" in page
    assert "COD_F1026" in page and "680,40" in page
    assert "Total dû <strong>680,40 €</strong>" in page
    assert "Appel : règlement promis" in page and "tester" in page


def test_the_customer_card_tells_what_happened_to_its_invoices(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["pay", "COD_F1026", "80", "--reference", "CHQ-7", "--method", "chèque"])
    people(["set-level", "COD_F1026", "2"])
    people(["customer", "INT01", "--kind", "public"])
    page = as_role("lecture").get("/clients/INT01").text
    history = page[page.index("Historique du client"):]
    assert "Aucune étape." not in history
    assert '<a href="/factures/COD_F1026">COD_F1026</a>' in history
    assert "Règlement de 80,00 € reçu le" in history
    assert "Nature du client modifiée" in history  # the customer's own steps too, with no invoice
    assert history.index("Nature du client modifiée") < history.index("Règlement de 80,00 €")


def test_one_escalation_run_shows_on_each_invoice_it_raised(as_role, people: Cli, tsv) -> None:  # type: ignore[no-untyped-def]
    people(["import", "invoices", str(tsv(
        "INT01\t\tINTEL\t\t01/02/2024\tINT-2\t\t\t50,00\t50,00\t01/03/2024\t\t\t\t\t\t",
        name="more.tsv"))])
    people(["escalate", "--customer", "INT01", "--as-of", "2024-11-22"])
    page = as_role("lecture").get("/clients/INT01").text
    history = page[page.index("Historique du client"):]
    raised = [line for line in history.split("<tr>") if "Passage au niveau 1" in line]
    assert sorted(number for number in ("COD_F1026", "INT-2")
                  for line in raised if f'<a href="/factures/{number}">' in line) == [
        "COD_F1026", "INT-2"]  # one run raised both: each shows its step


def test_the_invoice_page(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    people(["pay", "COD_F1026", "80", "--reference", "CHQ-7", "--method", "chèque"])
    page = as_role("lecture").get("/factures/COD_F1026").text
    assert "Facture COD_F1026" in page and "INTEL" in page
    assert "600,40 €" in page  # what remains
    assert "CHQ-7" in page and "80,00" in page
    assert "Règlement de 80,00 € reçu le" in page  # the history, as `relances history` writes it


@pytest.mark.parametrize("path, text", [("/clients/NOPE", "Aucun client de code « NOPE »."),
                                        ("/factures/NOPE", "Aucune facture n° « NOPE ».")])
def test_an_unknown_customer_or_invoice(as_role, path: str, text: str) -> None:  # type: ignore[no-untyped-def]
    page = as_role("lecture").get(path)
    assert page.status_code == 404 and text in page.text


def test_the_invoice_page_opens_its_copy_and_nothing_outside_the_folder(as_role, people: Cli,  # type: ignore[no-untyped-def]
                                                                        tmp_path) -> None:
    from relances.daemon.config import load_settings
    from relances.daemon.ledger.book import invoices_folder

    browser = as_role("lecture")
    assert "aucune dans le dossier des factures" in browser.get("/factures/COD_F1023").text
    assert browser.get("/copies/COD_F1023").status_code == 404
    folder = invoices_folder(load_settings(people.settings))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "COD_F1023.pdf").write_bytes(b"%PDF-1.4 la facture\n%%EOF\n")
    page = browser.get("/factures/COD_F1023").text
    assert 'href="/copies/COD_F1023"' in page
    copy = browser.get("/copies/COD_F1023")
    assert copy.headers["content-type"] == "application/pdf"
    assert copy.content == b"%PDF-1.4 la facture\n%%EOF\n"
    # A link in the folder to a file outside it is not a copy.
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(b"%PDF secret")
    (folder / "COD_F1026.pdf").symlink_to(secret)
    assert browser.get("/copies/COD_F1026").status_code == 404
    assert "aucune dans le dossier des factures" in browser.get("/factures/COD_F1026").text


def test_an_address_that_does_not_exist_gets_a_french_page(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("lecture")
    for url in ("/nonexistent", "/documents/abc"):
        answer = browser.get(url)
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
        assert "Cette page n&#39;existe pas." in answer.text or "Cette page n'existe pas." in answer.text
    assert browser.client.get("/api/nothing").json() == {"detail": "Not Found"}
