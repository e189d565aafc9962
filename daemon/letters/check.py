"""Render every template once against samples, at configuration load.

A bad template fails ``relances check-config`` and the daemon's start with
the file, the line and the field, not in the middle of a run.
"""

from __future__ import annotations

import logging
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RenderError
from relances.daemon.letters.mergefields import sample_context, sample_report_context
from relances.daemon.letters.templating import (
    LANGUAGES,
    STYLESHEET,
    find_file,
    logo_path,
    make_environment,
    render_template,
    template_dirs,
)

log = logging.getLogger(__name__)

EMAIL_TEMPLATES = ("email.txt", "email.html")


def _samples(settings: Settings, language: str) -> list[tuple[str, dict[str, Any]]]:
    """(template, context) pairs covering every level, kind and customer type."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for level in (1, 2, 3):
        for consumer in (False, True):
            letter = sample_context(settings, kind="letter", level=level,
                                    language=language, consumer=consumer)
            statement = sample_context(settings, kind="statement", level=level,
                                       language=language, consumer=consumer)
            pairs.append((f"letter_{level}.html", letter))
            pairs.append(("statement.html", statement))
            pairs += [(name, ctx) for name in EMAIL_TEMPLATES for ctx in (letter, statement)]
    pairs.append(("report.html", sample_report_context(settings, language)))
    return pairs


def _check_language(settings: Settings, language: str) -> None:
    env = make_environment(settings, language)
    for template, context in _samples(settings, language):
        try:
            render_template(env, template, context)
        except RenderError as exc:
            raise ConfigError(str(exc)) from None
    try:
        find_file(template_dirs(settings, language), STYLESHEET)
    except RenderError as exc:
        raise ConfigError(str(exc)) from None


def _warnings(settings: Settings) -> list[str]:
    warnings = []
    for name, policy in settings.policies.items():
        if not policy.level(3).attach_invoice:
            warnings.append(
                f"{settings.where('policies', name, 'levels', 3, 'attach_invoice')}: level 3 "
                "sends no copy of the invoice; in France a formal notice should carry one")
    logo = logo_path(settings)
    if logo is not None and not logo.is_file():
        warnings.append(f"{settings.where('sender', 'logo')}: logo file not found: {logo}")
    return warnings


def check_templates(settings: Settings) -> list[str]:
    """Render every template of every language once against a sample.

    Raises :class:`ConfigError` (``FILE:LINE: unknown merge field 'x'``) on
    the first unknown field, syntax error or sandbox violation; returns
    warnings for things that are allowed but probably wrong.
    """
    user = settings.letters.templates_dir
    if user is not None and not settings.path(user).is_dir():
        raise ConfigError(f"{settings.where('letters', 'templates_dir')}: "
                          f"templates folder not found: {settings.path(user)}")
    for language in LANGUAGES:
        _check_language(settings, language)
    warnings = _warnings(settings)
    return warnings
