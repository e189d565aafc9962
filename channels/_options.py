"""Reading a channel's options section with errors that name the key."""

from __future__ import annotations

import logging
import math
import os
import re
import string
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from relances.plugins import ChannelConfigError, ChannelSettings

logger = logging.getLogger(__name__)

MAX_FORMAT_WIDTH = 200  # the settings' own patterns have the same bound


class Options:
    """Typed access to ``settings.channels.<name>``; unknown keys are refused."""

    def __init__(self, settings: ChannelSettings, known: Collection[str]) -> None:
        self.settings = settings
        self.raw: Mapping[str, Any] = settings.options or {}
        if not isinstance(self.raw, Mapping):
            raise ChannelConfigError(settings.name, "the options must be a mapping")
        for key in self.raw:
            if key not in known:
                raise ChannelConfigError(
                    str(key), f"unknown option; known: {', '.join(sorted(known))}"
                )

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                raise ChannelConfigError(key, "is required")
            return default
        if not isinstance(value, str | int):
            raise ChannelConfigError(key, f"expected text, got {value!r}")
        return str(value)

    def integer(self, key: str, default: int, *, minimum: int | None = None,
                maximum: int = 65535) -> int:
        """A whole number, at most ``maximum`` (a port, a count of copies or tries)."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChannelConfigError(key, f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ChannelConfigError(key, f"must be at least {minimum}, got {value}")
        if value > maximum:
            raise ChannelConfigError(key, f"must be at most {maximum}, got {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0,
               maximum: float = 3600) -> float:
        """A finite number above ``minimum``, at most ``maximum`` (a timeout in seconds)."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ChannelConfigError(key, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ChannelConfigError(key, f"must be a finite number, got {value}")
        if value <= minimum:
            raise ChannelConfigError(key, f"must be more than {minimum}, got {value}")
        if value > maximum:
            raise ChannelConfigError(key, f"must be at most {maximum:g}, got {value:g}")
        return float(value)

    def pattern(self, key: str, fields: Collection[str], *, required: bool = False) -> str | None:
        """A ``str.format`` pattern of ``fields``, its widths and precisions at most
        MAX_FORMAT_WIDTH: ``{number:>2000000000}`` would take gigabytes at each use."""
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ChannelConfigError(key, f"{value!r} is not a pattern: {exc}") from None
        for _, name, spec, _ in parts:
            if name is not None and name not in fields:
                known = ", ".join(f"{{{f}}}" for f in fields)
                raise ChannelConfigError(key, f"{{{name}}} is not one of {known}")
            if spec and ("{" in spec or any(len(d) > 3 or int(d) > MAX_FORMAT_WIDTH
                                            for d in re.findall(r"[0-9]+", spec))):
                raise ChannelConfigError(key, f"the format {spec!r} asks for more than "
                                              f"{MAX_FORMAT_WIDTH} characters")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ChannelConfigError(key, f"expected true or false, got {value!r}")
        return value

    def choice(self, key: str, choices: Collection[str], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise ChannelConfigError(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def mapping(self, key: str) -> dict[str, str]:
        value = self.raw.get(key) or {}
        if not isinstance(value, Mapping):
            raise ChannelConfigError(key, f"expected a mapping of name: value, got {value!r}")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def strings(self, key: str) -> list[str]:
        value = self.raw.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise ChannelConfigError(key, f"expected a list of strings, got {value!r}")
        return [str(v) for v in value]

    def path(self, key: str, default: Path | None = None) -> Path | None:
        value = self.text(key)
        return self.settings.path(value) if value is not None else default

    def secret(self, prefix: str = "password") -> str | None:
        """A secret from ``<prefix>_env`` (a variable name) or ``<prefix>_file``.

        An inline ``<prefix>`` is accepted with a warning: settings files
        end up in backups and version control.
        """
        env_name = self.text(f"{prefix}_env")
        file_path = self.path(f"{prefix}_file")
        inline = self.text(prefix)
        given = [k for k, v in ((f"{prefix}_env", env_name), (f"{prefix}_file", file_path),
                                (prefix, inline)) if v is not None]
        if len(given) > 1:
            raise ChannelConfigError(given[1], f"give only one of {', '.join(given)}")
        if env_name is not None:
            value = os.environ.get(env_name)
            if value is None:
                raise ChannelConfigError(
                    f"{prefix}_env", f"environment variable {env_name} is not set"
                )
            return value
        if file_path is not None:
            try:
                return file_path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ChannelConfigError(
                    f"{prefix}_file", f"cannot read {file_path}: {exc.strerror}"
                ) from exc
        if inline is not None:
            logger.warning(
                "channel %s: %s is written in the settings file; use %s_env or %s_file",
                self.settings.name, prefix, prefix, prefix,
            )
        return inline
