"""The print channel against a real cupsd with the cups-pdf virtual printer."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest
from servers import CupsServer, cups_server, free_port, make_delivery, pdf_text

from relances.plugins import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    DeliveryError,
    Receipt,
    Recipient,
    build_channel,
    get_plugin_manager,
)

__all__ = ["cups_server"]  # fixture used by name


def print_channel(**options: Any) -> Channel:
    return build_channel(get_plugin_manager(load_entrypoints=False), "print",
                         ChannelSettings("print", options))


async def test_letter_lands_as_a_pdf(cups_server: CupsServer) -> None:
    channel = print_channel(printer=cups_server.printer, server=cups_server.server,
                            sides="two-sided-long-edge", options={"print-quality": "4"})
    before = cups_server.idle_pdfs()
    receipt = await channel.send(make_delivery())

    assert receipt.channel == "print"
    assert receipt.reference.startswith(f"{cups_server.printer}-")
    assert receipt.confirmed is False  # lp queued it; CUPS has not printed it yet
    assert channel.label == "Courrier"
    printed = cups_server.wait_for_pdf(before)
    assert "Facture COD_F1026 : reste 253,06 €" in pdf_text(printed.read_bytes())
    done = await confirmed(channel, receipt)
    assert (done.reference, done.confirmed) == (receipt.reference, True)
    assert done.detail.startswith(f"printer {cups_server.printer}")


async def confirmed(channel: Channel, receipt: Receipt, timeout: float = 60) -> Receipt:
    """Ask the channel until it confirms the job (cups-pdf takes a moment)."""
    deadline = time.monotonic() + timeout
    while (answer := await channel.confirm(receipt)) is None:
        assert time.monotonic() < deadline, f"{receipt.reference} not confirmed in {timeout:g} s"
        await asyncio.sleep(0.3)
    return answer


def _cups(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


async def test_a_held_job_is_not_confirmed_and_a_cancelled_one_is_a_refusal(
        cups_server: CupsServer) -> None:
    """A job waiting in CUPS (held here, as on a printer stopped after lp took it) is
    not confirmed; once an operator cancels it, the channel says so, for good."""
    channel = print_channel(printer=cups_server.printer, server=cups_server.server,
                            options={"job-hold-until": "indefinite"})
    delivery = make_delivery(key="letter:HELD01:1:print,email")
    receipt = await channel.send(delivery)
    for _ in range(3):
        assert await channel.confirm(receipt) is None
    assert await channel.find(delivery) == Receipt("print", receipt.reference,
                                                   f"printer {cups_server.printer}",
                                                   confirmed=False)
    _cups("cancel", "-h", cups_server.server, receipt.reference)
    with pytest.raises(DeliveryError) as caught:
        await channel.confirm(receipt)
    assert caught.value.retryable is False
    assert caught.value.reason.startswith(f"print job {receipt.reference} was cancelled in CUPS")
    assert await channel.find(delivery) is None  # a cancelled job is not a letter that left


async def test_find_knows_the_reminders_own_job_only(cups_server: CupsServer) -> None:
    channel = print_channel(printer=cups_server.printer, server=cups_server.server)
    delivery = make_delivery(key="letter:FIND01:2:print")
    assert await channel.find(delivery) is None
    receipt = await channel.send(delivery)
    await confirmed(channel, receipt)
    found = await channel.find(delivery)
    assert found is not None and (found.reference, found.confirmed) == (receipt.reference, True)
    assert await channel.find(make_delivery(key="letter:FIND01:3:print")) is None


async def test_without_confirmation_lp_is_enough(cups_server: CupsServer) -> None:
    channel = print_channel(printer=cups_server.printer, server=cups_server.server,
                            confirm=False)
    receipt = await channel.send(make_delivery(key="letter:NOCONF:1:print"))
    assert receipt.confirmed is True
    assert await channel.find(make_delivery(key="letter:NOCONF:1:print")) is None


def test_confirming_needs_ipptool() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        print_channel(printer="Bureau", ipptool_command="no-such-ipptool")
    assert caught.value.key == "confirm"
    assert "cups-ipp-utils" in caught.value.message
    print_channel(printer="Bureau", ipptool_command="no-such-ipptool", confirm=False)


async def test_each_job_gets_its_own_id(cups_server: CupsServer) -> None:
    channel = print_channel(printer=cups_server.printer, server=cups_server.server)
    async with channel:
        first = await channel.send(make_delivery())
        second = await channel.send(make_delivery(key="letter:COD_F2000:1"))
    assert first.reference != second.reference


@pytest.mark.parametrize("address, postal_code, city", [
    ((), None, None),  # nothing at all
    (("78280 Guyancourt",), "78280", "Guyancourt"),  # a city, no street
    (("2 avenue de Paris", "France"), None, None),  # a street, no city
    (("78280 Guyancourt", "France"), "78280", "Guyancourt"),  # the country is no street
])
async def test_no_letter_without_a_postal_address(cups_server: CupsServer,
                                                  address: tuple[str, ...], postal_code: str | None,
                                                  city: str | None) -> None:
    channel = print_channel(printer=cups_server.printer, server=cups_server.server)
    recipient = Recipient(code="INT01", name="INTEL", address=address, postal_code=postal_code,
                          city=city)
    assert not channel.can_reach(recipient)  # the dispatcher goes to the level's next channel
    before = cups_server.idle_pdfs()
    with pytest.raises(DeliveryError) as refused:
        await channel.send(make_delivery(recipient=recipient))
    assert not refused.value.retryable
    assert "INT01 has no postal address" in str(refused.value)
    assert cups_server.pdfs() == before  # nothing went to the printer


def test_a_street_above_a_city_is_a_postal_address() -> None:
    channel = print_channel(printer="relances-pdf")
    assert channel.can_reach(Recipient(
        code="INT01", name="INTEL", address=("Bâtiment B", "ZA des Portes", "78280 Guyancourt",
                                             "France"), postal_code="78280", city="Guyancourt"))
    assert channel.can_reach(Recipient(code="X", name="X", address=("BP 12", "Lyon"), city="Lyon"))


def test_lp_gets_an_argument_list_with_the_options() -> None:
    channel = print_channel(printer="Bureau", server="cups.example:631", copies=2,
                            sides="two-sided-long-edge", options={"InputSlot": "Tray2"})
    assert isinstance(channel, Channel)
    argv = channel.lp_argv(make_delivery())  # type: ignore[attr-defined]
    assert argv == ["lp", "-h", "cups.example:631", "-d", "Bureau", "-n", "2",
                    "-t", "letter:COD_F1026:1", "-o", "media=A4",
                    "-o", "sides=two-sided-long-edge", "-o", "InputSlot=Tray2"]


async def test_stopped_printer_is_a_clear_retryable_error(cups_server: CupsServer) -> None:
    channel = print_channel(printer=cups_server.stopped_printer, server=cups_server.server)
    before = cups_server.idle_pdfs()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is True
    assert f"printer {cups_server.stopped_printer} is stopped" in caught.value.reason
    assert "paper jam" in caught.value.reason
    assert f"cupsenable {cups_server.stopped_printer}" in caught.value.reason
    assert cups_server.pdfs() == before


async def test_unknown_queue_is_permanent(cups_server: CupsServer) -> None:
    channel = print_channel(printer="NoSuchQueue", server=cups_server.server)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is False
    assert "unknown printer 'NoSuchQueue'" in caught.value.reason


async def test_cups_not_running_is_retryable() -> None:
    channel = print_channel(printer="RelancesPDF", server=f"127.0.0.1:{free_port()}",
                            timeout=20)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is True
    assert "CUPS is not running" in caught.value.reason


def test_configuration_errors_name_the_key() -> None:
    def key_of(**options: Any) -> str:
        with pytest.raises(ChannelConfigError) as caught:
            print_channel(**options)
        return caught.value.key

    assert key_of() == "printer"
    assert key_of(printer="-dOther") == "printer"
    assert key_of(printer="PDF", copies=0) == "copies"
    assert key_of(printer="PDF", sides="both") == "sides"
    assert key_of(printer="PDF", options={"bad name": "x"}) == "options.bad name"


@pytest.mark.parametrize("options, key, message", [
    ({"timeout": float("nan")}, "timeout", "must be a finite number"),
    ({"timeout": float("inf")}, "timeout", "must be a finite number"),
    ({"timeout": 10**9}, "timeout", "must be at most 3600"),
    ({"copies": 10**12}, "copies", "must be at most 65535"),
])
def test_numbers_are_finite_and_bounded(options: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ChannelConfigError) as caught:
        print_channel(printer="PDF", **options)
    assert caught.value.key == key and message in caught.value.message
