"""À valider: the reminders of levels without ``auto_send`` wait for a person,
who approves them (they leave) or drops them (they are not proposed again)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import yaml
from helpers import Cli
from web.support import Browser, make_client
from web.test_sending import archived, messages


@pytest.fixture
def reviewer(people: Cli) -> Iterator[Browser]:
    """The envoi account, with level 2 of the default policy waiting for a person."""
    data = yaml.safe_load(people.settings.read_text(encoding="utf-8"))
    data["policies"]["default"]["levels"][2]["auto_send"] = False
    people.settings.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for number, level in (("COD_F1023", "2"), ("COD_F1026", "2"), ("EV-1", "2"), ("EV-2", "1")):
        people(["set-level", number, level])
    with make_client(people.settings) as client:
        browser = Browser(client)
        assert browser.login("envoi").status_code == 303
        yield browser


def waiting(browser: Browser) -> list[str]:
    return re.findall(r'data-a-valider="([^"]+)"', browser.get("/a-valider").text)


def test_levels_without_auto_send_wait_for_approval(reviewer: Browser, people: Cli) -> None:
    assert waiting(reviewer) == ["COD_F1023", "COD_F1026", "EV-1"]  # EV-2's level 1 is automatic
    page = reviewer.get("/a-valider").text
    assert "3 relances en attente (niveau 2)" in re.sub(r"<[^>]+>", "", page)
    assert 'href="/apercu/COD_F1023?niveau=2"' in page
    assert not archived(people)  # showing the list wrote and sent nothing

    reviewer.post("/actions/valider", {"numero": "COD_F1023"})
    assert "COD_F1023 : 1 envoyée (archive : 1)." in messages(reviewer.get("/a-valider").text)
    assert len(archived(people)) == 1 and waiting(reviewer) == ["COD_F1026", "EV-1"]

    reviewer.post("/actions/ecarter", {"numero": "COD_F1026"})
    page = reviewer.get("/a-valider").text
    assert "1 relance écartée : elle ne sera plus proposée à ce niveau." in messages(page)
    assert waiting(reviewer) == ["EV-1"] and len(archived(people)) == 1
    assert re.search(r"Relance niveau 2 écartée à la validation\s+envoi",
                     people(["history", "COD_F1026"]).stdout)
    # Dropped is not sent by hand either, unless forced.
    assert "COD_F1026" not in people(["send", "--dry-run"]).stdout

    reviewer.post("/actions/valider", {"tout": "1"})
    deadline = time.monotonic() + 60
    while "Dernier envoi groupé" not in (table := reviewer.get("/relances").text):
        assert time.monotonic() < deadline, table
        time.sleep(0.2)
    assert "Dernier envoi groupé (envoi, 1 relance) : 1 envoyée (archive : 1)." in table
    assert waiting(reviewer) == [] and len(archived(people)) == 2


def test_dropping_all_and_refusals(reviewer: Browser, as_role) -> None:  # type: ignore[no-untyped-def]
    reviewer.get("/a-valider")
    reviewer.post("/actions/ecarter", {"tout": "1"})
    assert "3 relances écartées" in " ".join(messages(reviewer.get("/a-valider").text))
    assert waiting(reviewer) == []
    reviewer.post("/actions/valider", {"numero": "NOPE"})
    assert any("NOPE" in m for m in messages(reviewer.get("/a-valider").text))
    reviewer.post("/actions/valider", {})
    assert "Aucune relance désignée." in messages(reviewer.get("/a-valider").text)


def test_a_reader_sees_the_list_and_may_not_decide(reviewer: Browser) -> None:
    reviewer.client.cookies.clear()
    reader = Browser(reviewer.client)
    assert reader.login("gestion").status_code == 303
    page = reader.get("/a-valider").text
    assert "Approuver" not in page and "Tout écarter" not in page
    assert waiting(reader) == ["COD_F1023", "COD_F1026", "EV-1"]
    assert reader.post("/actions/valider", {"tout": "1"}).status_code == 403
    assert reader.post("/actions/ecarter", {"numero": "EV-1"}).status_code == 403
