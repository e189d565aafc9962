"""docs/configuration.md documents every key of settings.yaml, with its default."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from relances.daemon.config import Settings

DOC = ROOT / "docs" / "configuration.md"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|([^|]*)\|")
_SECTION = re.compile(r"^##\s+`([^`]+)`")


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every key a settings file may hold, as a dotted path; ``<name>`` and
    ``<N>`` stand for the keys of a mapping chosen by the user.
    """
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # set by the loader, not written in the file
        path = f"{prefix}{name}"
        yield path, field
        annotation = field.annotation
        nested = _model(annotation)
        if nested is not None:
            yield from settings_keys(nested, path + ".")
        elif typing.get_origin(annotation) is dict:
            key_type, value_type = typing.get_args(annotation)
            placeholder = "<N>" if key_type is int else "<name>"
            yield f"{path}.{placeholder}", field
            nested = _model(value_type)
            if nested is not None:
                yield from settings_keys(nested, f"{path}.{placeholder}.")


def documented() -> dict[str, str]:
    """Key → default cell, from the tables of docs/configuration.md; a
    section (``## `daemon` ``) documents its own key, with no default cell.
    """
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        section = _SECTION.match(line)
        if section:
            rows[section.group(1)] = ""
        match = _ROW.match(line)
        if match and not match.group(1).startswith("RELANCES_"):
            rows[match.group(1)] = match.group(2).strip()
    return rows


def yaml_text(value: Any) -> str:
    """A default as it is written in the documentation's table."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value == "":
        return '""'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_key_is_documented() -> None:
    missing = [path for path, _ in settings_keys() if path not in documented()]
    assert not missing, f"keys of settings.yaml missing from {DOC.name}: {missing}"


def test_every_documented_key_exists() -> None:
    keys = {path for path, _ in settings_keys()}
    stale = [key for key in documented() if key not in keys]
    assert not stale, f"{DOC.name} documents keys that do not exist: {stale}"


def test_documented_defaults_match_the_models() -> None:
    doc = documented()
    wrong = []
    for path, field in settings_keys():
        default = field.default
        if path not in doc or default is PydanticUndefined or isinstance(default, BaseModel | dict):
            continue  # missing (reported above), a section or a factory: described in words
        cell = re.match(r"`([^`]*)`", doc[path])
        if cell is None or cell.group(1) != yaml_text(default):
            wrong.append(f"{path}: doc {doc[path]!r}, model {yaml_text(default)!r}")
    assert not wrong, "\n".join(wrong)


def test_the_walk_reaches_nested_mappings() -> None:
    # A walk that stopped at the top level would pass the tests above vacuously.
    keys = {path for path, _ in settings_keys()}
    assert {"policies.<name>.levels.<N>.auto_send", "channels.<name>",
            "daemon.grace_period", "database.url", "sender.signatory"} <= keys
    assert "source" not in keys and "lines" not in keys


@pytest.mark.parametrize("value, text", [
    (None, "null"), (True, "true"), (("archive",), "[archive]"), ((), "[]"), ("", '""'),
    (Decimal("2.15"), "2.15"), (30.0, "30"), (Path("data"), "data"),
])
def test_defaults_are_written_as_in_yaml(value: Any, text: str) -> None:
    assert yaml_text(value) == text
