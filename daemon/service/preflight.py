"""Checks run when the configuration loads: ``check-config`` and daemon start.

Anything that would fail in the middle of a run (an unknown channel, a
channel's bad option, a mailbox's, a bad template) fails here instead, with the file,
the line and the key.
"""

from __future__ import annotations

import logging
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.dispatch.channels import configured_channel
from relances.daemon.dispatch.mailboxes import configured_mailboxes
from relances.daemon.errors import ConfigError
from relances.daemon.letters.check import check_templates
from relances.daemon.letters.pool import harfbuzz_subset_available
from relances.plugins.manager import get_plugin_manager

log = logging.getLogger(__name__)


def check_policies(settings: Settings) -> None:
    """Every channel a level names must be configured under ``channels``."""
    for name, policy in settings.policies.items():
        for number, level in policy.levels.items():
            for index, channel in enumerate(level.channels):
                if channel not in settings.channels:
                    where = settings.where("policies", name, "levels", number, "channels", index)
                    raise ConfigError(f"{where}: channel {channel!r} is not configured "
                                      f"under 'channels'")


def check_channels(settings: Settings, pm: Any) -> None:
    """Build every configured channel once: unknown names and bad options fail now."""
    for name in settings.channels:
        try:
            configured_channel(settings, pm, name)
        except ConfigError:
            raise
        except Exception as exc:  # UnknownChannelError, PluginError: both name the culprit
            raise ConfigError(f"{settings.where('channels', name)}: {exc}") from None


SCHEDULED_JOBS = ("escalate", "dispatch")


def cron_trigger(settings: Settings, job: str) -> Any:
    """The trigger of ``schedule.<job>`` (None when unset); ConfigError if it does not parse."""
    from apscheduler.triggers.cron import CronTrigger

    expression = getattr(settings.schedule, job)
    if not expression:
        return None
    try:
        return CronTrigger.from_crontab(expression, timezone=settings.zone)
    except ValueError as exc:
        raise ConfigError(f"{settings.where('schedule', job)}: {exc}") from None


def check_schedule(settings: Settings) -> None:
    """The daemon's cron lines must parse, as the daemon will read them."""
    for job in SCHEDULED_JOBS:
        cron_trigger(settings, job)


def preflight(settings: Settings, pm: Any = None) -> list[str]:
    """Validate what the settings refer to; return warnings, raise ConfigError on errors."""
    check_policies(settings)
    check_schedule(settings)
    check_channels(settings, pm if pm is not None else get_plugin_manager())
    configured_mailboxes(settings)  # an unknown option or an unset password fails now
    warnings = list(check_templates(settings))
    if settings.late_charges.reference_rate is not None:
        warnings.append(f"{settings.where('late_charges', 'reference_rate')}: deprecated: one "
                        "rate for the whole delay, where L441-10 takes each half-year's ECB "
                        "rate; remove it (late_charges.reference_rates corrects a half-year)")
    if not harfbuzz_subset_available():
        warnings.append("libharfbuzz-subset is not installed: PDF rendering will be about ten "
                        "times slower (Debian package libharfbuzz-subset0)")
    return warnings
