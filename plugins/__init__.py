"""The whole plugin API of Relances.

A plugin author imports from here and nowhere else: the ``hookimpl``
marker, the channel contract and its errors.  See ``docs/plugins.md``.
"""

from relances.plugins.contract import (
    Attachment,
    Channel,
    ChannelConfigError,
    ChannelFactory,
    ChannelSettings,
    Delivery,
    DeliveryError,
    Receipt,
    Recipient,
    RelancesError,
)
from relances.plugins.hookspecs import RegisterChannel, hookimpl, hookspec
from relances.plugins.manager import (
    BLOCK_ENV,
    BUILTIN_PLUGINS,
    ENTRYPOINT_GROUP,
    PluginError,
    PluginInfo,
    PluginManager,
    RegisteredChannel,
    UnknownChannelError,
    available_channels,
    blocked_plugins,
    build_channel,
    collect_letter_context,
    get_plugin_manager,
    notify_delivery_attempted,
    plugin_listing,
)

__all__ = [
    "BLOCK_ENV",
    "BUILTIN_PLUGINS",
    "ENTRYPOINT_GROUP",
    "Attachment",
    "Channel",
    "ChannelConfigError",
    "ChannelFactory",
    "ChannelSettings",
    "Delivery",
    "DeliveryError",
    "PluginError",
    "PluginInfo",
    "PluginManager",
    "Receipt",
    "Recipient",
    "RegisterChannel",
    "RegisteredChannel",
    "RelancesError",
    "UnknownChannelError",
    "available_channels",
    "blocked_plugins",
    "build_channel",
    "collect_letter_context",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "notify_delivery_attempted",
    "plugin_listing",
]
