"""The letter editor's check: every letter Relances ships passes it as it is, in
each language, and the drafts it exists to stop do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_settings

from relances.daemon.config import load_settings
from relances.daemon.errors import ConfigError
from relances.daemon.letters import editing
from relances.daemon.letters.templating import PACKAGE_DIR


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(write_settings(tmp_path / "settings.yaml"))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_shipped_letter_passes_the_editors_check(settings, language: str) -> None:  # type: ignore[no-untyped-def]
    for level in (1, 2, 3):
        text = (PACKAGE_DIR / language / f"letter_{level}.html").read_text(encoding="utf-8")
        editing.check_draft(settings, language, level, text)


def test_a_letter_that_names_its_invoice_only_through_the_layout_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    for text in ("", '{% extends "layout.html" %}',
                 '{% extends "layout.html" %}{% block body %}<p>Bonjour</p>{% endblock %}'):
        with pytest.raises(ConfigError, match="does not name its invoice"):
            editing.check_draft(settings, "fr", 2, text)
    editing.check_draft(settings, "fr", 2, '{% extends "layout.html" %}{% block body %}'
                        '<p>Facture {{ invoice.number }}</p>{% endblock %}')
