"""The JSON API: bearer tokens, roles, the reminders table, invoices, customers,
payments and holds, and its OpenAPI description."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from helpers import Cli
from web.support import Browser, relances


@pytest.fixture
def tokens(people: Cli) -> dict[str, str]:
    made = {}
    for role in ("lecture", "gestion"):
        made[role] = relances(people, ["user", "token", f"erp-{role}", "--role", role]
                              ).stdout.splitlines()[0]
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/api/reminders", "/api/invoices/COD_F1023", "/api/customers/DAN01",
                                  "/api/invoices?customer=DAN01", "/api/openapi.json"])
def test_without_a_valid_token_the_api_answers_401(client: TestClient, people: Cli, path: str) -> None:
    for headers in ({}, bearer("rl_not-a-token"), {"Authorization": "Basic Z2VzdGlvbjp4"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "authentification requise"}


def test_a_revoked_token_is_refused(client: TestClient, people: Cli, tokens: dict[str, str]) -> None:
    assert client.get("/api/reminders", headers=bearer(tokens["lecture"])).status_code == 200
    assert "revoked" in relances(people, ["user", "revoke", "erp-lecture"]).stdout
    assert client.get("/api/reminders", headers=bearer(tokens["lecture"])).status_code == 401


def test_the_reminders_table(client: TestClient, tokens: dict[str, str]) -> None:
    body = client.get("/api/reminders", headers=bearer(tokens["lecture"])).json()
    assert body["count"] == 4 and body["total"] == "1133.46" and body["pages"] == 1
    first = body["rows"][0]
    assert first["invoice_number"] == "COD_F1023" and first["remaining"] == "253.06"
    assert first["due_date"] == "2023-11-24" and first["settlement"] == "1"
    names = [r["customer_name"] for r in body["rows"]]
    assert '<script>alert("nom")</script>' in names  # data, not markup: JSON carries it as is
    wanted = client.get("/api/reminders", headers=bearer(tokens["lecture"]),
                        params={"min_remaining": "200", "sort": "reste", "descending": "true"}).json()
    assert [r["invoice_number"] for r in wanted["rows"]] == ["COD_F1026", "COD_F1023"]
    assert client.get("/api/reminders", headers=bearer(tokens["lecture"]),
                      params={"sort": "nothing"}).status_code == 422


def test_an_invoice_a_customer_and_its_invoices(client: TestClient, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["lecture"])
    invoice = client.get("/api/invoices/COD_F1026", headers=auth).json()
    assert invoice["customer"] == "INT01" and invoice["total"] == "680.40"
    assert invoice["payments"] == [] and invoice["level"] == 0
    customer = client.get("/api/customers/INT01", headers=auth).json()
    assert customer["name"] == "INTEL" and customer["due"] == "680.40"
    assert [i["number"] for i in customer["invoices"]] == ["COD_F1026"]
    listed = client.get("/api/invoices", params={"customer": "DAN01"}, headers=auth).json()
    assert [i["number"] for i in listed] == ["COD_F1023"]
    assert client.get("/api/invoices/NOPE", headers=auth).status_code == 404
    assert client.get("/api/customers/NOPE", headers=auth).status_code == 404


def test_recording_a_payment(client: TestClient, people: Cli, tokens: dict[str, str]) -> None:
    payment = {"invoice": "COD_F1026", "amount": "80.40", "paid_on": "2026-11-30",
               "method": "virement", "reference": "VIR-1"}
    refused = client.post("/api/payments", json=payment, headers=bearer(tokens["lecture"]))
    assert refused.status_code == 403
    done = client.post("/api/payments", json=payment, headers=bearer(tokens["gestion"]))
    assert done.status_code == 201, done.text
    assert done.json() == {"invoice": "COD_F1026", "amount": "80.40", "remaining": "600.00"}
    again = client.post("/api/payments", json=payment, headers=bearer(tokens["gestion"]))
    assert again.status_code == 409
    too_much = client.post("/api/payments", json={"invoice": "COD_F1026", "amount": "9999"},
                           headers=bearer(tokens["gestion"]))
    assert too_much.status_code == 422
    assert re.search(r"Règlement de 80,40 € reçu le 30/11/2026 \(reste 600,00 €\)\s+api:erp-gestion",
                     people(["history", "COD_F1026"]).stdout)
    rest = client.post("/api/payments", json={"invoice": "COD_F1026"},
                       headers=bearer(tokens["gestion"]))
    assert rest.json()["remaining"] == "0.00"
    table = client.get("/api/reminders", headers=bearer(tokens["lecture"])).json()
    assert "COD_F1026" not in [r["invoice_number"] for r in table["rows"]]


def test_holds(client: TestClient, people: Cli, tokens: dict[str, str]) -> None:
    hold = {"invoice": "COD_F1023", "reason": "contesté", "until": "2027-01-31"}
    assert client.post("/api/holds", json=hold, headers=bearer(tokens["lecture"])).status_code == 403
    held = client.post("/api/holds", json=hold, headers=bearer(tokens["gestion"]))
    assert held.status_code == 201 and held.json()["on_hold"] is True
    on_hold = client.get("/api/reminders", params={"on_hold": "true"},
                         headers=bearer(tokens["lecture"])).json()
    assert [r["invoice_number"] for r in on_hold["rows"]] == ["COD_F1023"]
    assert client.delete("/api/holds/COD_F1023", headers=bearer(tokens["lecture"])).status_code == 403
    released = client.delete("/api/holds/COD_F1023", headers=bearer(tokens["gestion"]))
    assert released.json()["on_hold"] is False
    assert "api:erp-gestion" in people(["history", "COD_F1023"]).stdout


def test_notes_and_promises(client: TestClient, people: Cli, tokens: dict[str, str]) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    people(["set-level", "COD_F1023", "1"])
    call = {"customer": "DAN01", "kind": "call", "text": "rappel demain"}
    assert client.post("/api/notes", json=call, headers=bearer(tokens["lecture"])).status_code == 403
    noted = client.post("/api/notes", json=call, headers=bearer(tokens["gestion"]))
    assert noted.status_code == 201 and noted.json()["text"] == "rappel demain"
    day = dt.datetime.now(ZoneInfo("Europe/Paris")).date() + dt.timedelta(days=4)
    promise = {"customer": "DAN01", "kind": "promise", "promised_on": day.isoformat()}
    answer = client.post("/api/notes", json=promise, headers=bearer(tokens["gestion"])).json()
    assert answer["reminders_wait_until"] == (day + dt.timedelta(days=3)).isoformat()
    assert "0 reminders would be sent" in people(["send", "--dry-run"]).stdout
    for wrong, status in (({"customer": "NOPE", "text": "x"}, 404),
                          ({"customer": "DAN01", "kind": "promise"}, 422),
                          ({"customer": "DAN01", "kind": "visite", "text": "x"}, 422),
                          ({"customer": "DAN01", "promised_on": "2020-01-01"}, 422)):
        assert client.post("/api/notes", json=wrong,
                           headers=bearer(tokens["gestion"])).status_code == status, wrong


def test_a_browser_session_does_not_open_the_api_to_changes(client: TestClient, people: Cli) -> None:
    Browser(client).login("admin")
    response = client.post("/api/payments", json={"invoice": "COD_F1023"})
    assert response.status_code == 401
    assert "(aucune étape)" in people(["history", "COD_F1023"]).stdout


def test_the_openapi_description(client: TestClient, tokens: dict[str, str]) -> None:
    spec = client.get("/api/openapi.json", headers=bearer(tokens["lecture"])).json()
    assert spec["info"]["title"] == "Relances"
    assert {"/api/reminders", "/api/invoices", "/api/invoices/{number}", "/api/customers/{code}",
            "/api/payments", "/api/holds", "/api/holds/{number}", "/api/notes"} <= set(spec["paths"])
    assert not [p for p in spec["paths"] if not p.startswith("/api/")]  # the pages are not API
    assert "PaymentIn" in spec["components"]["schemas"]
    # A logged-in person may read it in the browser.
    client.headers.clear()
    Browser(client).login("lecture")
    assert client.get("/api/openapi.json").status_code == 200


def _pushed(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {"number": "ERP-1", "customer_code": "ERP01", "customer_name": "Client ERP",
                              "email": "compta@erp.example", "invoice_date": "2026-09-01",
                              "due_date": "2026-10-01", "total": "120.00", "remaining": "120.00"}
    return {**row, **changes}


def test_an_erp_pushes_invoices_as_an_export_would(client: TestClient, people: Cli,
                                                   tokens: dict[str, str]) -> None:
    body = {"invoices": [_pushed(), _pushed(number="ERP-2", total="80", remaining="80")]}
    assert client.post("/api/invoices", json=body, headers=bearer(tokens["lecture"])).status_code == 403
    answer = client.post("/api/invoices", json=body, headers=bearer(tokens["gestion"]))
    assert answer.status_code == 200 and answer.json()["created"] == 2, answer.text
    again = client.post("/api/invoices", json=body, headers=bearer(tokens["gestion"])).json()
    assert again["created"] == 0 and again["unchanged"] == 2
    # A payment recorded here is not undone by a push that does not know it yet.
    people(["pay", "ERP-1", "20"])
    kept = client.post("/api/invoices", json=body, headers=bearer(tokens["gestion"])).json()
    assert kept["kept_lower"] == 1
    assert "100,00" in people(["invoice", "ERP-1"]).stdout
    assert "invoices  API: 2 rows" in people(["status"]).stdout


@pytest.mark.parametrize(("row", "said"), [
    ({"remaining": "130.00"}, "more than the total"),
    ({"total": "-1"}, "greater than or equal to 0"),
    ({"number": "A\x01B"}, "control character"),
    ({"customer_name": "x" * 300}, "longer than"),
    ({"email": "pas une adresse"}, "email"),
    ({"due_date": "31/02/2026"}, "due_date"),
    ({"total": "1.005", "remaining": "1.005"}, "decimal"),
])
def test_a_bad_invoice_refuses_the_whole_push(client: TestClient, people: Cli, tokens: dict[str, str],
                                              row: dict[str, object], said: str) -> None:
    body = {"invoices": [_pushed(number="GOOD-1"), _pushed(**{"number": "BAD-1", **row})]}
    answer = client.post("/api/invoices", json=body, headers=bearer(tokens["gestion"]))
    assert answer.status_code == 422 and said in answer.text, answer.text
    assert "no invoice numbered 'GOOD-1'" in people(["invoice", "GOOD-1"], ok=False).stderr


def test_a_push_naming_one_invoice_twice_is_refused(client: TestClient, people: Cli,
                                                    tokens: dict[str, str]) -> None:
    body = {"invoices": [_pushed(), _pushed()]}
    answer = client.post("/api/invoices", json=body, headers=bearer(tokens["gestion"]))
    assert answer.status_code == 422
    assert answer.json()["detail"] == "invoices[1]: invoice ERP-1 already appears at invoices[0]"
