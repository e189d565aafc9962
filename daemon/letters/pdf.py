"""One process's PDF engine: templates, stylesheets and fonts loaded once.

Used inside each render worker (see :mod:`relances.daemon.letters.pool`),
where it is given the worker's :class:`~relances.daemon.letters.bounds.Limits`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from relances.daemon.config import Settings
from relances.daemon.errors import RenderError
from relances.daemon.letters.bounds import Limits, bounded, check_size
from relances.daemon.letters.fetcher import TemplateFetcher, inline_html, make_fetcher
from relances.daemon.letters.templating import (
    LANGUAGES,
    STYLESHEET,
    find_file,
    make_environment,
    render_template,
    template_dirs,
    template_file,
)

log = logging.getLogger(__name__)


@dataclass
class _Language:
    env: ImmutableSandboxedEnvironment
    fetcher: TemplateFetcher
    base_url: str
    stylesheets: list[CSS]
    stylesheet_path: Path


class PdfEngine:
    """Renders templates of every language to PDF with shared, preloaded assets.

    With ``limits`` (in a worker process), each template is rendered within
    the deadline and the memory limit, and its PDF within the output cap.
    """

    def __init__(self, settings: Settings, limits: Limits | None = None) -> None:
        self.settings = settings
        self.limits = limits
        self.font_config = FontConfiguration()
        # WeasyPrint's image cache, kept across documents: the logo is decoded once.
        self.image_cache: dict[str, Any] = {}
        self._languages: dict[str, _Language] = {}

    def language(self, language: str) -> _Language:
        loaded = self._languages.get(language)
        if loaded is None:
            loaded = self._languages[language] = self._load(language)
        return loaded

    def _load(self, language: str) -> _Language:
        dirs = template_dirs(self.settings, language)
        fetcher = make_fetcher(self.settings, language)
        base_url = next((d for d in dirs if d.is_dir()), dirs[-1]).resolve().as_uri() + "/"
        css_path = find_file(dirs, STYLESHEET)
        css = CSS(filename=str(css_path), url_fetcher=fetcher, font_config=self.font_config)
        return _Language(make_environment(self.settings, language), fetcher, base_url, [css],
                         css_path)

    def warm_up(self) -> None:
        """Load every language and lay out one page, so fonts are ready before work."""
        for language in LANGUAGES:
            self.language(language)
        loaded = self.language(self.settings.letters.default_language)
        HTML(string="<p>Relances</p>", base_url=loaded.base_url,
             url_fetcher=loaded.fetcher).write_pdf(
            stylesheets=loaded.stylesheets, font_config=self.font_config)

    def html(self, language: str, template: str, context: dict[str, Any]) -> str:
        with bounded(self.limits, template_file(self.settings, language, template)):
            return render_template(self.language(language).env, template, context)

    def standalone_html(self, language: str, template: str, context: dict[str, Any]) -> str:
        """The HTML that :meth:`pdf` lays out, as one file: the stylesheet inlined, the
        images as ``data:`` URLs (``relances preview --html``)."""
        source = self.html(language, template, context)
        loaded = self.language(language)
        stylesheet = loaded.stylesheet_path.read_text(encoding="utf-8")
        return inline_html(source, stylesheet, loaded.base_url, loaded.fetcher)

    def pdf(self, language: str, template: str, context: dict[str, Any]) -> bytes:
        """Render a template with its context to PDF bytes."""
        with bounded(self.limits, template_file(self.settings, language, template)):
            loaded = self.language(language)
            source = render_template(loaded.env, template, context)
            try:
                document = HTML(string=source, base_url=loaded.base_url,
                                url_fetcher=loaded.fetcher)
                pdf: bytes = document.write_pdf(
                    stylesheets=loaded.stylesheets, font_config=self.font_config,
                    cache=self.image_cache,
                )
            except MemoryError:
                raise  # named by bounded(), with the limit
            except Exception as exc:  # WeasyPrint raises many types; name the template
                raise RenderError(f"{template}: PDF rendering failed: {exc}") from None
            finally:
                # Each letter's QR code is a data: URL of its own: kept, the cache
                # would hold every letter's image for the worker's whole life.
                for url in [u for u in self.image_cache if u.startswith("data:")]:
                    del self.image_cache[url]
        return check_size(self.limits, template, pdf)

    def email_bodies(self, language: str, context: dict[str, Any]) -> tuple[str, str]:
        return self.html(language, "email.txt", context), self.html(
            language, "email.html", context)

    def read_copies(self, paths: Sequence[str]) -> list[tuple[str, bytes]]:
        copies = []
        for path in paths:
            try:
                copies.append((Path(path).name, Path(path).read_bytes()))
            except OSError as exc:
                raise RenderError(f"invoice copy {path}: {exc.strerror}") from None
        return copies

    def merge(self, letter: bytes, copies: Sequence[tuple[str, bytes]]) -> bytes:
        """The letter followed by the invoice copies, as one PDF for paper and fax."""
        from pypdf import PdfWriter  # a tenth of a second to import: only with copies
        from pypdf.errors import PyPdfError

        writer = PdfWriter()
        writer.append(io.BytesIO(letter))
        for name, content in copies:
            try:
                writer.append(io.BytesIO(content))
            except (PyPdfError, ValueError, KeyError) as exc:
                raise RenderError(f"invoice copy {name} is not a readable PDF: {exc}") from None
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
