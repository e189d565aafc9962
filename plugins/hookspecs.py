"""Every hook a Relances plugin can implement.

Hooks are synchronous and take keyword arguments only (at most three).  A
plugin implements one by defining a function of the same name decorated with
:data:`relances.plugins.hookimpl`; it may accept any subset of the
arguments.  Each hook's section in ``docs/plugins.md`` is headed by its
exact signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from relances.plugins.contract import ChannelFactory, Delivery, DeliveryError, Receipt

PROJECT = "relances"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

RegisterChannel = Callable[[str, ChannelFactory], None]
"""The ``register`` callback handed to :func:`relances_register_channels`."""


@hookspec
def relances_register_channels(register: RegisterChannel) -> None:
    """Register delivery channels.

    Called whenever the host lists the available channels (at start, by
    ``relances plugins``, before a send), so register the same channels
    every time and do no expensive work here.  Call
    ``register(name, factory)`` once per channel: ``name`` is what
    ``settings.yaml`` and the policy levels use (an identifier such as
    ``"sms"``), ``factory`` builds the channel from its
    :class:`~relances.plugins.contract.ChannelSettings`.  The host refuses
    an invalid name, a name another plugin already registered, or a factory
    that is not callable, and names the plugin in the error.

    Return nothing.  Every implementation is called (not ``firstresult``).
    """


@hookspec
def relances_letter_context(
    context: Mapping[str, Any], level: int, kind: str
) -> Mapping[str, Any] | None:
    """Add merge fields to a letter's template context.

    Called once per document rendered, with ``context`` the plain-dict
    context the letters module built (read it, do not change it),
    ``level`` the reminder level (1 to 3) and ``kind`` either
    ``"letter"`` (one invoice) or ``"statement"`` (all of a customer's
    overdue invoices).

    Return a mapping of new keys (plain data: strings, numbers, dates,
    lists and dicts of them) or ``None``.  A plugin may not override a key
    that is already there: the host refuses and names the plugin.  Every
    implementation is called (not ``firstresult``); their answers are
    merged.
    """


@hookspec
def relances_delivery_attempted(
    delivery: Delivery, receipt: Receipt | None, error: DeliveryError | None
) -> None:
    """Be told after every delivery attempt, for audit trails and webhooks.

    Called after each attempt to send ``delivery`` through one channel:
    on success ``receipt`` is the channel's receipt and ``error`` is
    ``None``; on failure ``receipt`` is ``None`` and ``error`` says why and
    whether it will be retried (``error.retryable``).

    Return nothing.  Every implementation is called (not ``firstresult``).
    An exception raised here is logged with the plugin's name and never
    stops the dispatch; keep the work short, since sending waits for it.
    """
