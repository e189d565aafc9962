"""The ``web:`` section of ``settings.yaml``: where the screen listens, its
sessions, and the reverse proxy in front of it.  Validated with the rest by
:mod:`relances.daemon.config`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class WebSettings(BaseModel):
    """The web screen (``relances web``, or ``relances daemon`` with ``enabled``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # relances daemon serves the screen too, in its own event loop.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # The address people (and, later, customers) reach the screen at, behind
    # a proxy: the base of the links Relances writes.  null: host and port.
    public_url: str | None = None
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
    # (addresses or networks); from any other client they are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The key that signs session cookies, shared by every instance; the
    # environment's RELANCES_WEB_SECRET wins; null: generated in data_dir.
    session_secret_file: Path | None = None
    idle_minutes: int = Field(30, ge=1, le=7 * 1440)
    # Cookies only over HTTPS: set it behind a reverse proxy with TLS.
    secure_cookies: bool = False
    login_attempts: int = Field(5, ge=1, le=1000)
    login_window_seconds: int = Field(300, ge=1, le=86400)
    page_size: int = Field(50, ge=10, le=1000)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"{value!r}: an address without query, fragment or password")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normal = []
        for item in value:
            try:
                network = ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
            # One address as itself, a network by its first address ("10.0.0.0/8").
            normal.append(str(network.network_address) if network.num_addresses == 1
                          else str(network))
        return tuple(normal)

    @property
    def base_url(self) -> str:
        """Where the screen is reached: ``public_url``, else the address it listens on."""
        return self.public_url or f"http://{self.host}:{self.port}"
