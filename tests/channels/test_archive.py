"""The archive channel: PDFs written into a folder, found by name."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import unavailable
from servers import make_delivery, make_pdf, pdf_text

from relances.plugins import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    DeliveryError,
    Receipt,
    build_channel,
    get_plugin_manager,
)


def archive_channel(tmp_path: Path, **options: Any) -> Channel:
    settings = ChannelSettings("archive", options, config_dir=tmp_path, data_dir=Path("data"))
    return build_channel(get_plugin_manager(load_entrypoints=False), "archive", settings)


def today() -> str:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()


async def test_works_with_no_options(tmp_path: Path) -> None:
    channel = archive_channel(tmp_path)
    receipt = await channel.send(make_delivery())

    path = tmp_path / "data" / "letters" / f"{today()}_INT01_COD_F1026_relance-1.pdf"
    assert receipt.reference == str(path)
    assert receipt.channel == "archive" and channel.label == "Archive"
    assert "Facture COD_F1026 : reste 253,06 €" in pdf_text(path.read_bytes())
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left"


async def test_statement_name_and_configured_folder(tmp_path: Path) -> None:
    channel = archive_channel(tmp_path, folder="archives/relances")
    delivery = make_delivery(kind="statement", level=2, key="statement:INT01:2",
                             invoice_numbers=("COD_F1026", "COD_F2000"))
    receipt = await channel.send(delivery)
    assert receipt.reference == str(
        tmp_path / "archives" / "relances" / f"{today()}_INT01_releve-2.pdf")


async def test_same_document_twice_is_one_file(tmp_path: Path) -> None:
    channel = archive_channel(tmp_path)
    first = await channel.send(make_delivery())
    second = await channel.send(make_delivery())
    assert first.reference == second.reference
    assert len(list(Path(first.reference).parent.iterdir())) == 1


async def test_a_different_document_never_overwrites(tmp_path: Path) -> None:
    channel = archive_channel(tmp_path)
    first = await channel.send(make_delivery())
    other_pdf = make_pdf("INTEL", "Relance niveau 1, nouvelle version")
    second = await channel.send(make_delivery(pdf=other_pdf))

    assert second.reference != first.reference
    assert second.reference.endswith("_relance-1_2.pdf")
    assert "nouvelle version" not in pdf_text(Path(first.reference).read_bytes())
    assert Path(second.reference).read_bytes() == other_pdf


async def test_unsafe_characters_in_codes_stay_in_the_folder(tmp_path: Path) -> None:
    from relances.plugins import Recipient

    delivery = make_delivery(recipient=Recipient(code="../../etc", name="X"),
                             invoice_numbers=("F/1 2",))
    receipt = await archive_channel(tmp_path).send(delivery)
    path = Path(receipt.reference)
    assert path.parent == tmp_path / "data" / "letters"
    assert path.name == f"{today()}_etc_F-1-2_relance-1.pdf"


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, to run out of space for real."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


async def test_full_disk_is_retryable_and_leaves_nothing(small_tmpfs: Path,
                                                         tmp_path: Path) -> None:
    channel = archive_channel(tmp_path, folder=str(small_tmpfs))
    big = b"%PDF-1.7\n" + b"0" * 200_000
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery(pdf=big))
    assert caught.value.retryable is True
    assert "No space left" in caught.value.reason
    assert list(small_tmpfs.iterdir()) == []


async def test_read_only_folder_is_permanent(small_tmpfs: Path, tmp_path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    channel = archive_channel(tmp_path, folder=str(small_tmpfs))
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is False
    assert str(small_tmpfs) in caught.value.reason


async def test_folder_that_is_a_file_is_permanent(tmp_path: Path) -> None:
    (tmp_path / "letters").write_text("not a folder")
    channel = archive_channel(tmp_path, folder="letters")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is False


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ChannelConfigError) as caught:
        archive_channel(tmp_path, timezone="Mars/Olympus")
    assert caught.value.key == "timezone"
    with pytest.raises(ChannelConfigError) as caught:
        archive_channel(tmp_path, path="letters")
    assert caught.value.key == "path"


async def test_archived_letters_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        channel = archive_channel(tmp_path, folder="letters")
        receipt = await channel.send(make_delivery())
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path(receipt.reference).stat().st_mode) == 0o640


@pytest.fixture
async def letters(tmp_path: Path) -> AsyncIterator[Path]:
    """The default letters folder.  At the end any reader left waiting on a FIFO
    in it is let go (opening the write end wakes it), so that a send stuck there
    fails the test when its timeout strikes instead of hanging the run: async, so
    this runs before the event loop waits for its worker threads."""
    folder = tmp_path / "data" / "letters"
    folder.mkdir(parents=True)
    yield folder
    for path in folder.iterdir():
        if stat.S_ISFIFO(path.lstat().st_mode):
            with contextlib.suppress(OSError):  # ENXIO: nobody was reading
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.timeout(20)
async def test_a_fifo_where_the_letter_goes_is_never_opened(tmp_path: Path, letters: Path) -> None:
    name = f"{today()}_INT01_COD_F1026_relance-1.pdf"
    os.mkfifo(letters / name)
    delivery = make_delivery()
    receipt = await archive_channel(tmp_path).send(delivery)

    beside = letters / f"{today()}_INT01_COD_F1026_relance-1_2.pdf"
    assert receipt.reference == str(beside)
    assert beside.read_bytes() == delivery.pdf
    assert stat.S_ISFIFO((letters / name).lstat().st_mode)
    assert sorted(p.name for p in letters.iterdir()) == sorted([name, beside.name])


async def test_a_symbolic_link_where_the_letter_goes_is_not_taken_for_it(
        tmp_path: Path, letters: Path) -> None:
    delivery = make_delivery()
    elsewhere = tmp_path / "elsewhere.pdf"
    elsewhere.write_bytes(delivery.pdf)  # the same letter, out of the folder
    link = letters / f"{today()}_INT01_COD_F1026_relance-1.pdf"
    link.symlink_to(elsewhere)
    receipt = await archive_channel(tmp_path).send(delivery)

    letter = Path(receipt.reference)
    assert letter == letters / f"{today()}_INT01_COD_F1026_relance-1_2.pdf"
    assert stat.S_ISREG(letter.lstat().st_mode) and letter.read_bytes() == delivery.pdf
    assert link.is_symlink() and elsewhere.read_bytes() == delivery.pdf


async def test_forgetting_deletes_the_letter_and_nothing_outside_the_folder(tmp_path: Path) -> None:
    channel = archive_channel(tmp_path, folder="letters")
    receipt = await channel.send(make_delivery())
    outside = tmp_path / "comptes.pdf"
    outside.write_bytes(b"%PDF-1.7 not a letter")
    link = tmp_path / "letters" / "lien.pdf"
    link.symlink_to(outside)
    assert await channel.forget(receipt) is None
    assert not Path(receipt.reference).exists()
    for hostile in (str(outside), str(link), str(tmp_path / "letters" / ".." / "comptes.pdf"),
                    str(tmp_path / "letters" / "notes.txt")):
        said = await channel.forget(Receipt("archive", hostile))
        assert said == f"{hostile}: not a letter of {tmp_path / 'letters'}, left as it is"
    assert outside.exists() and link.is_symlink()
