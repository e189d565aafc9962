"""docs/channels.md lists exactly the options each built-in channel accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ROOT

from relances.channels import archive, email, fax, printer, smtp
from relances.plugins import ChannelConfigError, ChannelSettings
from relances.plugins.manager import available_channels, build_channel, get_plugin_manager

DOC = ROOT / "docs" / "channels.md"
_HEADING = re.compile(r"^(#{2,3})\s+(.*)$")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def sections() -> dict[str, set[str]]:
    """Heading → the option names in the first column of its tables."""
    found: dict[str, set[str]] = {}
    current = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(2).strip()
            found.setdefault(current, set())
            continue
        row = _ROW.match(line)
        if row and current:
            found[current].add(row.group(1))
    return found


def documented(*headings: str) -> set[str]:
    all_sections = sections()
    missing = [h for h in headings if h not in all_sections]
    assert not missing, f"{DOC.name} has no section {missing}"
    return set().union(*(all_sections[h] for h in headings))


SMTP = "SMTP options (`email`, and `fax` with `backend: gateway`)"
FAX_COMMON = "Options of both backends"

# The option sets the channel modules check against, and the sections that document them.
CASES = {
    "archive": (archive.OPTIONS, ["`archive`"]),
    "smtp": (smtp.SMTP_OPTIONS, [SMTP]),
    "email": (email.OPTIONS, ["`email`", SMTP]),
    "print": (printer.OPTIONS, ["`print`"]),
    "fax common": (fax.COMMON_OPTIONS, [FAX_COMMON]),
    "fax hylafax": (fax.HYLAFAX_OPTIONS, [FAX_COMMON, "`backend: hylafax`"]),
    "fax gateway": (fax.GATEWAY_OPTIONS, [FAX_COMMON, "`backend: gateway`", SMTP]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_option_is_documented_and_nothing_else(case: str) -> None:
    accepted, headings = CASES[case]
    doc = documented(*headings)
    assert sorted(accepted - doc) == [], f"{case}: options missing from {DOC.name}"
    assert sorted(doc - accepted) == [], f"{case}: {DOC.name} documents options the channel refuses"


def test_every_built_in_channel_has_a_section() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    names = set(available_channels(pm))
    assert names == {"archive", "email", "print", "fax"}
    headings = set(sections())
    assert {f"`{name}`" for name in names} <= headings


@pytest.mark.parametrize("name, options, accepted", [
    ("archive", {}, archive.OPTIONS),
    ("email", {}, email.OPTIONS),
    ("print", {}, printer.OPTIONS),
    ("fax", {}, fax.HYLAFAX_OPTIONS),
    ("fax", {"backend": "gateway"}, fax.GATEWAY_OPTIONS),
])
def test_the_constants_are_what_the_channels_check(
    name: str, options: dict[str, str], accepted: frozenset[str], tmp_path: Path
) -> None:
    # The comparison above is only worth something if the channels really
    # refuse what is outside these constants: an unknown key lists the known ones.
    pm = get_plugin_manager(load_entrypoints=False)
    settings = ChannelSettings(name, {**options, "no_such_option": 1}, config_dir=tmp_path,
                               data_dir=tmp_path)
    with pytest.raises(ChannelConfigError) as raised:
        build_channel(pm, name, settings)
    assert raised.value.key == "no_such_option"
    known = raised.value.message.split("known: ", 1)[1]
    assert set(known.split(", ")) == accepted
