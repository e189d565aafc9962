"""The plugin manager: built-in channels, entry-point plugins, and the host
side of every hook.

Hooks whose answers the host must check are called implementation by
implementation (not through ``pm.hook.<name>(...)``) so that an error can
name the plugin at fault.  For that reason hook wrappers are refused on
Relances hooks.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import pluggy

from relances.plugins import hookspecs
from relances.plugins.contract import (
    Channel,
    ChannelFactory,
    ChannelSettings,
    Delivery,
    DeliveryError,
    Receipt,
    RelancesError,
)

logger = logging.getLogger(__name__)

ENTRYPOINT_GROUP = "relances"
BLOCK_ENV = "RELANCES_BLOCK_PLUGINS"

# Built-in channels register through the same hook as third-party plugins;
# they are named by their module so that no entry point can take their name.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "relances.channels.email",
    "relances.channels.printer",
    "relances.channels.fax",
    "relances.channels.archive",
)


class PluginError(RelancesError):
    """A plugin could not be loaded or handed the host something invalid."""


class UnknownChannelError(RelancesError):
    """Settings or a command named a channel no plugin provides."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.versions: dict[str, str] = {}


class RegisteredChannel(NamedTuple):
    factory: ChannelFactory
    plugin: str


class PluginInfo(NamedTuple):
    """One line of ``relances plugins``."""

    name: str
    version: str
    channels: tuple[str, ...]


def blocked_plugins(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Plugin names listed, comma-separated, in ``$RELANCES_BLOCK_PLUGINS``."""
    value = (os.environ if environ is None else environ).get(BLOCK_ENV, "")
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """Build the plugin manager: built-ins, then the ``relances`` entry points.

    Plugins named in ``$RELANCES_BLOCK_PLUGINS`` are skipped.  Tests pass
    ``load_entrypoints=False`` to see only the built-in channels.  Raises
    :class:`PluginError` when a plugin fails to import or implements a hook
    that does not exist (a misspelling must fail at start, not be ignored).
    """
    pm = PluginManager()
    for name in blocked_plugins():
        pm.set_blocked(name)
    relances_version = _distribution_version("relances")
    for module_name in BUILTIN_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
        pm.versions[module_name] = relances_version
    if load_entrypoints:
        _load_entrypoints(pm)
    check_plugins(pm)
    return pm


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _load_entrypoints(pm: PluginManager) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        if pm.is_blocked(ep.name):
            logger.info("plugin %s (%s) blocked by $%s", ep.name, dist, BLOCK_ENV)
            continue
        if pm.has_plugin(ep.name):
            raise PluginError(
                f"plugin name {ep.name!r} of distribution {dist!r} is already taken; "
                f"block one of them with ${BLOCK_ENV}"
            )
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} ({dist}) failed to load: {exc.__class__.__name__}: {exc}"
            ) from exc
        try:
            pm.register(plugin, name=ep.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {ep.name!r} ({dist}): {exc}") from exc
        pm.versions[ep.name] = ep.dist.version if ep.dist else ""
        logger.debug("loaded plugin %s from %s", ep.name, dist)


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Fail on hook implementations that match no hook, and on hook wrappers."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    for caller in (getattr(pm.hook, name) for name in _hook_names()):
        for impl in caller.get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {caller.name} cannot be a hook wrapper"
                )


def _hook_names() -> list[str]:
    return [name for name in vars(hookspecs) if name.startswith("relances_")]


def _implementations(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    """A hook's implementations in the order pluggy would call them."""
    # pluggy calls the last registered implementation first.
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def _call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    # An implementation may accept any subset of the hook's arguments.
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _failed(impl: pluggy.HookImpl, hook_name: str, exc: Exception) -> PluginError:
    return PluginError(
        f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc.__class__.__name__}: {exc}"
    )


# -- relances_register_channels -------------------------------------------------------


def available_channels(pm: pluggy.PluginManager) -> dict[str, RegisteredChannel]:
    """Every channel the plugins register, by name: ``(factory, plugin name)``."""
    channels: dict[str, RegisteredChannel] = {}
    current = ""

    def register(name: str, factory: ChannelFactory) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(
                f"plugin {current!r} registered a channel with an invalid name {name!r} "
                "(it must be an identifier such as 'sms')"
            )
        if name in channels:
            raise PluginError(
                f"plugins {channels[name].plugin!r} and {current!r} both register channel "
                f"{name!r}; block one of them with ${BLOCK_ENV}"
            )
        if not callable(factory):
            raise PluginError(
                f"plugin {current!r} registered channel {name!r} with a factory "
                f"that is not callable: {factory!r}"
            )
        channels[name] = RegisteredChannel(factory, current)

    for impl in _implementations(pm, "relances_register_channels"):
        current = impl.plugin_name
        try:
            _call(impl, register=register)
        except PluginError:
            raise
        except Exception as exc:
            raise _failed(impl, "relances_register_channels", exc) from exc
    return channels


def build_channel(pm: pluggy.PluginManager, name: str, settings: ChannelSettings) -> Channel:
    """Build channel ``name`` from its settings.

    Raises :class:`UnknownChannelError` when no plugin provides ``name``,
    lets a :class:`~relances.plugins.contract.ChannelConfigError` through
    (the caller adds the file and line), and turns anything else the
    factory raises into a :class:`PluginError` naming the plugin.
    """
    channels = available_channels(pm)
    try:
        factory, plugin = channels[name]
    except KeyError:
        known = ", ".join(sorted(channels)) or "none"
        raise UnknownChannelError(
            f"unknown channel {name!r}; the installed plugins provide: {known}"
        ) from None
    try:
        channel = factory(settings)
    except RelancesError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin {plugin!r} could not build channel {name!r}: "
            f"{exc.__class__.__name__}: {exc}"
        ) from exc
    if not callable(getattr(channel, "send", None)):
        raise PluginError(
            f"plugin {plugin!r}: the factory of channel {name!r} returned {channel!r}, "
            "which has no send() method"
        )
    return channel


def plugin_listing(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Each registered plugin with its version and the channels it provides."""
    by_plugin: dict[str, list[str]] = {}
    for channel, registered in available_channels(pm).items():
        by_plugin.setdefault(registered.plugin, []).append(channel)
    versions = getattr(pm, "versions", {})
    listing = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        version = versions.get(name) or str(getattr(plugin, "__version__", ""))
        listing.append(PluginInfo(name, version, tuple(sorted(by_plugin.get(name, ())))))
    return sorted(listing, key=lambda info: info.name)


# -- relances_letter_context ----------------------------------------------------------


def collect_letter_context(
    pm: pluggy.PluginManager, context: Mapping[str, Any], level: int, kind: str
) -> dict[str, Any]:
    """Return a new dict: ``context`` plus the merge fields plugins add.

    Plugins see a read-only view of ``context``.  A plugin that returns
    something other than a mapping with string keys, or a key that is
    already present (in the context or from another plugin), raises
    :class:`PluginError` naming it.
    """
    merged = dict(context)
    origin: dict[str, str] = {}
    view = MappingProxyType(dict(context))
    for impl in _implementations(pm, "relances_letter_context"):
        try:
            extra = _call(impl, context=view, level=level, kind=kind)
        except Exception as exc:
            raise _failed(impl, "relances_letter_context", exc) from exc
        if extra is None:
            continue
        if not isinstance(extra, Mapping):
            raise PluginError(
                f"plugin {impl.plugin_name!r}: relances_letter_context must return a "
                f"mapping or None, not {type(extra).__name__}"
            )
        for key, value in extra.items():
            if not isinstance(key, str):
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: merge field names must be strings, "
                    f"got {key!r}"
                )
            if key in origin:
                raise PluginError(
                    f"plugins {origin[key]!r} and {impl.plugin_name!r} both set merge "
                    f"field {key!r}"
                )
            if key in merged:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} tried to set merge field {key!r}, "
                    "which the letter itself already provides"
                )
            merged[key] = value
            origin[key] = impl.plugin_name
    return merged


# -- relances_delivery_attempted ------------------------------------------------------


def notify_delivery_attempted(
    pm: pluggy.PluginManager,
    delivery: Delivery,
    receipt: Receipt | None,
    error: DeliveryError | None,
) -> None:
    """Tell every plugin about one delivery attempt.

    A plugin's exception is logged with its name and swallowed: an audit
    hook must never turn a sent letter into a failed one.
    """
    for impl in _implementations(pm, "relances_delivery_attempted"):
        try:
            _call(impl, delivery=delivery, receipt=receipt, error=error)
        except Exception:
            logger.exception(
                "plugin %s failed in relances_delivery_attempted for %s",
                impl.plugin_name,
                delivery.key,
            )
