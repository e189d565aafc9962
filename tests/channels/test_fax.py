"""The fax channel: a real HylaFAX server (no modem, so jobs wait in the
queue) and an email-to-fax gateway played by aiosmtpd.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from servers import (
    HylafaxServer,
    SmtpServer,
    free_port,
    hylafax_server,
    make_delivery,
    pdf_text,
    smtp_server,
    tls_files,
)

from relances.channels.fax import dial_string, normalise_number
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

__all__ = ["hylafax_server", "smtp_server", "tls_files"]  # fixtures used by name

HYLAFAX_SPOOL = Path("/var/spool/hylafax")  # Debian's; the fixture's server runs here


def fax_channel(**options: Any) -> Channel:
    return build_channel(get_plugin_manager(load_entrypoints=False), "fax",
                         ChannelSettings("fax", options))


@pytest.mark.parametrize(("written", "e164"), [
    ("01 45 67 89 01", "+33145678901"),
    ("01.45.67.89.01", "+33145678901"),
    ("0145678901", "+33145678901"),
    ("+33 1 45 67 89 01", "+33145678901"),
    ("+33 (0)1 45 67 89 01", "+33145678901"),
    ("0033 1 45 67 89 01", "+33145678901"),
    ("+44 20 7946 0018", "+442079460018"),
])
def test_numbers_are_normalised(written: str, e164: str) -> None:
    assert normalise_number(written) == e164


@pytest.mark.parametrize("written", ["", "12", "01 45 67", "fax: 01 45 67 89 01", "+33 1 45;rm"])
def test_bad_numbers_are_refused(written: str) -> None:
    with pytest.raises(ValueError):
        normalise_number(written)


def test_dial_formats() -> None:
    assert dial_string("+33145678901", "e164") == "+33145678901"
    assert dial_string("+33145678901", "national") == "0145678901"
    assert dial_string("+33145678901", "national", "0") == "00145678901"
    assert dial_string("+33145678901", "international") == "0033145678901"
    assert dial_string("+33145678901", "digits") == "33145678901"


def test_can_reach_needs_a_fax_number() -> None:
    channel = fax_channel()
    assert channel.label == "Fax"
    assert channel.can_reach(Recipient("INT01", "INTEL", fax="01 45 67 89 01"))
    assert not channel.can_reach(Recipient("INT01", "INTEL"))
    assert not channel.can_reach(Recipient("INT01", "INTEL", fax="voir email"))


async def test_hylafax_queues_the_job(hylafax_server: HylafaxServer) -> None:
    channel = fax_channel(host=hylafax_server.host)
    receipt = await channel.send(make_delivery())
    hylafax_server.jobs.append(receipt.reference)

    assert receipt.channel == "fax"
    assert receipt.reference.isdigit()
    assert receipt.confirmed is False  # queued is not sent
    status = hylafax_server.status()
    [line] = [row for row in status.splitlines() if row.split()[:1] == [receipt.reference]]
    assert "+33145678901" in line
    # No modem: the job waits in the queue, and waiting is not confirmed.
    assert await channel.confirm(receipt) is None


async def test_a_fax_job_removed_from_hylafax_fails_for_good(
        hylafax_server: HylafaxServer) -> None:
    """The failed path through HylaFAX itself: faxrm kills the job, which HylaFAX
    moves to its done queue as failed, as when its dials and tries are spent."""
    channel = fax_channel(host=hylafax_server.host)
    delivery = make_delivery(key="letter:FAXRM01:2:fax,print")
    assert await channel.find(delivery) is None
    receipt = await channel.send(delivery)
    hylafax_server.jobs.append(receipt.reference)
    found = await channel.find(delivery)  # after a crash, the queued job is known
    assert found is not None and (found.reference, found.confirmed) == (receipt.reference, False)

    subprocess.run(["faxrm", "-h", hylafax_server.host, receipt.reference], check=True,
                   capture_output=True)
    with pytest.raises(DeliveryError) as caught:
        await channel.confirm(receipt)
    assert caught.value.retryable is False
    assert caught.value.reason == f"fax job {receipt.reference} failed: Job aborted by request"
    assert await channel.find(delivery) is None  # a failed job is sent again


def done_as_hylafax_writes_it(queue_file: str, pages: int) -> str:
    """A HylaFAX queue file turned into that of a job sent whole: state 7 (done),
    every page sent, no failure status; every other line as HylaFAX wrote it."""
    changed = {"state": "7", "npages": str(pages), "totpages": str(pages), "status": "",
               "statuscode": "0"}
    return "".join(f"{name}:{changed[name]}\n" if name in changed else f"{line}\n"
                   for line in queue_file.splitlines()
                   for name in [line.partition(":")[0]])


async def test_a_done_job_read_from_the_spool_is_confirmed_with_its_pages(
        hylafax_server: HylafaxServer, tmp_path: Path) -> None:
    """The done path: the test server has no modem, so no job ends done.  The job's
    queue file, as HylaFAX wrote it for a real job, is put in a spool of the test's
    own with the fields a transmitted job gets."""
    queued = fax_channel(host=hylafax_server.host)
    receipt = await queued.send(make_delivery(key="letter:DONE01:1:fax"))
    hylafax_server.jobs.append(receipt.reference)
    real = (HYLAFAX_SPOOL / "sendq" / f"q{receipt.reference}").read_text()
    fields = dict(line.split(":", 1) for line in real.splitlines() if ":" in line)
    assert (fields["jobid"], fields["jobtag"]) == (receipt.reference, "letter:DONE01:1:fax")
    (tmp_path / "sendq").mkdir()
    (tmp_path / "doneq").mkdir()
    (tmp_path / "doneq" / f"q{receipt.reference}").write_text(done_as_hylafax_writes_it(real, 2))

    channel = fax_channel(host=hylafax_server.host, spool=str(tmp_path))
    done = await channel.confirm(Receipt("fax", receipt.reference, confirmed=False))
    assert done == Receipt("fax", receipt.reference, "2 page(s)", confirmed=True)
    found = await channel.find(make_delivery(key="letter:DONE01:1:fax"))
    assert found is not None and found.confirmed is True
    # Read from hfaxd instead, the same job is still waiting for a modem.
    assert await queued.confirm(receipt) is None


async def test_hylafax_refuses_a_customer_without_fax(hylafax_server: HylafaxServer) -> None:
    channel = fax_channel(host=hylafax_server.host)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery(recipient=Recipient("INT01", "INTEL")))
    assert caught.value.retryable is False


async def test_hylafax_server_down_is_retryable() -> None:
    channel = fax_channel(host=f"127.0.0.1:{free_port()}", timeout=20)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is True


def test_sendfax_gets_an_argument_list_with_the_job_tag() -> None:
    channel = fax_channel(host="fax.example", resolution="low", max_dials=3)
    argv = channel.sendfax_argv(  # type: ignore[attr-defined]
        make_delivery(), "+33145678901", Path("/tmp/x.pdf"))
    assert argv == ["sendfax", "-h", "fax.example", "-n", "-l", "-s", "a4", "-T", "3",
                    "-i", "letter:COD_F1026:1", "-d", "+33145678901", "/tmp/x.pdf"]


async def test_gateway_emails_the_pdf_to_the_number_address(smtp_server: SmtpServer) -> None:
    options = smtp_server.channel_options(backend="gateway",
                                          address_template="{number}@fax.example")
    channel = fax_channel(**options)
    async with channel:
        receipt = await channel.send(make_delivery())

    [received] = smtp_server.handler.messages
    assert received.rcpt_tos == ["33145678901@fax.example"]
    assert received.message["Message-ID"] == receipt.reference
    [part] = list(received.message.iter_attachments())
    assert "Facture COD_F1026 : reste 253,06 €" in pdf_text(part.get_content())


async def test_gateway_failure_is_reported_like_email(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies.append("554 5.7.1 Unknown fax number")
    options = smtp_server.channel_options(backend="gateway", dial_format="international",
                                          address_template="fax-{number}@fax.example")
    with pytest.raises(DeliveryError) as caught:
        await fax_channel(**options).send(make_delivery())
    assert caught.value.retryable is False
    assert smtp_server.handler.messages == []


def test_configuration_errors_name_the_key() -> None:
    def key_of(**options: Any) -> str:
        with pytest.raises(ChannelConfigError) as caught:
            fax_channel(**options)
        return caught.value.key

    assert key_of(backend="modem") == "backend"
    assert key_of(dial_format="french") == "dial_format"
    assert key_of(backend="gateway", from_address="a@b.example") == "address_template"
    assert key_of(backend="gateway", from_address="a@b.example",
                  address_template="{numero}@fax.example") == "address_template"
    assert key_of(backend="gateway", address_template="{number}@fax.example") == "from_address"
    assert key_of(address_template="{number}@fax.example") == "address_template"


@pytest.mark.parametrize("template, message", [
    ("{number:>2000000000}@fax.example", "asks for more than 200 characters"),
    ("{number:.999}@fax.example", "asks for more than 200 characters"),
    ("{number:>{number}}@fax.example", "asks for more than 200 characters"),
    ("{number.real}@fax.example", "{number.real} is not one of {number}"),
    ("{number@fax.example", "is not a pattern"),
])
def test_a_hostile_address_template_is_refused_before_it_is_used(template: str,
                                                                  message: str) -> None:
    with pytest.raises(ChannelConfigError) as caught:
        fax_channel(backend="gateway", from_address="a@b.example", address_template=template)
    assert caught.value.key == "address_template"
    assert message in caught.value.message


def test_a_padded_address_template_is_fine() -> None:
    channel = fax_channel(backend="gateway", from_address="a@b.example",
                          address_template="{number:0>12}@fax.example")
    assert channel.template == "{number:0>12}@fax.example"
