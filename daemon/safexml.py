"""XML from outside, read safely: bank statements, e-invoicing messages.

No file Relances reads needs a DTD, so one that declares ``<!DOCTYPE>`` (the
vehicle of external entities and "billion laughs") is refused before lxml
sees it, and lxml parses with entity resolution, DTD loading and the
network off and its size limits on.  :func:`root_tag` tells what a file is
from its first few KB without parsing it; :func:`parse` returns the root or
raises the caller's error class with one line naming the file, the line and
the column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

SNIFF_BYTES = 8192
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[[^\]]*\])?\s*>", re.S)
_START_TAG = re.compile(r"<(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)((?:\s+[^\s=>/]+\s*=\s*"
                        r"(?:\"[^\"]*\"|'[^']*'))*)\s*/?>")
_XMLNS = re.compile(r"xmlns(?::([\w.\-]+))?\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def root_tag(head: bytes) -> tuple[bool, str, str] | None:
    """(a DOCTYPE was seen, the root's local name, its namespace) from the start of a
    file, or None when no root tag shows there."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    pos, doctype = 0, False
    text = text.lstrip("\ufeff")
    while True:
        doctype = doctype or text.startswith("<!DOCTYPE", pos)
        if not (item := _PROLOG_ITEM.match(text, pos)) or item.end() == pos:
            break
        pos = item.end()
    tag = _START_TAG.match(text, pos)
    if tag is None:
        return (doctype, "", "") if doctype else None
    prefix, local, attributes = tag.group(1) or None, tag.group(2), tag.group(3)
    namespace = ""
    for declared in _XMLNS.finditer(attributes):
        if declared.group(1) == prefix:
            namespace = declared.group(2) if declared.group(2) is not None else declared.group(3)
    return doctype, local, namespace


def dtd_refused(expected: str) -> str:
    return (f"the XML declares a DTD (<!DOCTYPE>), which no {expected} needs: "
            "refused, its entities are not read")


def parse(path: Path, data: bytes, *, error: type[Exception], kind: str, expected: str) -> Any:
    """The root element of ``data``; ``error`` with one line when the XML declares a
    DTD or is not well-formed.  ``kind`` ("camt.053") and ``expected`` ("a
    camt.053 statement") name what the file should be in the messages."""
    prolog = root_tag(data[:SNIFF_BYTES])
    if prolog is not None and prolog[0]:
        raise error(f"{path}: {dtd_refused(kind)}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        start = data.lstrip()[:12]
        what = "not XML" if not start.startswith((b"<", b"\xef\xbb\xbf<", b"\xff\xfe", b"\xfe\xff")) \
            else "not well-formed XML"
        shown = "".join(c if " " <= c <= "~" else "." for c in start.decode("latin-1"))
        problem = " ".join(re.sub(r", line \d+, column \d+$", "", str(exc.msg)).split())[:120]
        raise error(f"{path}: line {line}, column {column}: {what} ({problem}; "
                    f"the file starts with {shown!r}): not {expected}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise error(f"{path}: {dtd_refused(kind)}")
    return root
