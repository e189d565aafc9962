"""What the web screen's tests share: the accounts' password, hostile names, a
test client that keeps its CSRF token, and ``relances`` with a standard input."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from helpers import Cli

from relances.daemon.cli.main import main
from relances.daemon.storage import App
from relances.daemon.web.app import create_app

PASSWORD = "correct horse battery"
HOSTILE = ('<script>alert("nom")</script>', '"><img src=x onerror=alert(1)>')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def relances(cli: Cli, args: list[str], stdin: str | None = None, *, ok: bool = True):  # type: ignore[no-untyped-def]
    """Run ``relances`` as the test user, with ``stdin`` as its standard input."""
    result = cli.runner.invoke(main, ["--config", str(cli.settings), "--user", "tester", *args],
                               input=stdin, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


class Browser:
    """A test client that remembers the CSRF token of the last page it read."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        response = self.client.get(url, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, url: str, data: dict[str, str], *, csrf: str | None = None,
             follow: bool = False):  # type: ignore[no-untyped-def]
        form = dict(data)
        token = self.csrf if csrf is None else csrf
        if token != "":
            form["csrf"] = token
        return self.client.post(url, data=form, follow_redirects=follow)

    def login(self, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        self.get("/login")
        response = self.post("/login", {"nom": name, "mot_de_passe": password})
        if response.status_code == 303:
            self.get("/relances")
        return response


def make_client(settings: Path) -> TestClient:
    return TestClient(create_app(App.load(settings, "web")), base_url="http://127.0.0.1")
