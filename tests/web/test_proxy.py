"""Behind a reverse proxy: the forwarded headers believed from the listed
proxies only, and ``web.public_url`` for the addresses Relances writes."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from helpers import Cli, write_settings
from web.support import Browser

from relances.daemon.config import load_settings
from relances.daemon.errors import ConfigError
from relances.daemon.storage import App
from relances.daemon.web.app import create_app


def _database_url(cli: Cli) -> str:
    return re.search(r"url: (.+)", cli.settings.read_text(encoding="utf-8")).group(1).strip()  # type: ignore[union-attr]


def _client(cli: Cli, peer: str, **settings: object) -> TestClient:
    write_settings(cli.settings, {"database.url": _database_url(cli),
                                  "web.login_attempts": 2, **settings})
    return TestClient(create_app(App.load(cli.settings, "web")), base_url="http://127.0.0.1",
                      client=(peer, 40000))


def _fail_twice(browser: Browser, forwarded: str) -> int:
    for _ in range(2):
        browser.get("/login")
        browser.client.post("/login", data={"nom": "x", "mot_de_passe": "wrong",
                                            "csrf": browser.csrf},
                            headers={"X-Forwarded-For": forwarded})
    browser.get("/login")
    answer = browser.client.post("/login", data={"nom": "gestion", "mot_de_passe": "nope",
                                                 "csrf": browser.csrf},
                                 headers={"X-Forwarded-For": "198.51.100.9"})
    return answer.status_code


def test_a_listed_proxy_names_the_client(people: Cli, caplog: pytest.LogCaptureFixture) -> None:
    with _client(people, "10.0.0.2", **{"web.trusted_proxies": ["10.0.0.0/24"]}) as client:
        browser = Browser(client)
        # Two failures from one client behind the proxy block that client, not the next one.
        assert _fail_twice(browser, "203.0.113.7") == 401
        with caplog.at_level(logging.INFO, logger="relances.daemon.web.login"):
            browser.get("/login")
            client.post("/login", data={"nom": "gestion", "mot_de_passe": "correct horse battery",
                                        "csrf": browser.csrf},
                        headers={"X-Forwarded-For": "198.51.100.20, 10.0.0.1"})
        assert "gestion logged in from 198.51.100.20" in caplog.text
        assert "login of 'x' from 203.0.113.7 failed" in caplog.text


def test_an_unlisted_client_cannot_choose_its_address(people: Cli,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with _client(people, "192.0.2.50", **{"web.trusted_proxies": ["10.0.0.0/24"]}) as client:
        browser = Browser(client)
        with caplog.at_level(logging.INFO, logger="relances.daemon.web.login"):
            # Each attempt claims another address: all count against the real one.
            assert _fail_twice(browser, "203.0.113.7") == 429
        assert "from 192.0.2.50" in caplog.text and "203.0.113.7" not in caplog.text


def test_the_api_description_names_the_public_address(people: Cli) -> None:
    from relances.daemon.cli.main import main

    token = people.runner.invoke(main, ["--config", str(people.settings), "user", "token",
                                        "erp", "--role", "lecture"]).stdout.strip().splitlines()[-1]
    with _client(people, "127.0.0.1", **{"web.public_url": "https://relances.example.fr/"}) \
            as client:
        spec = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {token}"})
        assert spec.json()["servers"] == [{"url": "https://relances.example.fr"}]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("web.public_url", "ftp://x.example", "is not an http:// or https:// address"),
    ("web.public_url", "https://x.example/?a=1", "without query"),
    ("web.trusted_proxies", ["10.0.0.300"], "'10.0.0.300' is not an IP address or network"),
])
def test_wrong_proxy_settings_are_refused_at_their_line(tmp_path, key: str, value: object,  # type: ignore[no-untyped-def]
                                                        message: str) -> None:
    path = write_settings(tmp_path / "settings.yaml", {key: value})
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    text = str(error.value)
    assert message in text and f"{key}" in text and re.search(r"settings\.yaml:\d+", text), text
