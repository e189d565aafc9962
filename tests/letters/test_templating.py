"""Templates: the sandbox, the merge-field check, the fetcher, the filters, the docs."""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from letters_fixtures import ROOT, SENDER, make_settings, pdf_text

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RenderError
from relances.daemon.letters.check import check_templates
from relances.daemon.letters.context import window_address
from relances.daemon.letters.fetcher import TemplateFetcher
from relances.daemon.letters.mergefields import (
    LETTER_FIELDS,
    LETTER_GROUPS,
    REPORT_FIELDS,
    REPORT_GROUPS,
    field_paths,
    markdown,
    sample_context,
    sample_report_context,
)
from relances.daemon.letters.pdf import PdfEngine
from relances.daemon.letters.templating import PACKAGE_DIR, make_environment
from relances.daemon.models import Customer


def override(tmp_path: Path, name: str, text: str, language: str = "fr") -> Settings:
    folder = tmp_path / "my-templates" / language
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return make_settings(tmp_path, letters={"templates_dir": "my-templates"})


def test_packaged_templates_pass_the_check(tmp_path: Path) -> None:
    assert check_templates(make_settings(tmp_path)) == []


def test_unknown_merge_field_names_file_line_and_field(tmp_path: Path) -> None:
    settings = override(tmp_path, "letter_2.html",
                        '{% extends "layout.html" %}\n{% block body %}\n<p>Bonjour\n'
                        "{{ customer.nmae }}</p>\n{% endblock %}\n")
    with pytest.raises(ConfigError) as caught:
        check_templates(settings)
    path = tmp_path / "my-templates" / "fr" / "letter_2.html"
    assert str(caught.value) == f"{path}:4: unknown merge field 'nmae'"


def test_unknown_top_level_field(tmp_path: Path) -> None:
    settings = override(tmp_path, "email.txt", "Bonjour {{ client }}\n")
    with pytest.raises(ConfigError, match=r"email\.txt:1: unknown merge field 'client'"):
        check_templates(settings)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    settings = override(tmp_path, "statement.html", "<p>\n{% if level %}\n<p>oups</p>\n")
    with pytest.raises(ConfigError, match=r"statement\.html:\d+: template syntax error"):
        check_templates(settings)


@pytest.mark.parametrize("expression", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.update({'name': 'x'}) }}",
    "{{ invoices.append(1) }}",
])
def test_sandbox_violations_are_refused(tmp_path: Path, expression: str) -> None:
    settings = override(tmp_path, "letter_1.html", f"<p>{expression}</p>\n", language="en")
    with pytest.raises(ConfigError) as caught:
        check_templates(settings)
    message = str(caught.value)
    assert "letter_1.html:1:" in message and "en" in message
    assert "not allowed in a template" in message or "unknown merge field" in message


def test_missing_templates_folder_is_a_config_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, letters={"templates_dir": "nowhere"})
    with pytest.raises(ConfigError, match="templates folder not found"):
        check_templates(settings)


def test_level_3_without_copy_is_a_warning(tmp_path: Path) -> None:
    levels = {n: {"attach_invoice": False} for n in (1, 2, 3)}
    warnings = check_templates(make_settings(tmp_path, policies={"default": {"levels": levels}}))
    assert len(warnings) == 1 and "policies.default.levels.3.attach_invoice" in warnings[0]


def test_override_wins_over_the_packaged_template(tmp_path: Path) -> None:
    settings = override(tmp_path, "letter_1.html",
                        '{% extends "layout.html" %}{% block body %}<p>Petit rappel amical '
                        "pour {{ invoice.number }}.</p>{% endblock %}")
    engine = PdfEngine(settings)
    text = pdf_text(engine.pdf("fr", "letter_1.html", sample_context(settings)))
    assert "Petit rappel amical pour COD_F1026." in text
    assert "Codial Démo SARL" in text  # the packaged layout still applies


# --- what WeasyPrint may fetch ----------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local web server that records every request it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_hostile_template_fetches_nothing_outside(tmp_path: Path, http_server: tuple[str, list[str]],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    url, requests = http_server
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for letters")
    body = (f'<link rel="stylesheet" href="{url}/evil.css"><p>Lettre</p>'
            f'<img src="{url}/pixel.png" alt="[image refusée]">'
            '<img src="file:///etc/passwd" alt="[passwd refusé]">'
            f'<img src="{secret.as_uri()}" alt="[fichier refusé]">'
            '<img src="../../../../../etc/passwd" alt="[chemin refusé]">'
            f'<p style="background: url({url}/bg.png)">fond</p>')
    settings = override(tmp_path, "letter_1.html", body)
    with caplog.at_level(logging.WARNING):
        pdf = PdfEngine(settings).pdf("fr", "letter_1.html", sample_context(settings))
    assert requests == []
    text = pdf_text(pdf)
    assert "Lettre" in text and "[passwd refusé]" in text and "[image refusée]" in text
    assert "refused" in caplog.text


def test_fetcher_serves_only_template_files_and_data(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG fake")
    fetcher = TemplateFetcher([PACKAGE_DIR / "fr", PACKAGE_DIR / "common"], [logo])
    css = fetcher.fetch((PACKAGE_DIR / "common" / "style.css").as_uri())
    assert b"@page" in css.read() and css.content_type == "text/css"
    css.close()
    assert fetcher.fetch(logo.as_uri()).read() == b"\x89PNG fake"
    assert fetcher.fetch("data:text/plain;base64,b2s=").read() == b"ok"
    for url in ("http://example.com/x.png", "https://example.com/x.png", "ftp://example.com/x",
                "file:///etc/passwd", "file://evil.example/share/x.png",
                (PACKAGE_DIR / "fr" / ".." / ".." / "pyproject.toml").as_uri(),
                (tmp_path / "other.png").as_uri()):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)


# --- Babel filters ---------------------------------------------------------------------


def test_money_and_dates_in_french_and_english(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    fr = make_environment(settings, "fr").filters
    en = make_environment(settings, "en").filters
    assert fr["money"](Decimal("253.06")) == "253,06\u00a0€"
    assert fr["money"](Decimal("1253.06")) == "1\u202f253,06\u00a0€"
    assert fr["date"](dt.date(2023, 11, 24)) == "24/11/2023"
    assert fr["date"](dt.date(2023, 11, 24), "long") == "24 novembre 2023"
    assert fr["rate"](Decimal("12.15")) == "12,15\u00a0%"
    assert en["money"](Decimal("1253.06")) == "€1,253.06"
    assert en["date"](dt.date(2023, 11, 24), "long") == "24 November 2023"


def test_the_first_of_the_month_is_an_ordinal_in_french(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    fr = make_environment(settings, "fr").filters
    en = make_environment(settings, "en").filters
    assert fr["date"](dt.date(2026, 12, 1), "long") == "1er décembre 2026"
    assert fr["date"](dt.date(2026, 12, 1), "full") == "mardi 1er décembre 2026"
    assert fr["date"](dt.date(2026, 12, 11), "long") == "11 décembre 2026"
    assert fr["date"](dt.date(2026, 12, 21), "long") == "21 décembre 2026"
    assert fr["date"](dt.date(2026, 12, 1)) == "01/12/2026"  # figures stay figures
    assert en["date"](dt.date(2026, 12, 1), "long") == "1 December 2026"
    assert fr["days"](1027) == "1\u202f027\u00a0j" and fr["days"](8) == "8\u00a0j"
    assert en["days"](1027) == "1,027\u00a0d"


def test_a_domestic_address_given_with_a_country_code_leaves_the_country_out(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    home = Customer(code="C1", name="Martin", address_line1="12 rue de la République",
                    postal_code="69002", city="Lyon", country="FR")
    abroad = Customer(code="C2", name="Dupont", address_line1="Rue Neuve 1",
                      postal_code="1000", city="Bruxelles", country="Belgique")
    assert window_address(settings, home) == ["12 rue de la République", "69002 Lyon"]
    assert window_address(settings, abroad)[-1] == "Belgique"


# --- the documentation cannot drift ----------------------------------------------------


def test_catalogue_names_exactly_the_fields_templates_get(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    produced = set()
    for kind in ("letter", "statement"):
        produced |= set(field_paths(sample_context(settings, kind=kind, level=3), LETTER_GROUPS))
    assert produced == set(LETTER_FIELDS)
    report = sample_report_context(settings)
    assert set(field_paths(report, REPORT_GROUPS)) == set(REPORT_FIELDS)


def test_merge_fields_doc_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "merge-fields.md").read_text(encoding="utf-8")
    assert doc == markdown(), \
        "regenerate: python -m relances.daemon.letters.mergefields > docs/merge-fields.md"


def test_a_link_out_of_the_templates_folder_is_refused(tmp_path: Path) -> None:
    """``ln -s /etc/passwd fr/x`` then ``{% include 'x' %}`` must not print the file."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET-LINE\n", encoding="utf-8")
    settings = override(tmp_path, "letter_1.html", "<p>{% include 'x' %}</p>\n")
    link = tmp_path / "my-templates" / "fr" / "x"
    link.symlink_to(secret)
    with pytest.raises(ConfigError) as caught:
        check_templates(settings)
    assert str(caught.value) == (
        f"{tmp_path / 'my-templates' / 'fr' / 'letter_1.html'}:1: not allowed in a template: "
        f"template 'x' leads outside the templates folder {link.parent} (to {secret})")
    with pytest.raises(RenderError, match="template 'x' leads outside the templates folder"):
        PdfEngine(settings).pdf("fr", "letter_1.html", {})


def test_a_linked_folder_or_letter_out_of_the_templates_folder_is_refused(
        tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.html").write_text("SECRET-LINE", encoding="utf-8")
    settings = override(tmp_path, "statement.html", "{% include 'etc/secret.html' %}")
    folder = tmp_path / "my-templates" / "fr"
    (folder / "etc").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"statement\.html:1: not allowed in a template: "
                                          r"template 'etc/secret\.html' leads outside"):
        check_templates(settings)
    (folder / "statement.html").unlink()
    (folder / "statement.html").symlink_to(elsewhere / "secret.html")
    with pytest.raises(ConfigError, match=r"^statement\.html: not allowed in a template: "
                                          r"template 'statement\.html' leads outside"):
        check_templates(settings)


def test_a_link_inside_the_templates_folder_still_works(tmp_path: Path) -> None:
    settings = override(tmp_path, "greeting.html", "<p>Bonjour {{ customer.name }}</p>")
    folder = tmp_path / "my-templates" / "fr"
    (folder / "salut.html").symlink_to(folder / "greeting.html")
    (folder / "letter_1.html").write_text(
        '{% extends "layout.html" %}{% block body %}{% include "salut.html" %}{% endblock %}',
        encoding="utf-8")
    assert check_templates(settings) == []
    html = PdfEngine(settings).html("fr", "letter_1.html", sample_context(
        settings, kind="letter", level=1, language="fr", consumer=False))
    assert "<p>Bonjour INTEL</p>" in html


def test_a_passed_check_is_remembered_until_what_it_read_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relances.daemon.letters import check

    (tmp_path / "data").mkdir()
    good = '{% extends "layout.html" %}\n{% block body %}<p>{{ customer.name }}</p>{% endblock %}\n'
    settings = override(tmp_path, "letter_2.html", good)
    runs: list[int] = []
    real = check.check_samples
    monkeypatch.setattr(check, "check_samples", lambda s: (runs.append(1), real(s))[1])

    check_templates(settings)
    check_templates(settings)
    assert len(runs) == 1  # the second start read the fingerprint and skipped the samples
    assert (tmp_path / "data" / check.CHECKED).is_file()

    # A setting the samples use is a new check.
    check_templates(make_settings(tmp_path, letters={"templates_dir": "my-templates"},
                                  sender={**SENDER, "name": "Autre SARL"}))
    assert len(runs) == 2

    # A template broken after a passed check fails the next one.
    broken = override(tmp_path, "letter_2.html", good.replace("customer.name", "customer.nmae"))
    with pytest.raises(ConfigError, match="unknown merge field 'nmae'"):
        check_templates(broken)
    with pytest.raises(ConfigError, match="unknown merge field 'nmae'"):
        check_templates(broken)  # a failed check is never remembered
    assert len(runs) == 4


def test_the_fingerprint_reads_no_fifo_and_follows_no_link(tmp_path: Path) -> None:
    import os

    from relances.daemon.letters import check

    settings = override(tmp_path, "letter_1.html", "<p>x</p>")
    folder = tmp_path / "my-templates" / "fr"
    os.mkfifo(folder / "tube")  # opened, it would block the start for ever
    (folder / "passwd.html").symlink_to("/etc/passwd")
    first = check.fingerprint(settings)
    assert check.fingerprint(settings) == first
    (folder / "letter_1.html").write_text("<p>y</p>", encoding="utf-8")
    assert check.fingerprint(settings) != first
