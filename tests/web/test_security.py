"""Sessions, CSRF tokens, the login limit and the security headers."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient
from helpers import Cli, write_settings
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from web.support import PASSWORD, Browser, make_client, relances

from relances.daemon.config import load_settings
from relances.daemon.web.sessions import COOKIE, SECRET_FILE, SessionCodec, fingerprint


def _database_url(settings: Cli) -> str:
    return re.search(r"url: (.+)", settings.settings.read_text(encoding="utf-8")).group(1).strip()  # type: ignore[union-attr]


def test_a_form_without_the_token_or_with_a_wrong_one_is_refused(as_role, people: Cli) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("admin")
    browser.get("/relances")
    for token in ("", "wrong-token", browser.csrf[:-1]):
        response = browser.post("/actions/niveau", {"numero": "COD_F1023", "niveau": "3",
                                                    "retour": "/relances"}, csrf=token)
        assert response.status_code == 403, token
        assert "Formulaire refusé" in response.text
    assert "(aucune étape)" in people(["history", "COD_F1023"]).stdout


def test_the_token_of_another_session_is_refused(client: TestClient, people: Cli) -> None:
    other = Browser(client)
    other.login("gestion")
    stolen = other.csrf
    client.cookies.clear()
    mine = Browser(client)
    mine.login("gestion")
    assert mine.csrf != stolen
    response = mine.post("/actions/niveau", {"numero": "COD_F1023", "niveau": "3"}, csrf=stolen)
    assert response.status_code == 403


def test_logging_in_and_out_need_the_token_too(browser: Browser) -> None:
    browser.get("/login")
    refused = browser.post("/login", {"nom": "gestion", "mot_de_passe": PASSWORD}, csrf="")
    assert refused.status_code == 403
    assert browser.login("gestion").status_code == 303
    assert browser.post("/logout", {}, csrf="nope").status_code == 403
    assert browser.get("/relances").url.path == "/relances"  # still logged in
    out = browser.post("/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "Vous êtes déconnecté." in browser.get("/login").text
    assert browser.get("/relances").url.path == "/login"


def _cookie_from_the_past(people: Cli, seconds_ago: int, password_hash: str) -> str:
    settings = load_settings(people.settings)
    secret = (settings.data_path / SECRET_FILE).read_text(encoding="utf-8").strip()

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds_ago

    serializer = URLSafeTimedSerializer(secret, salt="relances.web.session", signer=Then)
    return serializer.dumps({"u": "gestion", "k": fingerprint(password_hash), "c": "t", "m": []})


def _hash_of(client: TestClient, name: str) -> str:
    from relances.daemon.web import accounts

    async def read() -> str:
        app = client.app.state.relances  # type: ignore[attr-defined]
        async with app.sessions() as session:
            return (await accounts.user_by_name(session, name)).password_hash

    return client.portal.call(read)  # type: ignore[union-attr]


def test_a_session_idle_past_the_timeout_ends(client: TestClient, people: Cli) -> None:
    browser = Browser(client)
    browser.login("gestion")  # makes the secret and shows the session works
    password_hash = _hash_of(client, "gestion")
    client.cookies.clear()
    client.cookies.set(COOKIE, _cookie_from_the_past(people, 29 * 60, password_hash))
    assert client.get("/relances").url.path == "/relances"  # 29 minutes idle: still in
    client.cookies.clear()
    client.cookies.set(COOKIE, _cookie_from_the_past(people, 31 * 60, password_hash))
    page = client.get("/relances?client=DAN01")
    assert page.url.path == "/login"
    assert "Votre session a expiré : reconnectez-vous." in page.text
    assert 'name="suivant" value="/relances?client=DAN01"' in page.text


def test_a_cookie_signed_with_another_secret_is_worth_nothing(client: TestClient, people: Cli) -> None:
    Browser(client).login("gestion")
    forged = SessionCodec("another secret of the right length, but not ours", idle_seconds=60)
    password_hash = _hash_of(client, "gestion")
    session = forged.read(None)
    session.log_in("admin", password_hash)
    client.cookies.clear()
    client.cookies.set(COOKIE, forged.write(session))
    assert client.get("/relances").url.path == "/login"


def test_a_new_password_or_a_disabled_account_ends_its_sessions(client: TestClient, people: Cli) -> None:
    browser = Browser(client)
    browser.login("gestion")
    relances(people, ["user", "passwd", "gestion"], stdin="another password\n")
    assert browser.get("/relances").url.path == "/login"
    assert browser.login("gestion").status_code == 401
    assert browser.login("gestion", "another password").status_code == 303
    relances(people, ["user", "disable", "gestion"])
    assert browser.get("/relances").url.path == "/login"
    assert browser.login("gestion", "another password").status_code == 401


def test_failed_logins_are_limited(people: Cli) -> None:
    write_settings(people.settings, {"database.url": _database_url(people), "web.login_attempts": 2})
    with make_client(people.settings) as client:
        browser = Browser(client)
        assert browser.login("gestion", "wrong one").status_code == 401
        assert browser.login("gestion", "wrong two").status_code == 401
        blocked = browser.login("gestion")  # the right password, too late
        assert blocked.status_code == 429
        assert "Trop de tentatives de connexion" in blocked.text
        # The address is limited as well as the name.
        assert browser.login("lecture").status_code == 429


def test_every_answer_carries_the_security_headers(as_role) -> None:  # type: ignore[no-untyped-def]
    browser = as_role("lecture")
    for path in ("/login", "/relances", "/clients/DAN01", "/factures/COD_F1023", "/factures/NOPE",
                 "/api/reminders", "/static/relances.css"):
        headers = browser.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert browser.get("/relances").headers["cache-control"] == "no-store"


def test_the_session_cookie_is_httponly_samesite_and_secure_when_configured(people: Cli) -> None:
    with make_client(people.settings) as client:
        cookie = client.get("/login").headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    write_settings(people.settings, {"database.url": _database_url(people),
                                     "web.secure_cookies": True})
    with make_client(people.settings) as client:
        assert "Secure" in client.get("/login").headers["set-cookie"]


def test_the_session_secret_comes_from_the_environment_or_a_file(people: Cli, monkeypatch,  # type: ignore[no-untyped-def]
                                                                 tmp_path) -> None:
    from relances.daemon.errors import ConfigError
    from relances.daemon.web.sessions import session_secret

    settings = load_settings(people.settings)
    generated = session_secret(settings)
    assert len(generated) >= 32 and session_secret(settings) == generated
    assert (settings.data_path / SECRET_FILE).stat().st_mode & 0o077 == 0
    monkeypatch.setenv("RELANCES_WEB_SECRET", "from the environment, long enough to sign")
    assert session_secret(settings) == "from the environment, long enough to sign"
    monkeypatch.delenv("RELANCES_WEB_SECRET")
    (tmp_path / "secret").write_text("x" * 40 + "\n", encoding="utf-8")
    write_settings(people.settings, {"database.url": _database_url(people),
                                     "web.session_secret_file": str(tmp_path / "secret")})
    assert session_secret(load_settings(people.settings)) == "x" * 40
    (tmp_path / "secret").write_text("short", encoding="utf-8")
    try:
        session_secret(load_settings(people.settings))
    except ConfigError as exc:
        assert "web.session_secret_file" in str(exc) and "fewer than 32" in str(exc)
    else:
        raise AssertionError("a short secret was accepted")


def test_the_login_limit_forgets_failures_older_than_its_window() -> None:
    from relances.daemon.web.guard import LoginLimiter

    now = [1000.0]
    limiter = LoginLimiter(2, 300, clock=lambda: now[0])
    limiter.failed("ip:a", "name:x")
    limiter.failed("ip:a", "name:y")
    assert limiter.blocked("ip:a") and not limiter.blocked("name:x")
    now[0] += 299
    assert limiter.blocked("ip:a")
    now[0] += 2
    assert not limiter.blocked("ip:a", "name:x", "name:y")
