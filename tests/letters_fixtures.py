"""Fixtures for the letters tests: settings, a small ledger, PDF text."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon import storage
from relances.daemon.config import Settings, settings_from_data
from relances.daemon.models import Customer, Invoice

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_COPY = ROOT / "daemon" / "sample" / "invoices" / "COD_F1026.pdf"
AS_OF = dt.date(2024, 11, 22)
HOSTILE_NAME = "<script>alert(1)</script> & Cie"

SENDER = {
    "name": "Codial Démo SARL", "address": ["18 rue de la République"], "postal_code": "69002",
    "city": "Lyon", "siret": "123 456 789 00012", "vat_number": "FR12123456789",
    "phone": "04 72 00 00 00", "email": "compta@codial-demo.example",
    "iban": "FR76 3000 4000 5000 0123 4567 871", "bic": "BNPAFRPPXXX",
    "signatory": "Pascal Casseleux",
}


def make_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings whose relative paths resolve in ``folder`` (invoices/ holds copies)."""
    data: dict[str, Any] = {"sender": SENDER, "data_dir": "data"}
    data.update(overrides)
    return settings_from_data(data, source=folder / "settings.yaml")


def pdf_text(pdf: bytes) -> str:
    """The PDF's text with no-break spaces made plain, as a reader sees it."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def _customer(code: str, name: str, **extra: Any) -> Customer:
    fields: dict[str, Any] = {"address_line1": "2 rue de Paris", "postal_code": "92190",
                              "city": "MEUDON", "language": "fr", "kind": "business"}
    fields.update(extra)
    return Customer(code=code, affiliate_code=code, name=name, **fields)


def _invoice(number: str, customer: Customer, due: dt.date, amount: str, level: int,
             **extra: Any) -> Invoice:
    return Invoice(number=number, customer=customer, invoice_date=due, due_date=due,
                   total=Decimal(amount), remaining=Decimal(extra.pop("remaining", amount)),
                   level=level, payment_method="Chèque", **extra)


def ledger_rows() -> list[Any]:
    intel = _customer("INT01", "INTEL")
    daniere = _customer("DAN01", "DANIERE FLORENCE", kind="consumer",
                        address_line1="12 rue des Tanneurs", postal_code="69002", city="Lyon")
    nordic = _customer("NOR03", "NORDIC TRADING LTD", language="en",
                       address_line1="14 Harbour Street", postal_code="EH6 6QN",
                       city="Edinburgh", country="United Kingdom")
    evil = _customer("EVIL", HOSTILE_NAME,
                     address_line1='<img src="http://127.0.0.1:9/track.png">',
                     address_line2="file:///etc/passwd {{ ''.__class__ }}")
    return [
        intel, daniere, nordic, evil,
        _invoice("COD_F1026", intel, dt.date(2024, 2, 8), "680.40", 3,
                 last_reminded_on=dt.date(2024, 11, 19)),
        _invoice("COD_F1031", intel, dt.date(2024, 4, 14), "1253.06", 1,
                 remaining="572.66"),
        _invoice("COD_F1040", intel, dt.date(2024, 5, 2), "99.00", 2, on_hold=True,
                 hold_reason="litige livraison"),
        _invoice("COD_F1099", intel, dt.date(2024, 12, 31), "50.00", 0),
        _invoice("COD_F1050", intel, dt.date(2024, 6, 1), "10.00", 1, remaining="0"),
        _invoice("COD_F1023", daniere, dt.date(2023, 11, 24), "253.06", 3),
        _invoice("NOR-77", nordic, dt.date(2024, 9, 30), "1500.00", 2),
        _invoice("EVIL-1", evil, dt.date(2024, 10, 1), "12.34", 1),
        _invoice("COD_F1100", intel, dt.date(2024, 10, 1), "20.00", 0),
    ]


@pytest.fixture(name="letters_settings")
def letters_settings_fixture(tmp_path: Path) -> Settings:
    (tmp_path / "invoices").mkdir()
    shutil.copy(SAMPLE_COPY, tmp_path / "invoices" / "COD_F1026.pdf")
    return make_settings(tmp_path)


@pytest.fixture(name="sessions")
async def sessions_fixture(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A SQLite ledger at the newest schema with the rows of :func:`ledger_rows`."""
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}")
    await storage.upgrade(engine)
    maker = storage.sessionmaker(engine)
    async with maker.begin() as session:
        session.add_all(ledger_rows())
    yield maker
    await engine.dispose()
