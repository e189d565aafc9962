"""Levels that wait for a person: shown in the table and by `status`, left by the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import SAMPLE, Cli, write_settings


def test_manual_level_waits_for_a_person(tmp_path: Path, database_url: str) -> None:
    levels = {n: {"delay_days": 45, "channels": ["archive"], "auto_send": n != 1,
                  "attach_invoice": False} for n in (1, 2, 3)}
    settings = write_settings(tmp_path / "settings.yaml", {
        "database.url": database_url, "policies.default.levels": levels,
        "channels": {"archive": {"folder": str(tmp_path / "letters")}},
        "schedule": {"escalate": None, "dispatch": None}})
    cli = Cli(settings)
    cli("init")
    cli(["import", "customers", str(SAMPLE / "customers.csv")])
    cli(["import", "invoices", str(SAMPLE / "seed.tsv")])

    daemon = subprocess.run(
        [str(Path(sys.executable).with_name("relances")), "--config", str(settings),
         "--user", "daemon", "daemon", "--once"], capture_output=True, text=True, timeout=120)
    assert daemon.returncode == 0, daemon.stderr
    assert not (tmp_path / "letters").exists(), "the daemon sent a level that waits"

    rows = json.loads(cli("list --format json").stdout)
    assert {r["invoice_number"]: (r["level"], r["to_send"]) for r in rows} == {
        "COD_F1023": (1, "manual"), "COD_F1026": (1, "manual")}
    assert "à valider" in cli("list").stdout
    status = cli("status").stdout
    assert "level 1: 2 invoices (COD_F1023, COD_F1026) — `relances send`" in status
    assert "escalate  daemon" in status

    assert "2 sent (2 by archive)" in cli("send").stdout
    assert len(list((tmp_path / "letters").glob("*.pdf"))) == 2
    rows = json.loads(cli("list --format json").stdout)
    assert {r["to_send"] for r in rows} == {None}
    assert "Waiting for a person (levels that do not send on their own):\n  nothing" \
        in cli("status").stdout
