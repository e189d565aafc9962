"""The example plugin (examples/relances-webhook), installed with pip and
found through its entry point, sends to a local HTTP server.
"""

from __future__ import annotations

import base64
import importlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import unavailable
from servers import make_delivery, pdf_text

from relances.plugins import (
    ChannelSettings,
    DeliveryError,
    UnknownChannelError,
    available_channels,
    build_channel,
    get_plugin_manager,
    plugin_listing,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "relances-webhook"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=110)


@pytest.fixture(scope="module")
def webhook_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """pip-install the example (from a copy, so no build files land in the tree)."""
    if _pip("--version").returncode != 0:
        # scripts/setup.sh makes the venv with pip in it: without pip, the setup is incomplete.
        unavailable(f"pip is not available for {sys.executable}")
    source = tmp_path_factory.mktemp("example") / "relances-webhook"
    shutil.copytree(EXAMPLE, source)
    # Build isolation fetches the example's build backend from the package
    # index; fail fast rather than hit the test timeout when it is unreachable.
    done = _pip("install", "--no-deps", "-q", "--retries", "1", "--timeout", "15", str(source))
    if done.returncode != 0:  # no registry to fetch the build backend from
        done = _pip("install", "--no-deps", "--no-build-isolation", "-q", str(source))
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    importlib.invalidate_caches()
    try:
        yield
    finally:
        _pip("uninstall", "-y", "-q", "relances-webhook")
        sys.modules.pop("relances_webhook", None)
        importlib.invalidate_caches()


@dataclass
class HookServer:
    url: str
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # next answers, default 201


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    """An HTTP server on 127.0.0.1 that records JSON posts."""
    state = HookServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.statuses.pop(0) if state.statuses else 201
            if status == 201:
                state.requests.append((dict(self.headers.items()), json.loads(body)))
            answer = json.dumps({"id": f"wh-{len(state.requests)}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/relances"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.usefixtures("webhook_installed")
async def test_example_plugin_sends_through_its_entry_point(
    hook_server: HookServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", "t0ken")
    pm = get_plugin_manager(load_entrypoints=True)
    assert available_channels(pm)["webhook"].plugin == "webhook"
    assert ("webhook", "0.1.0", ("webhook",)) in plugin_listing(pm)

    settings = ChannelSettings("webhook", {"url": hook_server.url, "token_env": "WEBHOOK_TOKEN"})
    channel = build_channel(pm, "webhook", settings)
    async with channel:
        receipt = await channel.send(make_delivery())

    assert receipt.channel == "webhook" and receipt.reference == "wh-1"
    [(headers, body)] = hook_server.requests
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Idempotency-Key"] == "letter:COD_F1026:1"
    assert body["customer"]["code"] == "INT01" and body["level"] == 1
    assert body["invoice_numbers"] == ["COD_F1026"]
    assert "Facture COD_F1026 : reste 253,06 €" in pdf_text(base64.b64decode(body["pdf"]))


@pytest.mark.usefixtures("webhook_installed")
@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (400, False)])
async def test_example_plugin_failures(hook_server: HookServer, status: int,
                                       retryable: bool) -> None:
    hook_server.statuses.append(status)
    channel = build_channel(get_plugin_manager(), "webhook",
                            ChannelSettings("webhook", {"url": hook_server.url}))
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.reason


@pytest.mark.usefixtures("webhook_installed")
def test_example_plugin_can_be_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCES_BLOCK_PLUGINS", "webhook")
    pm = get_plugin_manager()
    assert "webhook" not in available_channels(pm)
    assert "webhook" not in [info.name for info in plugin_listing(pm)]
    with pytest.raises(UnknownChannelError, match="unknown channel 'webhook'"):
        build_channel(pm, "webhook", ChannelSettings("webhook", {"url": "http://x.example/"}))
