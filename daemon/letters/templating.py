"""The Jinja2 environment letters are written in, and what it may reach.

Templates are edited by users, so they are untrusted: they run in an
immutable sandbox with strict undefined and autoescape, see only plain
dicts, and neither the loader nor the PDF engine reads anything but
regular files under the templates folders, links resolved (``data:`` URLs
aside).  A user folder (``letters.templates_dir``, by default
``DATA_DIR/templates``) overrides any packaged
template of the same name.  What one template may produce is bounded
(``letters.render_output_mb``, and powers too large to print); its time
and memory are bounded by the worker that runs it
(:mod:`relances.daemon.letters.bounds`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

import relances.templates
from relances.daemon.config import Settings
from relances.daemon.errors import RenderError

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(relances.templates.__file__).resolve().parent
LANGUAGES = ("fr", "en")
LOCALES = {"fr": "fr_FR", "en": "en_GB"}
STYLESHEET = "style.css"
CURRENCY = "EUR"
_SHORT_DATE = "dd/MM/yyyy"


def language_of(settings: Settings, wanted: str | None) -> str:
    """The template language for a customer: theirs if we have it, else the default."""
    return wanted if wanted in LANGUAGES else settings.letters.default_language


def user_folder(settings: Settings) -> Path:
    """The user's templates: ``letters.templates_dir``, else ``DATA_DIR/templates`` (where
    the web screen's letter editor saves)."""
    if settings.letters.templates_dir is not None:
        return settings.path(settings.letters.templates_dir)
    return settings.data_path / "templates"


def template_dirs(settings: Settings, language: str) -> list[Path]:
    """Where templates are looked up, first match wins: the user's folder, then ours."""
    user = user_folder(settings)
    return [user / language, user / "common", PACKAGE_DIR / language, PACKAGE_DIR / "common"]


def find_file(dirs: Iterable[Path], name: str) -> Path:
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise RenderError(f"template file {name!r} not found in {', '.join(map(str, dirs))}")


def template_file(settings: Settings, language: str, name: str) -> str:
    """The file a template name stands for, to name in a message (else the name)."""
    try:
        return str(find_file(template_dirs(settings, language), name))
    except RenderError:
        return name


# --- filters: Babel formats for the letter's language --------------------------------


def _money(locale: str) -> Any:
    def money(value: Decimal | int | str | None) -> str:
        if value is None:
            return ""
        return format_currency(Decimal(value), CURRENCY, locale=locale)

    return money


_FIRST_DAY = re.compile(r"(?<!\d)1(?!\d)")


def _date(locale: str) -> Any:
    def date(value: dt.date | None, style: str = "short") -> str:
        if value is None:
            return ""
        pattern = _SHORT_DATE if style == "short" else style
        text = format_date(value, pattern, locale=locale)
        if value.day == 1 and locale.startswith("fr") and (style in ("long", "full")
                                                            or "MMMM" in style):
            # French writes the first of the month as an ordinal: "le 1er juin 2024".
            text = _FIRST_DAY.sub("1er", text, count=1)
        return text

    return date


def _days(locale: str) -> Any:
    """``1027`` → ``1 027 j`` (``1,027 d``): the figure grouped, a no-break space before
    the unit, so a delay never breaks across two lines."""
    unit = "j" if locale.startswith("fr") else "d"

    def days(value: int) -> str:
        return f"{format_decimal(value, locale=locale)}\u00a0{unit}"

    return days


def _rate(locale: str) -> Any:
    def rate(value: Decimal | int | str) -> str:
        # French writes a no-break space before the percent sign; English does not.
        sep = "\u00a0" if locale.startswith("fr") else ""
        return f"{format_decimal(Decimal(value), locale=locale)}{sep}%"

    return rate


def _autoescape(name: str | None) -> bool:
    # Plain-text email bodies are not HTML: escaping would show "&amp;" to the reader.
    return not (name or "").endswith(".txt")


class FolderLoader(FileSystemLoader):
    """Loads a template only from a regular file inside its folders, links resolved.

    A link in a user's templates folder (``x -> /etc/passwd``) would
    otherwise let ``{% include 'x' %}`` print any file the service can read.
    """

    def __init__(self, folders: Iterable[Path]) -> None:
        folders = list(folders)
        super().__init__([str(f) for f in folders])
        self.roots = tuple(f.resolve() for f in folders)

    def get_source(self, environment: Environment,
                   template: str) -> tuple[str, str, Any]:
        pieces = split_template_path(template)
        for folder, root in zip(self.searchpath, self.roots, strict=True):
            candidate = Path(folder, *pieces)
            if not os.path.lexists(candidate):
                continue
            resolved = candidate.resolve()
            if not resolved.is_relative_to(root):
                raise SecurityError(f"template {template!r} leads outside the templates "
                                    f"folder {folder} (to {resolved})")
            if not resolved.is_file():
                raise SecurityError(f"template {template!r} is not a regular file: {candidate}")
            contents = resolved.read_text(encoding=self.encoding)
            # Never reloaded (auto_reload is off): a worker loads each template once.
            return contents, str(candidate), lambda: True
        raise TemplateNotFound(template, f"{template!r} not found in {', '.join(self.searchpath)}")


# A power prints as many digits as it has, and Python refuses to print an
# integer of more than 4300 digits: a larger one is refused before it is
# computed, as computing it would block the worker past any deadline.
_MAX_DIGITS = 4300


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 \
            and exponent * math.log10(abs(base)) > _MAX_DIGITS:
        raise SecurityError(f"{base} ** {exponent} is too large a number for a letter")
    return base ** exponent


class LetterEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with what one render may produce bounded."""

    intercepted_binops = frozenset({"**"})
    output_limit = 20 << 20  # characters; letters.render_output_mb

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            return _power(left, right)
        return super().call_binop(context, operator, left, right)


def make_environment(settings: Settings, language: str) -> LetterEnvironment:
    """A sandboxed environment for one language, with its Babel filters."""
    locale = LOCALES[language]
    env = LetterEnvironment(
        loader=FolderLoader(template_dirs(settings, language)),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(money=_money(locale), date=_date(locale), rate=_rate(locale),
                       days=_days(locale))
    env.output_limit = settings.letters.render_output_mb << 20
    return env


# --- errors that name the file, the line and the field ---------------------------------

_UNDEFINED = (re.compile(r"has no attribute '([^']+)'"), re.compile(r"'([^']+)' is undefined"))


def _template_frame(exc: BaseException, env: ImmutableSandboxedEnvironment,
                    name: str = "<template>") -> str:
    """``FILE:LINE`` of the innermost template frame of a runtime error, else ``name``."""
    where = name
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt")):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def describe_template_error(exc: Exception, env: ImmutableSandboxedEnvironment,
                            name: str = "<template>") -> str:
    """One line: ``FILE:LINE: unknown merge field 'x'`` and the like."""
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
    where = _template_frame(exc, env, name)
    if isinstance(exc, SecurityError):
        return f"{where}: not allowed in a template: {exc}"
    if isinstance(exc, UndefinedError):
        for pattern in _UNDEFINED:
            match = pattern.search(str(exc))
            if match:
                return f"{where}: unknown merge field {match.group(1)!r}"
        return f"{where}: unknown merge field ({exc})"
    return f"{where}: template error: {exc}"


def render_template(
    env: ImmutableSandboxedEnvironment, name: str, context: Mapping[str, Any]
) -> str:
    """Render one template; any template fault becomes a :class:`RenderError`.

    The text is produced piece by piece, and refused as soon as it passes
    the environment's output limit (``letters.render_output_mb``).
    """
    limit = getattr(env, "output_limit", None)
    try:
        pieces, size = [], 0
        for piece in env.get_template(name).generate(context):
            size += len(piece)
            if limit is not None and size > limit:
                raise RenderError(f"{name}: the template writes more than "
                                  f"{limit >> 20} MB (letters.render_output_mb)")
            if piece:  # a loop writing nothing must not fill the list with nothings
                pieces.append(piece)
        return "".join(pieces)
    except RecursionError as exc:
        raise RenderError(f"{_template_frame(exc, env, name)}: the template calls itself "
                          "without end (a macro calling itself, or an include of itself)") \
            from None
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise RenderError(describe_template_error(exc, env, name)) from None


def logo_path(settings: Settings) -> Path | None:
    return settings.path(settings.sender.logo) if settings.sender.logo else None
