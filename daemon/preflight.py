"""Checks run when the configuration loads: ``check-config`` and daemon start.

Anything that would fail in the middle of a run (an unknown channel, a bad
template) fails here instead, with the file, the line and the key.
"""

from __future__ import annotations

import logging

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError

log = logging.getLogger(__name__)


def check_policies(settings: Settings) -> list[str]:
    """Every channel a level names must be configured under ``channels``."""
    warnings: list[str] = []
    for name, policy in settings.policies.items():
        for number, level in policy.levels.items():
            for index, channel in enumerate(level.channels):
                if channel not in settings.channels:
                    where = settings.where("policies", name, "levels", number, "channels", index)
                    raise ConfigError(f"{where}: channel {channel!r} is not configured "
                                      f"under 'channels'")
    return warnings


def preflight(settings: Settings) -> list[str]:
    """Validate what the settings refer to; return warnings, raise ConfigError on errors."""
    return check_policies(settings)
