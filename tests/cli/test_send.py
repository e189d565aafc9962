"""Sending by hand: ``relances send`` through real SMTP, CUPS and HylaFAX servers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import query
from helpers import SAMPLE, Cli, write_settings
from servers import (  # noqa: F401 - fixtures
    CupsServer,
    HylafaxServer,
    SmtpServer,
    cups_server,
    hylafax_server,
    pdf_text,
    smtp_server,
    tls_files,
)
from sqlalchemy import Executable, select, update

from relances.daemon.models import Customer, Reminder


def channels(level1: list[str], **options: dict[str, Any]) -> dict[str, Any]:
    levels = {n: {"delay_days": 45, "channels": level1 if n == 1 else ["archive"],
                  "attach_invoice": n == 3, "late_charges": n == 3} for n in (1, 2, 3)}
    return {"policies.default.levels": levels,
            "channels": {"archive": {"folder": "letters"}, **options}}


def make_cli(tmp_path: Path, database_url: str, overrides: dict[str, Any]) -> Cli:
    path = write_settings(tmp_path / "settings.yaml", {"database.url": database_url, **overrides})
    cli = Cli(path)
    cli("init")
    cli(["import", "customers", str(SAMPLE / "customers.csv")])
    cli(["import", "invoices", str(SAMPLE / "seed.tsv")])
    return cli


def listed(cli: Cli, code: str) -> dict[str, Any]:
    (row,) = json.loads(cli(f"list --format json --customer {code} --as-of 22/11/2024").stdout)
    return row


def attachment_texts(message: Any) -> list[str]:
    return [pdf_text(part.get_content()) for part in message.iter_attachments()]


def test_send_emails_the_level_1_letter_and_stamps_relance_le(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url,
                   channels(["email", "print"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    out = cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "1 sent (1 by email), 0 failed" in out

    (received,) = smtp_server.handler.messages
    message = received.message
    assert received.rcpt_tos == ["compta@intel.example"]
    assert message["Subject"] == "Relance n°1 – facture COD_F1026"
    (letter,) = attachment_texts(message)
    assert "INTEL" in letter and "COD_F1026" in letter and "680,40 €" in letter

    row = listed(cli, "INT01")
    assert (row["level"], row["last_reminded_on"]) == (1, "2024-11-22")
    assert "22/11/2024" in cli("list --customer INT01 --as-of 22/11/2024").stdout
    history = cli("history COD_F1026").stdout
    assert "Relance niveau 1 (Email)" in history
    assert message["Message-ID"].strip("<>") in history

    again = cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "nothing to send: 1 already sent or queued (use --force to send again)" in again
    assert len(smtp_server.handler.messages) == 1
    assert "1 sent" in cli("send --customer INT01 --as-of 22/11/2024 --force").stdout
    assert len(smtp_server.handler.messages) == 2


def test_customer_without_email_goes_to_the_printer(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer,
        cups_server: CupsServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(
        ["email", "print"], email=smtp_server.channel_options(),
        print={"printer": cups_server.printer, "server": cups_server.server}))
    cli("escalate --customer DAN01 --as-of 22/11/2024")
    before = cups_server.idle_pdfs()
    out = cli("send --invoice COD_F1023 --as-of 22/11/2024").stdout
    # lp queued the job: the letter is not stamped until CUPS says it printed.
    assert "0 sent, 1 handed over (1 by print), awaiting confirmation, 0 failed" in out
    assert [state for _, state, _ in outbox_rows(database_url)] == ["awaiting"]
    (handed,) = [line for line in cli("history COD_F1023").stdout.splitlines()
                 if "Relance niveau 1 (Courrier)" in line]
    assert "transmise, en attente de confirmation" in handed and "RelancesPDF-" in handed
    printed = pdf_text(cups_server.wait_for_pdf(before).read_bytes())
    assert "DANIERE FLORENCE" in printed and "253,06 €" in printed
    assert smtp_server.handler.messages == []
    cups_server.idle_pdfs()  # the job is done once the queue is empty
    out = cli("send --invoice COD_F1023 --as-of 22/11/2024").stdout
    assert "0 sent, 1 confirmed (1 by print) of those handed over earlier" in out
    assert "nothing to send: 1 already sent or queued" in out
    assert [state for _, state, _ in outbox_rows(database_url)] == ["sent"]
    sent, handed = [line for line in cli("history COD_F1023").stdout.splitlines()
                    if "Relance niveau 1 (Courrier)" in line]
    assert "attente" not in sent and "1 sheet(s)" in sent
    assert listed(cli, "DAN01")["last_reminded_on"] == "2024-11-22"


def test_permanent_smtp_refusal_falls_back_to_print(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer,
        cups_server: CupsServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(
        ["email", "print"], email=smtp_server.channel_options(),
        print={"printer": cups_server.printer, "server": cups_server.server}))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    smtp_server.handler.data_replies.append("550 5.1.1 mailbox unavailable")
    before = cups_server.idle_pdfs()
    assert "1 handed over (1 by print)" in cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "INTEL" in pdf_text(cups_server.wait_for_pdf(before).read_bytes())
    history = cli("history COD_F1026").stdout
    assert "Échec Relance niveau 1 (Email) : " in history and "550" in history
    assert "envoi par print" in history
    assert "Relance niveau 1 (Courrier)" in history


@pytest.mark.parametrize("address", ["<victim@example.com>", "@evil.example:victim@example.com"])
def test_an_invalid_address_falls_back_at_once_and_says_why(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer,
        change_ledger: Callable[[Executable], None], address: str) -> None:
    cli = make_cli(tmp_path, database_url,
                   channels(["email", "archive"], email=smtp_server.channel_options()))
    # The imports refuse such a value; one already in the ledger must not jam the queue.
    change_ledger(update(Customer).where(Customer.code == "INT01").values(email=address))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    out = cli("send --customer INT01 --as-of 22/11/2024 --retry-for 0").stdout
    assert "1 sent (1 by archive), 0 failed" in out
    assert smtp_server.handler.messages == []
    (row,) = outbox_rows(database_url)
    assert row[1:] == ("sent", 1)
    history = cli("history COD_F1026").stdout
    assert f"Échec Relance niveau 1 (Email) : customer INT01: invalid email address: " \
           f"{address!r} is not an email address" in history
    assert "envoi par archive" in history and "Relance niveau 1 (Archive)" in history
    (letter,) = (tmp_path / "letters").glob("*_INT01_COD_F1026_relance-1.pdf")
    assert "INTEL" in pdf_text(letter.read_bytes())


def test_transient_smtp_failure_is_retried_later_and_nothing_stamped(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    smtp_server.handler.data_replies.append("451 4.3.0 try again later")
    result = cli("send --customer INT01 --as-of 22/11/2024 --retry-for 0")
    assert "0 sent, 0 failed, 1 to retry later" in result.stdout
    assert "451" in result.stderr
    row = listed(cli, "INT01")
    assert row["last_reminded_on"] == "2024-11-19"  # the imported date, untouched
    assert "nouvel essai dans" in cli("history COD_F1026").stdout
    assert smtp_server.handler.messages == []


def outbox_rows(url: str) -> list[tuple[str, str, int]]:
    """(key, state, attempts) of every reminder in the outbox."""
    return [tuple(row) for row in query(url, select(Reminder.key, Reminder.state,
                                                    Reminder.attempts).order_by(Reminder.id))]


def failure_and_sent_lines(cli: Cli, number: str) -> list[str]:
    return [line for line in cli(f"history {number}").stdout.splitlines()
            if "Échec" in line or "Relance niveau" in line]


def test_send_retries_a_transient_failure_until_the_letter_leaves(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    overrides = channels(["email"], email=smtp_server.channel_options())
    overrides["daemon.retry_base_seconds"] = 1
    cli = make_cli(tmp_path, database_url, overrides)
    cli("escalate --customer INT01 --as-of 22/11/2024")
    smtp_server.handler.data_replies.append("451 4.3.0 try again later")
    result = cli("send --customer INT01 --as-of 22/11/2024")
    assert "1 sent (1 by email), 0 failed, 0 to retry later" in result.stdout
    assert "waiting for a retry at" in result.stderr
    (received,) = smtp_server.handler.messages
    assert received.rcpt_tos == ["compta@intel.example"]
    sent, refused = failure_and_sent_lines(cli, "COD_F1026")  # newest first
    assert "451" in refused and "nouvel essai dans" in refused
    assert "Échec" not in sent and "Relance niveau 1 (Email)" in sent
    assert listed(cli, "INT01")["last_reminded_on"] == "2024-11-22"
    assert outbox_rows(database_url) == [("letter:COD_F1026:1:email", "sent", 2)]


def test_a_later_send_sends_what_a_transient_failure_left_pending(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    smtp_server.handler.data_replies.append("451 4.3.0 try again later")
    assert "1 to retry later" in cli("send --customer INT01 --as-of 22/11/2024 "
                                     "--retry-for 0").stdout
    assert smtp_server.handler.messages == []
    # Its retry is a minute away (daemon.retry_base_seconds); with no daemon
    # running, the next `send` for the customer is what sends it.
    preview = cli("send --customer INT01 --as-of 22/11/2024 --dry-run").stdout
    assert "1 waiting for a retry would be sent again" in preview
    out = cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "1 sent (1 by email), 0 failed, 0 to retry later" in out
    assert len(smtp_server.handler.messages) == 1
    assert outbox_rows(database_url) == [("letter:COD_F1026:1:email", "sent", 2)]
    assert listed(cli, "INT01")["last_reminded_on"] == "2024-11-22"


def test_force_sends_again_through_the_same_outbox_row(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    cli("send --customer INT01 --as-of 22/11/2024")
    assert "1 sent (1 by email)" in cli("send --customer INT01 --as-of 23/11/2024 --force").stdout

    assert outbox_rows(database_url) == [("letter:COD_F1026:1:email", "sent", 1)]
    first, again = (m.message for m in smtp_server.handler.messages)
    # A new message (a server drops a repeated Message-ID), in the first one's thread.
    assert again["Message-ID"] != first["Message-ID"]
    assert again["In-Reply-To"] == again["References"] == first["Message-ID"]
    history = cli("history COD_F1026").stdout
    assert history.count("Relance niveau 1 (Email)") == 2
    assert again["Message-ID"].strip("<>") in history
    assert listed(cli, "INT01")["last_reminded_on"] == "2024-11-23"


def test_reprint_by_email_replies_to_the_original_message(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    cli("send --customer INT01 --as-of 22/11/2024")
    out = cli("reprint COD_F1026").stdout
    original, reprint = (m.message for m in smtp_server.handler.messages)
    assert f"COD_F1026: reprinted by email ({reprint['Message-ID']})" in out
    assert reprint["Message-ID"] != original["Message-ID"]
    assert reprint["In-Reply-To"] == original["Message-ID"]
    assert reprint["References"] == original["Message-ID"]
    assert reprint["Subject"].endswith("(duplicata)")
    assert next(reprint.iter_attachments()).get_content() == \
        next(original.iter_attachments()).get_content()


def test_statement_covers_every_overdue_invoice(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli(["import", "invoices", str(SAMPLE / "invoices.tsv")])
    cli("escalate --customer BOU02 --as-of 2026-11-27")
    out = cli("send --statement --customer BOU02 --as-of 2026-11-27").stdout
    assert "1 sent (1 by email)" in out
    (received,) = smtp_server.handler.messages
    (statement,) = attachment_texts(received.message)
    assert "COD_F1101" in statement and "COD_F1187" in statement
    assert "1 652,50 €" in statement  # 1 540,00 + 112,50
    for number in ("COD_F1101", "COD_F1187"):
        assert "Relevé niveau 1 (Email)" in cli(f"history {number}").stdout


def test_fax_job_is_queued_in_hylafax(tmp_path: Path, database_url: str,
                                      hylafax_server: HylafaxServer) -> None:
    """Queued in HylaFAX is not sent: the letter waits for the job; the job fails
    (faxrm, as when HylaFAX's tries are spent) and the level's next channel sends it."""
    cli = make_cli(tmp_path, database_url, channels(
        ["fax", "archive"], fax={"backend": "hylafax", "host": hylafax_server.host}))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    out = cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "0 sent, 1 handed over (1 by fax), awaiting confirmation" in out
    assert [state for _, state, _ in outbox_rows(database_url)] == ["awaiting"]
    (handed,) = [line for line in cli("history COD_F1026").stdout.splitlines()
                 if "Relance niveau 1 (Fax)" in line]
    assert "transmise, en attente de confirmation" in handed
    job = handed.split()[-1]
    hylafax_server.jobs.append(job)
    [queued] = [row for row in hylafax_server.status().splitlines() if row.split()[:1] == [job]]
    assert "+33130124001" in queued  # INTEL's fax number in the sample ledger

    # Asked again, the job still waits for a modem: nothing changes.
    assert "nothing to send: 1 already sent or queued" in cli(
        "send --customer INT01 --as-of 22/11/2024").stdout
    assert [state for _, state, _ in outbox_rows(database_url)] == ["awaiting"]

    subprocess.run(["faxrm", "-h", hylafax_server.host, job], check=True, capture_output=True)
    out = cli("send --customer INT01 --as-of 22/11/2024").stdout
    assert "1 sent (1 by archive)" in out
    assert [state for _, state, _ in outbox_rows(database_url)] == ["sent"]
    history = cli("history COD_F1026").stdout
    assert (f"Échec Relance niveau 1 (Fax) : fax job {job} failed: Job aborted by request "
            "— envoi par archive") in history
    assert "Relance niveau 1 (Archive)" in history


def test_reprint_sends_the_kept_document_and_stamps_nothing(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> None:
    cli = make_cli(tmp_path, database_url, channels(["email"], email=smtp_server.channel_options()))
    cli("escalate --customer INT01 --as-of 22/11/2024")
    cli("send --customer INT01 --as-of 22/11/2024")
    (first,) = smtp_server.handler.messages
    original = next(first.message.iter_attachments()).get_content()
    out = cli("reprint COD_F1026 --channel archive").stdout
    path = Path(out.split("(")[-1].rstrip(")\n"))
    assert path.read_bytes() == original
    history = cli("history COD_F1026").stdout
    assert "Réimpression relance niveau 1 (Archive)" in history
    assert listed(cli, "INT01")["last_reminded_on"] == "2024-11-22"
    assert listed(cli, "INT01")["level"] == 1


def test_missing_invoice_copy_is_named_and_the_others_go_on(
        tmp_path: Path, database_url: str) -> None:
    cli = make_cli(tmp_path, database_url, channels(["archive"]))
    cli("escalate --days 0 --as-of 22/11/2024")  # both to level 1
    # Make COD_F1026 a level-3 letter, which asks for the invoice copy.
    path = tmp_path / "lvl3.tsv"
    path.write_text((SAMPLE / "seed.tsv").read_text(encoding="utf-8").replace(
        "19/11/2024\t(i)\t\t", "19/11/2024\t(i)\t\t3"), encoding="utf-8")
    cli(["import", "invoices", str(path)])
    result = cli("send --as-of 22/11/2024", ok=False)
    assert result.exit_code == 1
    assert "1 sent (1 by archive), 1 failed" in result.stdout
    assert "invoice COD_F1026: the copy to attach is missing" in result.stderr
    assert "abandonnée" in cli("history COD_F1026").stdout
    assert "Relance niveau 1 (Archive)" in cli("history COD_F1023").stdout


def test_paid_invoice_leaves_the_queue(tmp_path: Path, database_url: str) -> None:
    cli = make_cli(tmp_path, database_url, channels(["archive"]))
    cli("escalate --as-of 22/11/2024")
    cli("pay COD_F1023 --on 2024-11-21")
    out = cli("send --as-of 22/11/2024").stdout
    assert "1 sent (1 by archive)" in out
    assert "Relance niveau 1" not in cli("history COD_F1023").stdout


def test_dry_run_sends_nothing(tmp_path: Path, database_url: str) -> None:
    cli = make_cli(tmp_path, database_url, channels(["archive"]))
    cli("escalate --as-of 22/11/2024")
    out = cli("send --dry-run --as-of 22/11/2024").stdout
    assert "DAN01: letter level 1 for COD_F1023 by archive" in out
    assert "dry run: 2 reminders would be sent" in out
    assert not (tmp_path / "letters").exists()
    assert "2 sent" in cli("send --as-of 22/11/2024").stdout


@pytest.mark.parametrize("args", ["send --invoice NOPE", "send --customer NOPE",
                                  "send --channel pigeon", "reprint COD_F1026"])
def test_bad_requests_are_one_line(tmp_path: Path, database_url: str, args: str) -> None:
    cli = make_cli(tmp_path, database_url, channels(["archive"]))
    result = cli(args, ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("relances: error: ")


def test_reprint_never_takes_another_invoice_whose_number_looks_alike(
        tmp_path: Path, database_url: str) -> None:
    cli = make_cli(tmp_path, database_url, channels(["archive"]))
    path = tmp_path / "alike.tsv"
    path.write_text(
        "Code\tNom\tDate Fac.\tN° Fac.\tTotal Fac.\tReste\tEchéance\tN\n"
        "AAA\tAAA SARL\t01/01/2024\tF1\t10,00\t10,00\t31/01/2024\t1\n"
        "BBB\tBBB SARL\t01/01/2024\tF10\t20,00\t20,00\t31/01/2024\t1\n", encoding="utf-8")
    cli(["import", "invoices", str(path)])
    cli("send --invoice F1 --as-of 22/11/2024")
    cli("send --invoice F10 --as-of 22/11/2024")
    out = cli("reprint F1").stdout
    assert "_AAA_F1_relance-1.pdf" in out and "BBB" not in out


def test_below_the_policy_minimum_nothing_is_sent(tmp_path: Path, database_url: str) -> None:
    overrides = channels(["archive"])
    overrides["policies.default.minimum_amount"] = "300.00"
    cli = make_cli(tmp_path, database_url, overrides)
    cli("set-level COD_F1023 1")  # 253,06 €: below the minimum
    cli("set-level COD_F1026 1")  # 680,40 €
    out = cli("send --dry-run --as-of 22/11/2024").stdout
    assert "COD_F1026" in out and "COD_F1023" not in out
    cli("send --as-of 22/11/2024")
    cli("pay COD_F1026 400 --on 22/11/2024")  # 280,40 € left
    cli("set-level COD_F1026 2")
    assert "nothing to send" in cli("send --as-of 23/11/2024").stdout


def test_check_config_names_the_customers_no_channel_of_a_level_reaches(
        seeded: Cli, settings_path: Path, database_url: str, tsv: Callable[..., Path]) -> None:
    write_settings(settings_path, {
        "database.url": database_url,
        "channels.print": {"printer": "relances-pdf"},
        "policies.default.levels.1.channels": ["print"],
        "policies.default.levels.2.channels": ["print", "archive"]})
    # A customer known from an export alone: no postal address.
    seeded(["import", "invoices", str(tsv(
        "NOADR\t\tSANS ADRESSE\t\t01/01/2024\tF-NOADR\t\t\t10,00\t10,00\t31/01/2024\t\t\t\t\t\t"))])
    err = seeded("check-config").stderr
    assert ("warning: NOADR : aucun canal du niveau 1 (print) ne peut l'atteindre (adresse "
            "postale, email ou fax manquant)") in err
    assert "niveau 2" not in err  # the archive reaches anyone
    assert "DAN01" not in err and "INT01" not in err  # the sample customers have addresses
