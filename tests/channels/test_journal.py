"""The email channels' journal of accepted messages, as two processes share it."""

from __future__ import annotations

from pathlib import Path

import pytest

from relances.channels import _journal
from relances.channels._journal import AcceptedJournal


def test_what_one_writer_records_another_reader_finds(tmp_path: Path) -> None:
    path = tmp_path / "data" / "email-accepted.tsv"
    daemon, send = AcceptedJournal(path), AcceptedJournal(path)
    assert not send.holds("<a@x>")
    daemon.record("<a@x>", "letter:F1:1:email")
    assert send.holds("<a@x>")  # read from the file: send's process never wrote it
    daemon.record("<b@x>", "letter:F2:1:email")
    assert send.holds("<b@x>") and not send.holds("<c@x>")
    assert path.read_text().splitlines()[1].startswith("<b@x>\tletter:F2:1:email\t")


def test_a_line_half_written_is_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "accepted.tsv"
    path.write_bytes(b"<a@x>\tletter:F1:1:email\t2026-12-03T10:00:00Z\n<b@")
    reader = AcceptedJournal(path)
    assert reader.holds("<a@x>") and not reader.holds("<b@")
    with path.open("ab") as handle:
        handle.write(b"x>\tletter:F2:1:email\t2026-12-03T10:00:01Z\n")
    assert reader.holds("<b@x>")


def test_the_journal_rotates_and_still_knows_the_last_messages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_journal, "ROTATE_BYTES", 200)
    path = tmp_path / "accepted.tsv"
    writer, reader = AcceptedJournal(path), AcceptedJournal(path)
    ids = [f"<{n:04d}@relances.example>" for n in range(12)]
    for n, message_id in enumerate(ids[:6]):
        writer.record(message_id, f"letter:F{n}:1:email")
    assert reader.holds(ids[0])
    for n, message_id in enumerate(ids[6:], start=6):
        writer.record(message_id, f"letter:F{n}:1:email")
    assert path.with_name("accepted.tsv.1").exists()
    assert all(AcceptedJournal(path).holds(message_id) for message_id in ids[-4:])
    assert all(reader.holds(message_id) for message_id in ids[-4:])


def test_a_journal_that_cannot_be_written_does_not_stop_the_send(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    journal = AcceptedJournal(tmp_path / "data" / "accepted.tsv")
    journal.record("<a@x>", "letter:F1:1:email")  # logged, not raised
    assert journal.holds("<a@x>")
