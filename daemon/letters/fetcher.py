"""What WeasyPrint may fetch while it lays out a letter: the templates' files only.

Imported by the render workers alone (through :mod:`relances.daemon.letters.pdf`):
importing WeasyPrint takes about a second, which no process that only
prepares letters or reads the ledger should pay.  Also writes a letter's
HTML as one file, its stylesheet and images inlined, for ``relances
preview --html``.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

from relances.daemon.config import Settings
from relances.daemon.letters.templating import logo_path, template_dirs


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

    def data_url(self, url: str) -> str:
        """The file behind ``url`` as a ``data:`` URL (a ``data:`` URL as it is);
        ValueError when the letter may not use it."""
        if urlsplit(url).scheme.lower() == "data":
            return url
        response = self.fetch(url)
        body = base64.b64encode(response.read()).decode("ascii")
        return f"data:{response.headers.get_content_type()};base64,{body}"


def make_fetcher(settings: Settings, language: str) -> TemplateFetcher:
    logo = logo_path(settings)
    return TemplateFetcher(template_dirs(settings, language), [logo] if logo else [])


# --- one self-contained HTML file -------------------------------------------------------

STYLE_MARK = 'data-relances-stylesheet'
"""The attribute of the ``<style>`` element that holds the inlined stylesheet."""

_SRC = re.compile(r'''(\ssrc\s*=\s*)(["'])([^"']*)\2''', re.IGNORECASE)
_CSS_URL = re.compile(r'''url\(\s*(["']?)([^"')]*)\1\s*\)''', re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)


def inline_html(source: str, stylesheet: str, base_url: str, fetcher: TemplateFetcher) -> str:
    """``source`` with ``stylesheet`` in a ``<style>`` of its head and every image (and
    every ``url()`` of the stylesheet) as a ``data:`` URL.

    What the letter may not reach stays as it is: WeasyPrint refuses it too.
    """

    def data(url: str) -> str:
        if not url:
            return url
        try:
            return fetcher.data_url(urljoin(base_url, url))
        except (ValueError, OSError):
            return url

    body = _SRC.sub(lambda m: f"{m[1]}{m[2]}{data(m[3])}{m[2]}", source)
    css = _CSS_URL.sub(lambda m: f'url("{data(m[2])}")', stylesheet)
    # In a <style>, only "</style" could end the element early: written as an escape.
    css = re.sub(r"</(style)", r"<\\/\1", css, flags=re.IGNORECASE)
    style = f"<style {STYLE_MARK}>\n{css}</style>\n"
    head = _HEAD_END.search(body)
    if head is None:
        return style + body
    return body[:head.start()] + style + body[head.start():]
