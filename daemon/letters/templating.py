"""The Jinja2 environment letters are written in, and what it may reach.

Templates are edited by users, so they are untrusted: they run in an
immutable sandbox with strict undefined and autoescape, see only plain
dicts, and the PDF engine fetches nothing but files under the templates
folders (``data:`` URLs aside).  A user folder (``letters.templates_dir``)
overrides any packaged template of the same name.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint.urls import URLFetcher, URLFetcherResponse

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


def template_dirs(settings: Settings, language: str) -> list[Path]:
    """Where templates are looked up, first match wins: the user's folder, then ours."""
    dirs: list[Path] = []
    if settings.letters.templates_dir is not None:
        user = settings.path(settings.letters.templates_dir)
        dirs += [user / language, user / "common"]
    dirs += [PACKAGE_DIR / language, PACKAGE_DIR / "common"]
    return dirs


def find_file(dirs: Iterable[Path], name: str) -> Path:
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise RenderError(f"template file {name!r} not found in {', '.join(map(str, dirs))}")


# --- filters: Babel formats for the letter's language --------------------------------


def _money(locale: str) -> Any:
    def money(value: Decimal | int | str | None) -> str:
        if value is None:
            return ""
        return format_currency(Decimal(value), CURRENCY, locale=locale)

    return money


def _date(locale: str) -> Any:
    def date(value: dt.date | None, style: str = "short") -> str:
        if value is None:
            return ""
        pattern = _SHORT_DATE if style == "short" else style
        return format_date(value, pattern, locale=locale)

    return date


def _rate(locale: str) -> Any:
    def rate(value: Decimal | int | str) -> str:
        # French writes a no-break space before the percent sign; English does not.
        sep = "\u00a0" if locale.startswith("fr") else ""
        return f"{format_decimal(Decimal(value), locale=locale)}{sep}%"

    return rate


def _autoescape(name: str | None) -> bool:
    # Plain-text email bodies are not HTML: escaping would show "&amp;" to the reader.
    return not (name or "").endswith(".txt")


def make_environment(settings: Settings, language: str) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment for one language, with its Babel filters."""
    locale = LOCALES[language]
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader([str(d) for d in template_dirs(settings, language)]),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(money=_money(locale), date=_date(locale), rate=_rate(locale))
    return env


# --- errors that name the file, the line and the field ---------------------------------

_UNDEFINED = (re.compile(r"has no attribute '([^']+)'"), re.compile(r"'([^']+)' is undefined"))


def _template_frame(exc: BaseException, env: ImmutableSandboxedEnvironment) -> str:
    """``FILE:LINE`` of the innermost template frame of a runtime error."""
    where = "<template>"
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt")):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def describe_template_error(exc: Exception, env: ImmutableSandboxedEnvironment) -> str:
    """One line: ``FILE:LINE: unknown merge field 'x'`` and the like."""
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
    where = _template_frame(exc, env)
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
    """Render one template; any template fault becomes a :class:`RenderError`."""
    try:
        return env.get_template(name).render(context)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise RenderError(describe_template_error(exc, env)) from None


# --- what WeasyPrint may fetch -------------------------------------------------------


class TemplateFetcher(URLFetcher):
    """Serves files under the templates folders (and ``data:`` URLs), nothing else.

    A refused URL raises, which WeasyPrint logs and treats like a broken
    link: an image shows its alt text, a stylesheet is skipped.
    """

    def __init__(self, roots: Iterable[Path], files: Iterable[Path] = ()) -> None:
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False)
        self.roots = tuple(p.resolve() for p in roots)
        self.files = frozenset(p.resolve() for p in files)

    def allows(self, path: Path) -> bool:
        return path in self.files or any(path.is_relative_to(root) for root in self.roots)

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"refused {url}: letters only use files of the templates folder")
        path = Path(url2pathname(parts.path)).resolve()
        if not self.allows(path) or not path.is_file():
            raise ValueError(f"refused {url}: not a file of the templates folder")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": mime})


def logo_path(settings: Settings) -> Path | None:
    return settings.path(settings.sender.logo) if settings.sender.logo else None


def make_fetcher(settings: Settings, language: str) -> TemplateFetcher:
    logo = logo_path(settings)
    return TemplateFetcher(template_dirs(settings, language), [logo] if logo else [])
