"""``relances preview``: the letter written, and the line that says so safe to print."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Cli, write_settings
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


def test_preview_html_is_the_letter_as_the_engine_lays_it_out(
        seeded: Cli, settings_path: Path, database_url: str, tmp_path: Path) -> None:
    from PIL import Image
    from weasyprint import HTML

    logo = tmp_path / "logo.png"
    Image.new("RGB", (40, 20), "navy").save(logo)
    write_settings(settings_path, {"database.url": database_url, "sender.logo": str(logo)})
    html_file, pdf_file = tmp_path / "lettre.html", tmp_path / "lettre.pdf"
    out = seeded(["preview", "COD_F1026", "--level", "1", "--html", "-o", str(html_file),
                  "--as-of", "22/11/2024"]).stdout
    seeded(["preview", "COD_F1026", "--level", "1", "-o", str(pdf_file),
            "--as-of", "22/11/2024"])

    assert f"{html_file}: " in out and "HTML" in out
    html = html_file.read_text(encoding="utf-8")
    # One file a browser opens as it is: the stylesheet in the head, every image inlined.
    assert html.count("<style data-relances-stylesheet>") == 1
    assert html.index("<style data-relances-stylesheet>") < html.index("</head>")
    assert "file:" not in html
    assert 'src="data:image/png;base64,' in html  # the logo
    assert html.count('src="data:') >= 2  # and the payment QR code
    # Laid out alone, it is the letter the engine writes, word for word.
    alone = tmp_path / "seule.pdf"
    HTML(string=html).write_pdf(alone)

    def words(path: Path) -> list[str]:
        return " ".join(page.extract_text() for page in PdfReader(path).pages).split()

    assert "COD_F1026" in words(alone)
    assert words(alone) == words(pdf_file)
