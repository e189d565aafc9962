"""Courriers: a level's letter edited in the screen, previewed on a real
invoice, saved into the user's templates folder through the template check,
and refused whole when it fails it."""

from __future__ import annotations

import html
import io
import re

from helpers import Cli
from pypdf import PdfReader
from web.test_sending import messages

from relances.daemon.config import load_settings
from relances.daemon.letters.templating import PACKAGE_DIR


def textarea(page: str) -> str:
    match = re.search(r'<textarea id="texte" name="texte"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, page[:3000]
    return html.unescape(match.group(1))


def pdf_text(content: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def draft(level1: str) -> str:
    return level1.replace("Il s'agit sans doute d'un simple oubli.",
                          "Texte revu pour {{ customer.name }}.")


def test_the_editor_shows_the_letter_and_its_merge_fields(as_role) -> None:  # type: ignore[no-untyped-def]
    admin = as_role("admin")
    page = admin.get("/courriers?niveau=1&langue=fr").text
    assert textarea(page) == (PACKAGE_DIR / "fr" / "letter_1.html").read_text(encoding="utf-8")
    assert 'data-champ="{{ customer.name }}"' in page and 'data-champ="{{ invoice.remaining }}"' in page
    assert "Le modèle fourni avec Relances" in page and 'name="numero" value="COD_F1023"' in page
    level3 = admin.get("/courriers?niveau=3&langue=en").text
    assert "Niveau 3 (anglais)" in level3 and "Dear Sir or Madam" in textarea(level3)


def test_a_draft_is_previewed_on_a_real_invoice_without_being_saved(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    admin = as_role("admin")
    text = draft(textarea(admin.get("/courriers?niveau=1&langue=fr").text))
    answer = admin.post("/courriers/apercu", {"niveau": "1", "langue": "fr", "texte": text,
                                              "numero": "COD_F1023"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]
    assert "Texte revu pour DANIERE FLORENCE." in pdf_text(answer.content)
    assert not (load_settings(people.settings).data_path / "templates").exists()
    broken = admin.post("/courriers/apercu", {"niveau": "1", "langue": "fr",
                                              "texte": "{{ client.nom }}", "numero": "COD_F1023"})
    assert broken.status_code == 422 and "Aperçu impossible" in broken.text and "client" in broken.text


def test_saving_writes_the_users_folder_and_letters_use_it(as_role, people: Cli,  # type: ignore[no-untyped-def]
                                                           tmp_path) -> None:
    admin = as_role("admin")
    text = draft(textarea(admin.get("/courriers?niveau=1&langue=fr").text))
    answer = admin.post("/courriers/enregistrer", {"niveau": "1", "langue": "fr", "texte": text})
    assert answer.status_code == 303
    saved = load_settings(people.settings).data_path / "templates" / "fr" / "letter_1.html"
    assert saved.read_text(encoding="utf-8") == text.replace("\r\n", "\n")
    page = admin.get("/courriers?niveau=1&langue=fr").text
    assert any(m.startswith("Lettre de niveau 1 (français) enregistrée dans") for m in messages(page))
    assert "Votre modèle, enregistré dans" in page and textarea(page) == text
    # The command line's letters are the saved ones.
    people(["set-level", "COD_F1023", "1"])
    people(["preview", "COD_F1023", "-o", str(tmp_path / "l.pdf")])
    assert "Texte revu pour DANIERE FLORENCE." in pdf_text((tmp_path / "l.pdf").read_bytes())
    # Back to the built-in letter.
    admin.post("/courriers/retablir", {"niveau": "1", "langue": "fr"})
    assert saved.exists()  # not without the confirmation
    admin.post("/courriers/retablir", {"niveau": "1", "langue": "fr", "confirmer": "1"})
    assert not saved.exists()
    assert "Le modèle fourni avec Relances" in admin.get("/courriers?niveau=1&langue=fr").text


def test_a_template_that_fails_the_check_is_refused_and_the_draft_kept(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    admin = as_role("admin")
    original = textarea(admin.get("/courriers?niveau=2&langue=fr").text)
    folder = load_settings(people.settings).data_path / "templates"
    for wrong, said in (
            (original.replace("{{ invoice.number }}", "{{ facture.numero }}", 1),
             "unknown merge field 'facture'"),
            (original + "{% if %}", "letter_2.html"),
            (original.replace("<p>", "<p>{{ ''.__class__.__mro__ }}", 1), "letter_2.html"),
            ("", "the letter does not name its invoice"),
            ('{% extends "layout.html" %}', "the letter does not name its invoice"),
            ("Bonjour", "the letter does not name its invoice")):
        answer = admin.post("/courriers/enregistrer", {"niveau": "2", "langue": "fr",
                                                       "texte": wrong})
        assert answer.status_code == 422, wrong[-40:]
        [message] = [html.unescape(m) for m in messages(answer.text) if m.startswith("Modèle refusé")]
        assert said in message and str(folder / "fr" / "letter_2.html") in message, message
        assert "relances-draft" not in message
        assert textarea(answer.text) == wrong  # nothing typed is lost
        assert not (folder / "fr" / "letter_2.html").exists()


def test_only_admin_edits_letters(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("envoi")
    assert "/courriers" not in browser.get("/relances").text
    assert browser.get("/courriers").status_code == 403
    for url in ("/courriers/apercu", "/courriers/enregistrer", "/courriers/retablir"):
        assert browser.post(url, {"niveau": "1", "langue": "fr", "texte": "x"}).status_code == 403


def test_a_folder_the_service_cannot_write_is_said(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    # A file where the folder should be: no one, root included, can write into it.
    blocker = load_settings(people.settings).data_path / "templates"
    blocker.write_text("not a folder", encoding="utf-8")
    admin = as_role("admin")
    text = textarea(admin.get("/courriers?niveau=1&langue=fr").text)
    answer = admin.post("/courriers/enregistrer", {"niveau": "1", "langue": "fr", "texte": text})
    assert answer.status_code == 422
    said = html.unescape(" ".join(messages(answer.text)))
    assert f"{blocker / 'fr'}: cannot write there" in said, said
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_joining_the_invoice_copy_is_ticked_in_the_editor(as_role, people: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "l.pdf"
    # Level 3 joins the copy by default: with no invoice PDF, its letter cannot be made.
    refused = people(["preview", "COD_F1023", "--level", "3", "-o", str(out)], ok=False)
    assert refused.exit_code != 0 and "the copy to attach is missing" in refused.stderr
    admin = as_role("admin")
    page = admin.get("/courriers?niveau=3&langue=fr").text
    assert 'name="joindre" value="1" class="envoi-auto" checked' in page
    assert "doit contenir une copie de la facture" not in page
    admin.post("/courriers/copie", {"niveau": "3", "langue": "fr", "politique": "default"})
    page = admin.get("/courriers?niveau=3&langue=fr").text
    assert "La lettre de niveau 3 (default) ne joint plus la copie de la facture." in messages(page)
    assert 'name="joindre" value="1" class="envoi-auto">' in page
    assert ("En France, pour être valide juridiquement, une relance de niveau 3 doit contenir "
            "une copie de la facture.") in page
    people(["preview", "COD_F1023", "--level", "3", "-o", str(out)])
    assert "appended" not in people(["preview", "COD_F1023", "--level", "3", "-o", str(out)]).stdout
    # Level 1 ticked: its letter now needs the copy too.
    admin.post("/courriers/copie", {"niveau": "1", "langue": "fr", "politique": "default",
                                    "joindre": "1"})
    refused = people(["preview", "COD_F1023", "--level", "1", "-o", str(out)], ok=False)
    assert "the copy to attach is missing" in refused.stderr
    assert "doit contenir" not in admin.get("/courriers?niveau=1&langue=fr").text
    admin.post("/courriers/copie", {"niveau": "1", "langue": "fr", "politique": "nope"})
    assert "Politique inconnue : nope" in messages(admin.get("/courriers?niveau=1").text)


def test_a_letter_that_does_not_exist_is_never_saved_over_another(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    admin = as_role("admin")
    admin.get("/courriers")
    folder = load_settings(people.settings).data_path / "templates"
    for level, language in (("9", "fr"), ("1", "xx"), ("", ""), ("1 ", "fr")):
        answer = admin.post("/courriers/enregistrer", {"niveau": level, "langue": language,
                                                       "texte": "x"})
        assert answer.status_code == 303
        said = html.unescape(" ".join(messages(admin.get("/courriers").text)))
        assert "rien n'est changé" in said, said
        for url in ("/courriers/copie", "/courriers/retablir"):
            admin.post(url, {"niveau": level, "langue": language, "confirmer": "1"})
    assert not folder.exists()
    preview = admin.post("/courriers/apercu", {"niveau": "9", "langue": "fr", "texte": "x",
                                               "numero": "COD_F1023"})
    assert preview.status_code == 422 and "rien n&#39;est changé" in preview.text
