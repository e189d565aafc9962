"""A hostile settings file: each trick is one clear line naming the file, the
line and the key, never a traceback, an exhausted memory or a silent choice."""

from __future__ import annotations

import math
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import ROOT
from pydantic import BaseModel

from relances.daemon import config
from relances.daemon.cli.main import main
from relances.daemon.config import Settings, load_settings
from relances.daemon.errors import ConfigError
from relances.daemon.safeyaml import MAX_DEPTH, parse_yaml


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "settings.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _refused(path: Path) -> str:
    """The one-line message load_settings refuses the file with."""
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500, message
    return message


def _billion_laughs(levels: int = 9) -> str:
    names = [chr(ord("a") + n) for n in range(levels)]
    rows = ["a: &a [" + ", ".join(['"lol"'] * 10) + "]"]
    rows += [f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]"
             for previous, name in zip(names, names[1:], strict=False)]
    return "\n".join(rows) + "\n"


def _check_config(path: Path) -> str:
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"relances: error: {path}:")
    return result.stderr.strip()


# 1. Anchors and aliases, and one parse.

def test_billion_laughs_is_refused_at_its_first_alias(tmp_path: Path) -> None:
    path = _write(tmp_path, _billion_laughs())
    assert _check_config(path) == \
        f"relances: error: {path}:2: b.0: YAML aliases (*name) are not allowed"


def test_an_alias_names_its_own_line_and_key(tmp_path: Path) -> None:
    text = "daemon:\n  grace_period: &wait 5\n  lease_seconds: 60\n\nweb:\n  idle_minutes: *wait\n"
    path = _write(tmp_path, text)
    assert _refused(path) == f"{path}:6: web.idle_minutes: YAML aliases (*name) are not allowed"


def test_an_anchor_alone_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "daemon:\n  lease_seconds: 60\n  grace_period: &wait 5\n")
    assert _refused(path) == \
        f"{path}:3: daemon.grace_period: YAML anchors (&name) are not allowed"


def _count_loaders(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each PyYAML loader is started (each start reads the text)."""
    counts = {"python": 0, "libyaml": 0}

    def counting(cls: type, kind: str) -> None:
        original = cls.__init__

        def init(self: Any, stream: Any) -> None:
            counts[kind] += 1
            original(self, stream)
        monkeypatch.setattr(cls, "__init__", init)

    counting(yaml.SafeLoader, "python")
    if yaml.__with_libyaml__:
        counting(yaml.CSafeLoader, "libyaml")
    return counts


def test_the_settings_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _count_loaders(monkeypatch)
    load_settings(ROOT / "settings.yaml")
    assert sum(counts.values()) == 1, counts


def test_the_data_and_lines_are_those_of_the_file() -> None:
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    data, lines = parse_yaml(text, "settings.yaml")
    assert data == yaml.safe_load(text)
    rows = text.splitlines()
    assert rows[lines["daemon"] - 1] == "daemon:"
    assert rows[lines["daemon.grace_period"] - 1].strip() == "grace_period: 30"
    assert rows[lines["policies.default.levels.3.channels.0"] - 1].strip() == "channels: [archive]"
    assert lines["policies.default.levels.3"] == rows.index("      3:") + 1


# 2. The C loader when PyYAML has libyaml.

@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_libyaml_parses_when_pyyaml_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _count_loaders(monkeypatch)
    load_settings(ROOT / "settings.yaml")
    assert counts == {"python": 0, "libyaml": 1}


def test_without_libyaml_the_python_parser_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    expected = parse_yaml(text, "settings.yaml")
    counts = _count_loaders(monkeypatch)
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    assert parse_yaml(text, "settings.yaml") == expected
    assert counts == {"python": 1, "libyaml": 0}
    with pytest.raises(ConfigError, match=r"^s\.yaml:2: b\.0: YAML aliases \(\*name\) are not allowed$"):
        parse_yaml(_billion_laughs(), "s.yaml")


# 3. Not UTF-8.

def test_a_latin1_byte_names_its_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "sender:\n  name: Codial\n  city: Orléans\n".encode("latin-1"))
    assert _check_config(path) == (f"relances: error: {path}:3: byte 0xE9 in column 12 is not "
                                   "UTF-8: the settings file must be saved as UTF-8")


def test_a_control_character_is_one_line_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "sender:\n  name: Codial\n  city: Lyon\x07\n")
    message = _refused(path)
    assert message.startswith(f"{path}:3: invalid YAML: unacceptable character #x0007")


# 4. Nesting.

@pytest.mark.parametrize(("nested", "line"), [
    (" " + "[" * 10_000 + "]" * 10_000, 2),
    (" " + "{a: " * 10_000 + "1" + "}" * 10_000, 2),
    ("\n    " + "? " * 10_000 + "a", 3),
    ("".join(f"\n{'  ' * (n + 2)}k{n}:" for n in range(2_000)) + " 1", 2 + MAX_DEPTH - 1),
])
def test_deep_nesting_is_one_line_with_its_line(tmp_path: Path, nested: str, line: int) -> None:
    path = _write(tmp_path, "sender:\n  address:" + nested + "\n")
    message = _check_config(path).removeprefix(f"relances: error: {path}:")
    assert message.startswith(f"{line}: ")
    # libyaml stops flow collections 1,000 deep before the composer sees them.
    assert message.endswith((f": nested more than {MAX_DEPTH} levels deep",
                             ": invalid YAML: exceeded maximum nesting depth"))


@pytest.mark.parametrize("python_parser", [False, True])
def test_nesting_is_capped_at_max_depth(monkeypatch: pytest.MonkeyPatch, python_parser: bool) -> None:
    if python_parser:
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    deepest = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert parse_yaml(deepest, "s.yaml")[0] is not None
    too_deep = "a:\n  b: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    with pytest.raises(ConfigError, match=rf"^s\.yaml:2: a\.b[.0]*…: nested more than {MAX_DEPTH} "):
        parse_yaml(too_deep, "s.yaml")


# 5. A key written twice.

def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = "daemon:\n  grace_period: 5\n  lease_seconds: 60\n  grace_period: 7\n"
    path = _write(tmp_path, text)
    assert _check_config(path) == \
        f"relances: error: {path}:4: daemon.grace_period: already set on line 2"


@pytest.mark.parametrize(("text", "expected"), [
    ("daemon: {}\nweb: {}\ndaemon: {grace_period: 5}\n", ":3: daemon: already set on line 1"),
    ("policies:\n  default:\n    levels:\n      1: {}\n      2: {}\n      3: {}\n      '1': {}\n",
     ":7: policies.default.levels.1: already set on line 4"),
    ("sender: {name: A, city: B, name: C}\n", ":1: sender.name: already set on line 1"),
])
def test_every_duplicate_key_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    assert _refused(path) == f"{path}{expected}"


# 6. Numbers and format specs.

@pytest.mark.parametrize(("text", "expected"), [
    ("daemon:\n  grace_period: .inf\n", ":2: daemon.grace_period: Input should be a finite number"),
    ("daemon:\n  grace_period: .nan\n", ":2: daemon.grace_period: Input should be a finite number"),
    ("daemon:\n  retry_base_seconds: 1e400\n", ":2: daemon.retry_base_seconds: Input should be a finite"),
    ("daemon:\n  lease_seconds: 1000000000000000000000000000000\n", ":2: daemon.lease_seconds: Input "
     "should be less than or equal to 86400"),
    ("daemon:\n  lease_seconds: 1" + "0" * 5_000 + "\n", ":2: daemon.lease_seconds: cannot be read: "),
    ("imports:\n  complete_guard:\n    share: .nan\n", ":3: imports.complete_guard.share: Input should "
     "be a finite number"),
    ("late_charges:\n  reference_rate: 'Infinity'\n", ":2: late_charges.reference_rate: Input should "
     "be a finite number"),
    ("late_charges:\n  recovery_indemnity: '1e999999'\n", ":2: late_charges.recovery_indemnity: "
     "Input should be less than or equal to 10000"),
    ("policies:\n  default:\n    minimum_amount: '1e999999'\n", ":3: policies.default.minimum_amount: "
     "Input should be less than or equal to 999999999999.99"),
    ("data_dir: 2024-13-45\n", ":1: data_dir: cannot be read: month must be in 1..12"),
])
def test_numbers_are_finite_and_bounded(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    assert _refused(path).startswith(f"{path}{expected}")


_NUMBERS = (int, float, Decimal)


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _numeric_fields(annotation, f"{prefix}{name}.")
        elif annotation in _NUMBERS or (isinstance(annotation, types.UnionType) and any(
                arg in _NUMBERS for arg in typing.get_args(annotation))):
            found.append((prefix + name, field))
    return found


def _upper_bound(field: Any) -> Any:
    for rule in field.metadata:
        for attribute in ("le", "lt"):
            if getattr(rule, attribute, None) is not None:
                return getattr(rule, attribute)
    return None


def test_every_number_setting_has_an_upper_bound() -> None:
    fields = _numeric_fields(Settings) + [
        (f"policies.<name>.{k}", f) for k, f in _numeric_fields(config.Policy)] + [
        (f"policies.<name>.levels.<N>.{k}", f) for k, f in _numeric_fields(config.LevelPolicy)]
    assert "daemon.grace_period" in dict(fields) and len(fields) > 25
    unbounded = [key for key, field in fields if _upper_bound(field) is None]
    assert unbounded == []
    assert all(math.isfinite(_upper_bound(field)) for _, field in fields)


@pytest.mark.parametrize(("pattern", "expected"), [
    ("{number:>2000000000}", "a width or precision above 200 is not allowed ('>2000000000')"),
    ("inv/{number:.500}.pdf", "a width or precision above 200 is not allowed ('.500')"),
    ("inv/{number:0300}.pdf", "a width or precision above 200 is not allowed ('0300')"),
    ("inv/{number!r:x^201}.pdf", "a width or precision above 200 is not allowed ('x^201')"),
    ("inv/{number:" + "9" * 5_000 + "}.pdf", "a width or precision above 200 is not allowed"),
    ("inv/{number:>{number}}.pdf", "a placeholder inside a format spec is not allowed ('>{number}')"),
])
def test_a_pattern_cannot_ask_for_a_huge_width(tmp_path: Path, pattern: str, expected: str) -> None:
    path = _write(tmp_path, f"letters:\n  render_timeout: 60\n  invoice_pdf_pattern: '{pattern}'\n")
    assert _refused(path).startswith(f"{path}:3: letters.invoice_pdf_pattern: {expected}")


@pytest.mark.parametrize("pattern", ["inv/{number:0>8}.pdf", "{number:_<200}.pdf", "{number}.pdf"])
def test_a_pattern_may_pad_the_number(tmp_path: Path, pattern: str) -> None:
    path = _write(tmp_path, f"letters:\n  invoice_pdf_pattern: '{pattern}'\n")
    assert load_settings(path).letters.invoice_pdf_pattern == pattern


# 7. imports.max_file_mb.

def test_max_file_mb_defaults_to_200_and_is_bounded(tmp_path: Path) -> None:
    assert load_settings(ROOT / "settings.yaml").imports.max_file_mb == 200
    assert Settings().imports.max_file_mb == 200
    assert load_settings(_write(tmp_path, "imports:\n  max_file_mb: 100000\n")).imports.max_file_mb \
        == 100000
    for value, bound in (("0", "greater than or equal to 1"), ("100001", "less than or equal to 100000"),
                         ("12.5", "a valid integer")):
        path = _write(tmp_path, f"imports:\n  inbox: null\n  max_file_mb: {value}\n")
        assert _refused(path).startswith(f"{path}:3: imports.max_file_mb: Input should be ")
        assert bound in _refused(path)


# Hostile keys stay on one line.

def test_a_key_with_a_line_break_is_shown_on_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'daemon:\n  "grace\\nperiod": 5\n')
    assert _check_config(path) == f"relances: error: {path}:2: daemon.grace\\nperiod: unknown key"


def test_a_huge_key_is_shortened(tmp_path: Path) -> None:
    path = _write(tmp_path, "daemon:\n  ? " + "k" * 100_000 + "\n  : 5\n")
    message = _refused(path)
    assert message.startswith(f"{path}:2: daemon.kkkk") and message.endswith("…: unknown key")
