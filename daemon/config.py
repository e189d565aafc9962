"""Loading and validating ``settings.yaml``.

The file is hostile input.  It is parsed once by
:mod:`relances.daemon.safeyaml`, which refuses at their line what only a
hostile file needs (aliases, deep nesting, a key written twice) and records
the line of every key; pydantic validates the plain data, every number
bounded, and the first error is reported as ``FILE:LINE: key.path: message``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

from relances.daemon.errors import ConfigError
from relances.daemon.safeyaml import decoded, parse_yaml, shown
from relances.daemon.webconfig import WebSettings

CONFIG_ENV = "RELANCES_CONFIG"
DATABASE_URL_ENV = "RELANCES_DATABASE_URL"
LEVELS = (1, 2, 3)
MAX_FORMAT_WIDTH = 200
# Under a thousand billion euros, as the ledger's amounts (BIGINT cents).
MAX_AMOUNT = Decimal("999999999999.99")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LevelPolicy(_Model):
    """What happens at one reminder level."""

    delay_days: int = Field(45, ge=0, le=3650)
    channels: tuple[str, ...] = Field(("archive",), min_length=1)
    document: Literal["letter", "statement"] = "letter"
    attach_invoice: bool = False
    late_charges: bool = False
    auto_send: bool = True


class Policy(_Model):
    """A reminder policy: three levels, a minimum amount, a deadline."""

    minimum_amount: Decimal = Field(Decimal("0"), ge=0, le=MAX_AMOUNT)
    formal_notice_deadline_days: int = Field(8, ge=1, le=365)
    levels: dict[int, LevelPolicy] = Field(
        default_factory=lambda: {n: LevelPolicy(attach_invoice=n == 3, late_charges=n == 3)
                                 for n in LEVELS}
    )

    @field_validator("levels")
    @classmethod
    def _three_levels(cls, value: dict[int, LevelPolicy]) -> dict[int, LevelPolicy]:
        if sorted(value) != list(LEVELS):
            raise ValueError(f"levels must be exactly 1, 2 and 3, got {sorted(value)}")
        return value

    def level(self, n: int) -> LevelPolicy:
        return self.levels[n]


class Sender(_Model):
    """The business that sends the reminders: the letterhead."""

    name: str = "Votre entreprise"
    address: tuple[str, ...] = ()
    postal_code: str = ""
    city: str = ""
    country: str = "France"
    siret: str = ""
    vat_number: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""
    iban: str = ""
    bic: str = ""
    logo: str | None = None
    place: str | None = None
    signatory: str = ""

    @field_validator("iban")
    @classmethod
    def _valid_iban(cls, value: str) -> str:
        """An account the letters print and the QR code carries must be one: a typo
        here would send every payment astray, or leave every letter without a QR code."""
        if value.strip() and not stdnum_iban.is_valid(value):
            raise ValueError(f"{value[:40]!r} is not a valid IBAN (its length or check digits are wrong)")
        return value

    @field_validator("bic")
    @classmethod
    def _valid_bic(cls, value: str) -> str:
        if value.strip() and not stdnum_bic.is_valid(value):
            raise ValueError(f"{value[:20]!r} is not a valid BIC (8 or 11 letters and digits)")
        return value


class DatabaseSettings(_Model):
    url: str | None = None
    echo: bool = False


class LetterSettings(_Model):
    templates_dir: Path | None = None
    default_language: Literal["fr", "en"] = "fr"
    invoice_pdf_pattern: str = "invoices/{number}.pdf"
    # Bounds on one template's work in a render worker (templates are written
    # by users): seconds per template, the worker's address space, the output.
    render_timeout: float = Field(120, gt=0, le=3600)
    render_memory_mb: int = Field(2048, ge=512, le=65536)
    render_output_mb: int = Field(20, ge=1, le=1024)

    @field_validator("invoice_pdf_pattern")
    @classmethod
    def _only_number(cls, value: str) -> str:
        try:
            specs = _format_specs(value)
        except ValueError as exc:
            raise ValueError(_placeholder_error(value, exc)) from None
        _bounded_specs(specs)
        try:
            value.format(number="F1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(_placeholder_error(value, exc)) from None
        return value


def _placeholder_error(value: str, exc: Exception) -> str:
    return f"the only placeholder is {{number}} ({exc!r} in {value[:80]!r})"


def _format_specs(pattern: str) -> list[str]:
    """The format specs of a pattern's placeholders (``>8`` in ``{number:>8}``)."""
    return [spec for _, field, spec, _ in string.Formatter().parse(pattern)
            if field is not None and spec]


def _bounded_specs(specs: list[str]) -> None:
    """Refuse what would make one use of a pattern allocate without bound: a
    width or precision is padded out in full (``{number:>2000000000}`` is 2 GB
    a use), and a placeholder inside a spec takes its width from the data."""
    for spec in specs:
        if "{" in spec:
            raise ValueError(f"a placeholder inside a format spec is not allowed ({spec[:40]!r})")
        if any(_too_wide(digits) for digits in re.findall(r"[0-9]+", spec)):
            raise ValueError(f"a width or precision above {MAX_FORMAT_WIDTH} is not allowed "
                             f"({spec[:40]!r})")


def _too_wide(digits: str) -> bool:
    significant = digits.lstrip("0")
    return len(significant) > len(str(MAX_FORMAT_WIDTH)) or int(significant or "0") > MAX_FORMAT_WIDTH


class LateChargeSettings(_Model):
    """French late-payment charges (Code de commerce L441-10 and D441-5; R2192-31 of the
    Code de la commande publique for public buyers)."""

    # A half-year's ECB rate the shipped table (ledger/ecbrates.py) lacks: {"2026-H2": 2.15}.
    reference_rates: dict[Annotated[str, pydantic.StringConstraints(pattern=r"^(19|20)[0-9]{2}-H[12]$")],
                          Annotated[Decimal, Field(ge=0, le=100)]] = Field(default_factory=dict)
    # Deprecated: one reference rate for the whole delay, instead of each half-year's.
    reference_rate: Decimal | None = Field(None, ge=0, le=100)
    margin_points: Decimal = Field(Decimal("10"), ge=0, le=100)
    public_margin_points: Decimal = Field(Decimal("8"), ge=0, le=100)
    recovery_indemnity: Decimal = Field(Decimal("40"), ge=0, le=10000)


class CustomerSettings(_Model):
    # The kind of a customer no file and no person described: "business" for a
    # seller who sells only to businesses; "unknown" claims no penalties.
    default_kind: Literal["business", "public", "consumer", "unknown"] = "unknown"
    # Years the letters sent and the invoices are kept (Code de commerce L123-22)
    # before ``relances customer CODE --forget`` may erase a customer.
    keep_years: int = Field(10, ge=10, le=100)
    # Days a customer's reply to a reminder pauses their reminders; 0: it does not.
    reply_pause_days: int = Field(14, ge=0, le=365)
    # Days after a promised payment date during which reminders still wait for it.
    promise_grace_days: int = Field(3, ge=0, le=90)
    # Days between two contacts with a customer, whatever the invoice: a reminder
    # sent on a day holds the next until that many days later; 0 or 1: no wait.
    min_contact_days: int = Field(7, ge=0, le=90)


class CompleteGuard(_Model):
    """A complete import that would settle too much is refused (a truncated file)."""

    share: float = Field(0.2, gt=0, le=1)
    minimum: int = Field(10, ge=1, le=1_000_000)


class InvoiceSource(_Model):
    complete: bool = False  # the export lists every open invoice


class FecSource(_Model):
    customer_prefix: str = Field("411", min_length=1, pattern=r"^[0-9A-Za-z]+$")
    payment_terms_days: int = Field(30, ge=0, le=366)


class FacturxSource(_Model):
    payment_terms_days: int = Field(30, ge=0, le=366)


class CdarSource(_Model):
    # Days an invoice gets no reminder after its platform reports 211
    # "Paiement transmis" (the buyer says the payment has left).
    payment_sent_days: int = Field(15, ge=1, le=90)


class ImportSettings(_Model):
    complete_guard: CompleteGuard = CompleteGuard()
    invoices: InvoiceSource = InvoiceSource()
    fec: FecSource = FecSource()
    facturx: FacturxSource = FacturxSource()
    cdar: CdarSource = CdarSource()
    # A folder the daemon watches: files dropped there are imported.
    inbox: Path | None = None
    poll_seconds: float = Field(10, ge=1, le=86400)
    # A file to import larger than this is refused with its size.
    max_file_mb: int = Field(200, ge=1, le=100000)


class BankSettings(_Model):
    # Days a customer with a bank payment waiting in review (one that may be
    # theirs) gets no new reminder; null: no such hold.
    review_hold_days: int | None = Field(10, ge=1, le=365)
    # A payment recorded by hand and a bank entry of the same amount for the
    # same invoice or customer, this many days apart at most, are one payment.
    known_payment_days: int = Field(10, ge=0, le=90)


class ScheduleSettings(_Model):
    escalate: str | None = "30 7 * * mon-fri"
    dispatch: str | None = "*/10 8-18 * * mon-fri"


class DaemonSettings(_Model):
    grace_period: float = Field(30, ge=0, le=3600)
    lease_seconds: int = Field(300, ge=10, le=86400)
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_seconds: float = Field(60, gt=0, le=86400)
    retry_max_seconds: float = Field(6 * 3600, gt=0, le=7 * 86400)
    render_workers: int | None = Field(None, ge=1, le=256)
    batch_size: int = Field(200, ge=1, le=10000)
    watchdog: bool = True
    confirm_every_seconds: int = Field(60, ge=1, le=86400)
    confirm_within_minutes: int = Field(360, ge=1, le=30 * 1440)


class Settings(_Model):
    """The whole configuration, as validated from ``settings.yaml``."""

    data_dir: Path = Path("data")
    timezone: str = "Europe/Paris"
    database: DatabaseSettings = DatabaseSettings()
    sender: Sender = Sender()
    policies: dict[str, Policy] = Field(default_factory=lambda: {"default": Policy()})
    letters: LetterSettings = LetterSettings()
    late_charges: LateChargeSettings = LateChargeSettings()
    customers: CustomerSettings = CustomerSettings()
    imports: ImportSettings = ImportSettings()
    bank: BankSettings = BankSettings()
    channels: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"archive": dict[str, Any]()})
    # Where bounces and replies come back: checked by the dispatch stage.
    mailboxes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    schedule: ScheduleSettings = ScheduleSettings()
    daemon: DaemonSettings = DaemonSettings()
    web: WebSettings = WebSettings()
    # Where the file was read from; relative paths are resolved against it.
    source: Path | None = Field(None, exclude=True)
    lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value[:60]!r}") from None
        return value

    @field_validator("policies")
    @classmethod
    def _default_policy(cls, value: dict[str, Policy]) -> dict[str, Policy]:
        if "default" not in value:
            raise ValueError("a policy named 'default' is required")
        return value

    @property
    def config_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def path(self, value: str | Path) -> Path:
        """Resolve a path from the settings against the settings file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.config_dir / p

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def database_url(self) -> str:
        env = os.environ.get(DATABASE_URL_ENV)
        if env:
            return env
        if self.database.url:
            return self.database.url.replace("{data_dir}", str(self.data_path))
        return f"sqlite+aiosqlite:///{self.data_path / 'relances.db'}"

    def policy(self, name: str | None) -> Policy:
        return self.policies.get(name or "default", self.policies["default"])

    def today(self) -> dt.date:
        """The business date: today in the configured time zone."""
        return dt.datetime.now(self.zone).date()

    def line_of(self, *key: str | int) -> int | None:
        """The line of ``settings.yaml`` where a key is written, if known."""
        path = [str(k) for k in key]
        while path:
            line = self.lines.get(".".join(path))
            if line is not None:
                return line
            path.pop()
        return None

    def where(self, *key: str | int) -> str:
        """``FILE:LINE: key`` for an error message about a setting."""
        name = str(self.source) if self.source else "<settings>"
        line = self.line_of(*key)
        dotted = shown(".".join(str(k) for k in key))
        return f"{name}:{line}: {dotted}" if line else f"{name}: {dotted}"


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "settings.yaml")


def _error_line(error: Any, name: str, lines: dict[str, int]) -> str:
    loc = [str(part) for part in error["loc"]]
    key = shown(".".join(loc)) or "(top level)"
    line = None
    probe = list(loc)
    while probe and line is None:
        line = lines.get(".".join(probe))
        probe.pop()
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    where = f"{name}:{line}" if line else name
    return f"{where}: {key}: {shown(message, 300)}"


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a settings file.

    Raises :class:`ConfigError` with ``FILE:LINE: key: message`` when the
    file is missing, is not UTF-8 YAML, or does not validate.
    """
    source = Path(path) if path is not None else default_config_path()
    name = str(source)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: settings file not found") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read settings: {exc.strerror}") from None
    data, lines = parse_yaml(decoded(raw, name), name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:1: the settings file must be a mapping of keys")
    return settings_from_data(data, source=source.resolve(), lines=lines, name=name)


def settings_from_data(
    data: dict[str, Any],
    *,
    source: Path | None = None,
    lines: dict[str, int] | None = None,
    name: str = "<settings>",
) -> Settings:
    """Validate already-parsed settings (tests and defaults use this)."""
    lines = lines or {}
    try:
        return Settings.model_validate({**data, "source": source, "lines": lines})
    except ValidationError as exc:
        raise ConfigError(_error_line(exc.errors()[0], name, lines)) from None
