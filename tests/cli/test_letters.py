"""``relances preview``: the letter written, and the line that says so safe to print."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Cli
from pypdf import PdfReader
from sqlalchemy import Executable, update

from relances.daemon.models import Customer


def test_preview_line_shows_control_characters_escaped(
        seeded: Cli, change_ledger: Callable[[Executable], None], tmp_path: Path) -> None:
    code = "INT01\x1b]0;pwned\x07\u202e"
    change_ledger(update(Customer).where(Customer.code == "INT01").values(code=code))
    target = tmp_path / "apercu.pdf"
    out = seeded(["preview", "COD_F1026", "--level", "1", "-o", str(target),
                  "--as-of", "22/11/2024"]).stdout

    assert not [c for c in ("\x1b", "\x07", "\u202e") if c in out], repr(out)
    assert "(INT01\\x1b]0;pwned\\x07\\u202e, level 1)" in out
    assert "COD_F1026" in "".join(page.extract_text() for page in PdfReader(target).pages)
