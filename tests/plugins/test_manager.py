"""The plugin system: the manager, each hook's host side, the rules."""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from servers import make_delivery

from relances.plugins import (
    BUILTIN_PLUGINS,
    Channel,
    ChannelConfigError,
    ChannelSettings,
    DeliveryError,
    PluginError,
    Receipt,
    UnknownChannelError,
    available_channels,
    build_channel,
    collect_letter_context,
    get_plugin_manager,
    hookimpl,
    hookspecs,
    notify_delivery_attempted,
    plugin_listing,
)
from relances.plugins.manager import check_plugins

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_CHANNELS = {"archive": "relances.channels.archive", "email": "relances.channels.email",
                    "fax": "relances.channels.fax", "print": "relances.channels.printer"}


def plugin(**hooks: Callable[..., Any]) -> type:
    """A plugin object with the given hook implementations."""
    return type("TestPlugin", (), {name: staticmethod(hookimpl(f)) for name, f in hooks.items()})


# -- the manager ----------------------------------------------------------------------


def test_builtin_channels_register_through_the_hook() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    channels = available_channels(pm)
    assert {name: c.plugin for name, c in channels.items()} == BUILTIN_CHANNELS
    listing = {info.name: info for info in plugin_listing(pm)}
    assert set(listing) == set(BUILTIN_PLUGINS)
    assert listing["relances.channels.printer"].channels == ("print",)
    assert listing["relances.channels.email"].version  # the relances version


def test_block_plugins_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCES_BLOCK_PLUGINS", " relances.channels.fax , other")
    pm = get_plugin_manager(load_entrypoints=False)
    assert "fax" not in available_channels(pm)
    assert "relances.channels.fax" not in [info.name for info in plugin_listing(pm)]


def _fake_distribution(folder: Path, name: str, module_source: str) -> None:
    """An installed distribution with a ``relances`` entry point, on sys.path."""
    (folder / f"{name}.py").write_text(module_source)
    info = folder / f"{name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[relances]\n{name} = {name}\n")


def test_entry_point_plugin_is_loaded_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_distribution(tmp_path, "relances_sms_test", (
        "from relances.plugins import Channel, hookimpl\n"
        "class Sms(Channel):\n    name = 'sms'\n"
        "@hookimpl\ndef relances_register_channels(register):\n"
        "    register('sms', lambda settings: Sms())\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager()
    assert available_channels(pm)["sms"].plugin == "relances_sms_test"
    assert ("relances_sms_test", "0.3", ("sms",)) in plugin_listing(pm)
    assert get_plugin_manager(load_entrypoints=False).has_plugin("relances_sms_test") is False


def test_misspelled_hook_fails_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(tmp_path, "relances_typo_test", (
        "from relances.plugins import hookimpl\n"
        "@hookimpl\ndef relances_register_channel(register):\n    pass\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="relances_typo_test.*relances_register_channel"):
        get_plugin_manager()
    monkeypatch.setenv("RELANCES_BLOCK_PLUGINS", "relances_typo_test")
    assert "email" in available_channels(get_plugin_manager())


def test_plugin_failing_to_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(tmp_path, "relances_broken_test", "import relances_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="relances_broken_test.*failed to load"):
        get_plugin_manager()


def test_hook_wrappers_are_refused() -> None:
    pm = get_plugin_manager(load_entrypoints=False)

    class Wrapper:
        @hookimpl(wrapper=True)
        def relances_register_channels(self, register: Any) -> Any:
            return (yield)

    pm.register(Wrapper(), name="wrapper")
    with pytest.raises(PluginError, match="'wrapper'.*hook wrapper"):
        check_plugins(pm)


def test_plugins_package_imports_nothing_of_the_project() -> None:
    code = ("import sys, relances.plugins\n"
            "bad = [m for m in sys.modules if m.startswith(('relances.daemon', 'relances.channels'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    for folder, allowed in (("plugins", ("relances.plugins",)),
                            ("channels", ("relances.plugins", "relances.channels"))):
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("relances"):
                    assert (node.module or "").startswith(allowed), f"{path}: {node.module}"


# -- relances_register_channels -------------------------------------------------------


class Dummy(Channel):
    name = "dummy"

    async def send(self, delivery: Any) -> Receipt:
        return Receipt(self.name, "ok")


@pytest.mark.parametrize(("name", "factory", "message"), [
    ("", Dummy, "invalid name ''"),
    ("sms gateway", Dummy, "invalid name 'sms gateway'"),
    ("sms", "not callable", "not callable"),
    ("email", Dummy, "both register channel 'email'"),
])
def test_register_validates_and_names_the_plugin(name: str, factory: Any, message: str) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(relances_register_channels=lambda register: register(name, factory)),
                name="bad")
    with pytest.raises(PluginError, match=re.escape(message)) as caught:
        available_channels(pm)
    assert "'bad'" in str(caught.value)
    if name == "email":
        assert "'relances.channels.email'" in str(caught.value)


def test_build_channel_errors() -> None:
    def broken(settings: ChannelSettings) -> Channel:
        raise RuntimeError("boom")

    def misconfigured(settings: ChannelSettings) -> Channel:
        raise ChannelConfigError("url", "is required")

    def register(register: Any) -> None:
        register("broken", broken)
        register("misconfigured", misconfigured)
        register("dummy", lambda settings: Dummy())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(relances_register_channels=register), name="extra")
    with pytest.raises(UnknownChannelError, match="'smss'.*archive, broken, dummy, email"):
        build_channel(pm, "smss", ChannelSettings("smss"))
    with pytest.raises(PluginError, match="plugin 'extra' could not build channel 'broken'"):
        build_channel(pm, "broken", ChannelSettings("broken"))
    with pytest.raises(ChannelConfigError, match="url: is required"):
        build_channel(pm, "misconfigured", ChannelSettings("misconfigured"))
    assert isinstance(build_channel(pm, "dummy", ChannelSettings("dummy")), Dummy)


# -- relances_letter_context ----------------------------------------------------------


def test_letter_context_merges_plugin_fields() -> None:
    seen: list[tuple[Mapping[str, Any], int, str]] = []

    def relances_letter_context(context: Mapping[str, Any], level: int,
                                kind: str) -> dict[str, Any]:
        seen.append((context, level, kind))
        return {"portal_url": f"https://pay.example/{context['customer_code']}"}

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(relances_letter_context=relances_letter_context), name="portal")
    pm.register(plugin(relances_letter_context=lambda level: None), name="quiet")
    context = {"customer_code": "INT01"}
    merged = collect_letter_context(pm, context, 2, "statement")
    assert merged == {"customer_code": "INT01", "portal_url": "https://pay.example/INT01"}
    assert context == {"customer_code": "INT01"}, "the caller's dict is left alone"
    assert [(dict(c), lv, k) for c, lv, k in seen] == [(context, 2, "statement")]


@pytest.mark.parametrize(("answers", "message"), [
    ({"one": {"customer_code": "X"}}, "'one' tried to set merge field 'customer_code', "
                                      "which the letter itself already provides"),
    ({"one": {"iban": "A"}, "two": {"iban": "B"}}, "both set merge field 'iban'"),
    ({"one": ["not", "a", "mapping"]}, "'one': relances_letter_context must return a mapping"),
])
def test_letter_context_refuses_and_names_the_plugin(answers: dict[str, Any],
                                                     message: str) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    for name, answer in answers.items():
        pm.register(plugin(relances_letter_context=lambda answer=answer: answer), name=name)
    with pytest.raises(PluginError, match=re.escape(message)) as caught:
        collect_letter_context(pm, {"customer_code": "INT01"}, 1, "letter")
    assert all(f"'{name}'" in str(caught.value) for name in answers)


def test_letter_context_is_read_only_for_plugins() -> None:
    def relances_letter_context(context: Any) -> None:
        context["customer_code"] = "hacked"

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(relances_letter_context=relances_letter_context), name="meddler")
    with pytest.raises(PluginError, match="'meddler' failed in relances_letter_context"):
        collect_letter_context(pm, {"customer_code": "INT01"}, 1, "letter")


# -- relances_delivery_attempted ------------------------------------------------------


def test_delivery_attempted_tells_every_plugin_and_survives_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, Any, Any]] = []

    def relances_delivery_attempted(delivery: Any, receipt: Any, error: Any) -> None:
        calls.append((delivery.key, receipt, error))

    def broken(delivery: Any) -> None:
        raise RuntimeError("audit database is down")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(relances_delivery_attempted=relances_delivery_attempted), name="audit")
    pm.register(plugin(relances_delivery_attempted=broken), name="flaky")
    delivery = make_delivery(pdf=b"%PDF-1.7\n")
    receipt = Receipt("email", "<id@x>")
    error = DeliveryError("451 try later", retryable=True)
    with caplog.at_level(logging.ERROR):
        notify_delivery_attempted(pm, delivery, receipt, None)
        notify_delivery_attempted(pm, delivery, None, error)
    assert calls == [(delivery.key, receipt, None), (delivery.key, None, error)]
    assert caplog.text.count("plugin flaky failed in relances_delivery_attempted") == 2


# -- every hook is documented and tested ----------------------------------------------


def _hooks() -> list[tuple[str, str]]:
    """(name, exact signature) of every hookspec, e.g. relances_x(a, b)."""
    return [(name, f"{name}({', '.join(inspect.signature(func).parameters)})")
            for name, func in vars(hookspecs).items()
            if name.startswith("relances_") and callable(func)]


def test_every_hook_has_a_doc_section_and_a_test() -> None:
    assert len(_hooks()) >= 3
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## `([^`]+)`\s*$", docs, flags=re.MULTILINE))
    this_file = Path(__file__).resolve()
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")
                      if p.resolve() != this_file)
    tests += "\n".join(line for line in this_file.read_text(encoding="utf-8").splitlines()
                       if "def relances_" in line or "plugin(relances_" in line)
    for name, signature in _hooks():
        assert signature in headings, f"docs/plugins.md lacks a section '## `{signature}`'"
        assert name in tests, f"no test implements the hook {name}"


def test_plugins_command_lists_plugins_versions_and_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from relances.daemon.cli.plugins import plugins_command

    monkeypatch.setenv("RELANCES_BLOCK_PLUGINS", "relances.channels.fax")
    result = CliRunner().invoke(plugins_command, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["PLUGIN", "VERSION", "CHANNELS"]
    assert any(line.startswith("relances.channels.printer") and line.endswith("print")
               for line in lines)
    assert "relances.channels.fax " not in result.output
    assert lines[-1] == "blocked by $RELANCES_BLOCK_PLUGINS: relances.channels.fax"

    result = CliRunner().invoke(plugins_command, ["--json"])
    entries = {entry["name"]: entry for entry in json.loads(result.output)}
    assert entries["relances.channels.email"]["channels"] == ["email"]
    assert entries["relances.channels.email"]["version"]
