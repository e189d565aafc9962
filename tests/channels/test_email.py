"""The email channel against a real SMTP server (aiosmtpd with STARTTLS and AUTH)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from servers import (
    SMTP_USER,
    SmtpServer,
    free_port,
    make_delivery,
    make_pdf,
    pdf_text,
    smtp_server,
    smtps_server,
    tls_files,
)

from relances.plugins import (
    Attachment,
    Channel,
    ChannelConfigError,
    ChannelSettings,
    DeliveryError,
    Receipt,
    Recipient,
    build_channel,
    get_plugin_manager,
)

__all__ = ["smtp_server", "smtps_server", "tls_files"]  # fixtures used by name


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The channel's journal goes to its data_dir ("data", relative): here, not the checkout."""
    monkeypatch.chdir(tmp_path)
    yield


def email_channel(**options: Any) -> Channel:
    return build_channel(get_plugin_manager(load_entrypoints=False), "email",
                         ChannelSettings("email", options))


async def test_a_message_the_server_accepted_is_found_after_a_crash(
        smtp_server: SmtpServer, tmp_path: Path) -> None:
    """Written down when the server said 250: a fresh channel (the daemon restarted)
    knows the message left, so the reminder is not sent a second time."""
    delivery = make_delivery(key="letter:JOURNAL01:1:email")
    receipt = await email_channel(**smtp_server.channel_options()).send(delivery)
    journal = (tmp_path / "data" / "email-accepted.tsv").read_text()
    assert journal.startswith(f"{receipt.reference}\tletter:JOURNAL01:1:email\t")

    restarted = email_channel(**smtp_server.channel_options())
    found = await restarted.find(delivery)
    assert found is not None and (found.reference, found.confirmed) == (receipt.reference, True)
    assert await restarted.find(make_delivery(key="letter:JOURNAL01:2:email")) is None
    assert await restarted.find(dataclasses.replace(delivery, reprint=True)) is None
    assert len(smtp_server.handler.messages) == 1


async def test_a_refused_message_is_not_written_down(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies.append("451 4.3.0 try again later")
    channel = email_channel(**smtp_server.channel_options())
    delivery = make_delivery(key="letter:JOURNAL02:1:email")
    with pytest.raises(DeliveryError):
        await channel.send(delivery)
    assert await email_channel(**smtp_server.channel_options()).find(delivery) is None


def attachments(message: EmailMessage) -> list[tuple[str, bytes]]:
    return [(part.get_filename() or "", part.get_content()) for part in message.iter_attachments()]


async def test_letter_arrives_over_starttls_with_auth(smtp_server: SmtpServer) -> None:
    channel = email_channel(**smtp_server.channel_options(reply_to="compta@entreprise.example"))
    receipt = await channel.send(make_delivery())

    [received] = smtp_server.handler.messages
    message = received.message
    assert received.login == SMTP_USER
    assert received.mail_from == "relances@entreprise.example"
    assert received.rcpt_tos == ["compta@intel.example"]
    assert message["Subject"] == "Relance : facture COD_F1026"
    assert str(message["To"]) == "INTEL <compta@intel.example>"
    assert str(message["From"]) == "Service comptable <relances@entreprise.example>"
    assert str(message["Reply-To"]) == "compta@entreprise.example"
    assert receipt.channel == "email"
    assert receipt.reference == message["Message-ID"]
    assert receipt.reference.endswith("@entreprise.example>")
    body = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert body is not None and "ci-joint notre relance" in body.get_content()
    assert html is not None and "<p>Madame, Monsieur,</p>" in html.get_content()
    [(filename, content)] = attachments(message)
    assert filename == "relance-COD_F1026.pdf"
    assert "Facture COD_F1026 : reste 253,06 €" in pdf_text(content)


async def test_batch_reuses_one_connection_and_resend_keeps_message_id(
    smtp_server: SmtpServer,
) -> None:
    channel = email_channel(**smtp_server.channel_options())
    delivery = make_delivery()
    async with channel:
        first = await channel.send(delivery)
        other = await channel.send(make_delivery(key="letter:COD_F2000:1"))
    again = await channel.send(delivery)

    one, two, three = smtp_server.handler.messages
    assert one.session == two.session, "a batch must reuse its connection"
    assert three.session != one.session
    assert first.reference == again.reference == one.message["Message-ID"]
    assert other.reference != first.reference


async def test_reprint_is_a_new_message_pointing_at_the_original(
    smtp_server: SmtpServer,
) -> None:
    channel = email_channel(**smtp_server.channel_options())
    original = await channel.send(make_delivery())
    reprint = await channel.send(make_delivery(reprint=True))

    first, copy = (m.message for m in smtp_server.handler.messages)
    assert reprint.reference == copy["Message-ID"] != original.reference
    assert first["Message-ID"] == original.reference
    # The mail client threads the copy under the original by these two headers.
    assert copy["In-Reply-To"] == original.reference
    assert copy["References"] == original.reference
    assert first["In-Reply-To"] is None and first["References"] is None


async def test_letter_and_invoice_copy_are_separate_attachments(
    smtp_server: SmtpServer,
) -> None:
    letter, invoice = make_pdf("Lettre de relance"), make_pdf("Facture COD_F1026 copie")
    delivery = make_delivery(attachments=(Attachment("relance.pdf", letter),
                                          Attachment("COD_F1026.pdf", invoice)))
    await email_channel(**smtp_server.channel_options()).send(delivery)

    [received] = smtp_server.handler.messages
    names = [name for name, _ in attachments(received.message)]
    texts = [pdf_text(content) for _, content in attachments(received.message)]
    assert names == ["relance.pdf", "COD_F1026.pdf"]
    assert texts == ["Lettre de relance", "Facture COD_F1026 copie"]


async def test_implicit_tls(smtps_server: SmtpServer) -> None:
    channel = email_channel(**smtps_server.channel_options())
    receipt = await channel.send(make_delivery())
    [received] = smtps_server.handler.messages
    assert received.message["Message-ID"] == receipt.reference
    assert received.login == SMTP_USER


@pytest.mark.parametrize(("reply", "retryable"), [
    ("451 4.3.0 Temporary failure, try later", True),
    ("550 5.7.1 Message rejected as spam", False),
])
async def test_data_refusal_sets_retryable_from_the_reply_class(
    smtp_server: SmtpServer, reply: str, retryable: bool,
) -> None:
    smtp_server.handler.data_replies.append(reply)
    channel = email_channel(**smtp_server.channel_options())
    async with channel:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(make_delivery())
        assert caught.value.retryable is retryable
        assert reply.split()[0] in caught.value.reason
        # The connection is still good for the rest of the batch.
        await channel.send(make_delivery())
    assert len(smtp_server.handler.messages) == 1


@pytest.mark.parametrize(("reply", "retryable"), [
    ("450 4.2.1 Mailbox busy", True),
    ("550 5.1.1 No such user", False),
])
async def test_refused_recipient(smtp_server: SmtpServer, reply: str, retryable: bool) -> None:
    smtp_server.handler.refuse_rcpt["compta@intel.example"] = reply
    with pytest.raises(DeliveryError) as caught:
        await email_channel(**smtp_server.channel_options()).send(make_delivery())
    assert caught.value.retryable is retryable
    assert "compta@intel.example" in caught.value.reason
    assert smtp_server.handler.messages == []


async def test_one_of_two_addresses_refused_still_delivers(smtp_server: SmtpServer) -> None:
    smtp_server.handler.refuse_rcpt["old@intel.example"] = "550 5.1.1 No such user"
    recipient = Recipient(code="INT01", name="INTEL",
                          email="compta@intel.example; old@intel.example")
    receipt = await email_channel(**smtp_server.channel_options()).send(
        make_delivery(recipient=recipient))
    [received] = smtp_server.handler.messages
    assert received.rcpt_tos == ["compta@intel.example"]
    assert "old@intel.example" in receipt.detail


@pytest.mark.parametrize(("reply", "retryable"), [
    ("550 5.1.1 No such user", False), ("452 4.2.2 Mailbox full", True)])
async def test_a_bcc_copy_accepted_alone_is_not_a_delivery(
        smtp_server: SmtpServer, reply: str, retryable: bool) -> None:
    smtp_server.handler.refuse_rcpt["compta@intel.example"] = reply
    channel = email_channel(**smtp_server.channel_options(bcc=["archive@acme.example"]))
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is retryable
    assert caught.value.reason == (f"refused for the customer (compta@intel.example: {reply}); "
                                   "only the copy to archive@acme.example was accepted")
    # The server did take the copy: what the customer got is what counts.
    [copy] = smtp_server.handler.messages
    assert copy.rcpt_tos == ["archive@acme.example"]


async def test_dropped_connection_is_retryable_and_the_batch_reconnects(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.handler.drop_next_data = True
    channel = email_channel(**smtp_server.channel_options())
    async with channel:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(make_delivery())
        assert caught.value.retryable is True
        receipt = await channel.send(make_delivery())
    [received] = smtp_server.handler.messages
    assert received.message["Message-ID"] == receipt.reference


async def test_server_down_is_retryable() -> None:
    channel = email_channel(host="127.0.0.1", port=free_port(), security="none",
                            from_address="relances@entreprise.example", timeout=5)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery())
    assert caught.value.retryable is True


async def test_wrong_password_is_permanent(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError) as caught:
        await email_channel(**smtp_server.channel_options()).send(make_delivery())
    assert caught.value.retryable is False
    assert "535" in caught.value.reason


# A failed TLS handshake is closed inside aiosmtplib's connect(); the socket
# goes in a loop callback that the channel waits for, but this test's loop
# ends right after, and on a loaded machine the callback can still be pending
# then: the ResourceWarning would come from the test's loop ending, not from
# the channel, which a long-running daemon never ends.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_untrusted_certificate_is_permanent(smtp_server: SmtpServer) -> None:
    options = smtp_server.channel_options()
    del options["ca_file"]
    with pytest.raises(DeliveryError) as caught:
        await email_channel(**options).send(make_delivery())
    assert caught.value.retryable is False
    assert "TLS" in caught.value.reason


async def test_header_injection_through_the_customer_is_impossible(
    smtp_server: SmtpServer,
) -> None:
    channel = email_channel(**smtp_server.channel_options())
    evil_name = Recipient(code="INT01", name="INTEL\r\nBcc: victim@attacker.example",
                          email="compta@intel.example")
    await channel.send(make_delivery(recipient=evil_name,
                                     subject="Relance\r\nBcc: other@attacker.example"))
    [received] = smtp_server.handler.messages
    assert received.rcpt_tos == ["compta@intel.example"]
    assert received.message["Bcc"] is None
    assert "\n" not in str(received.message["To"])
    assert "\n" not in str(received.message["Subject"])

    evil_address = Recipient(code="INT01", name="INTEL",
                             email="compta@intel.example\r\nBcc: victim@attacker.example")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery(recipient=evil_address))
    assert caught.value.retryable is False
    assert len(smtp_server.handler.messages) == 1


def test_can_reach_needs_an_address() -> None:
    """A customer without one is skipped; one with a broken one is refused by
    send(), with the reason (below), rather than skipped without a word."""
    channel = email_channel(from_address="relances@entreprise.example")
    assert channel.can_reach(Recipient("A", "A", email="a@b.example"))
    assert channel.can_reach(Recipient("A", "A", email="a@b.example, c@d.example"))
    assert channel.can_reach(Recipient("A", "A", email="not an address"))
    assert not channel.can_reach(Recipient("A", "A"))
    assert not channel.can_reach(Recipient("A", "A", email=" ; , "))


@pytest.mark.parametrize("address", [
    "<victim@example.com>",                  # angle brackets: HeaderParseError
    "@evil.example:victim@example.com",      # a source route: HeaderParseError
    "compta@intel@example.com",              # two @: HeaderParseError
    "INTEL <compta@intel.example>",
    "compta@intel.example\x00",
    "compta\x00@intel.example",
    "compta@intel.example\r\nBcc: victim@example.com",
    "compta@intel\u202e.example",            # a bidi override in the domain
    "compta@intel.example; <victim@example.com>",
    "not an address",
    "a@",
])
async def test_an_invalid_address_is_a_permanent_failure_naming_it(
        smtp_server: SmtpServer, address: str) -> None:
    channel = email_channel(**smtp_server.channel_options())
    recipient = Recipient(code="INT01", name="INTEL", email=address)
    assert channel.can_reach(recipient)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_delivery(recipient=recipient))
    assert caught.value.retryable is False
    assert caught.value.reason.startswith("customer INT01: invalid email address: ")
    assert "is not an email address" in caught.value.reason \
        or "contains a" in caught.value.reason
    assert smtp_server.handler.messages == []


def test_configuration_errors_name_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def key_of(**options: Any) -> str:
        with pytest.raises(ChannelConfigError) as caught:
            email_channel(**options)
        return caught.value.key

    sender = {"from_address": "relances@entreprise.example"}
    assert key_of() == "from_address"
    assert key_of(from_address="nobody") == "from_address"
    assert key_of(**sender, security="ssl") == "security"
    assert key_of(**sender, hostname="smtp.example") == "hostname"
    monkeypatch.delenv("RELANCES_NO_SUCH_VARIABLE", raising=False)
    assert key_of(**sender, username="u", password_env="RELANCES_NO_SUCH_VARIABLE") \
        == "password_env"
    assert key_of(**sender, username="u") == "password_env"
    assert key_of(**sender, ca_file="/nonexistent/ca.pem") == "ca_file"

    with caplog.at_level(logging.WARNING):
        email_channel(**sender, username="u", password="inline")
    assert "password_env" in caplog.text


async def test_forgetting_says_the_bcc_copies_stay_in_their_mailbox(smtp_server: SmtpServer) -> None:
    receipt = Receipt("email", "<abc.relances@entreprise.example>")
    assert await email_channel(**smtp_server.channel_options()).forget(receipt) is None
    with_copy = email_channel(**smtp_server.channel_options(bcc="archive@entreprise.example"))
    assert await with_copy.forget(receipt) == (
        "email <abc.relances@entreprise.example>: its copy to archive@entreprise.example "
        "stays in that mailbox")
