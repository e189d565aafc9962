"""What a message read from a mailbox is: the classifier alone, on real and hostile mail.

The end-to-end path (Dovecot, real DSNs, the stamp undone) is in
``test_bounces.py``; here each kind of message, and messages written to
break a parser, without a server.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from mail_server import postfix_dsn

from relances.channels.smtp import message_id_for
from relances.daemon.dispatch.bounces import Failure, all_refused, classify, described

OURS = message_id_for("k" * 20, "entreprise.example")
ORIGINAL = (f"Message-ID: {OURS}\r\nFrom: relances@entreprise.example\r\n"
            "To: compta@client.example\r\nSubject: Relance facture F-1\r\n\r\nBonjour\r\n").encode()


def _mail(**headers: str) -> bytes:
    message = EmailMessage()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Bonjour,\n")
    return message.as_bytes()


def test_a_postfix_dsn_is_a_bounce_of_our_message_in_french() -> None:
    found = classify(postfix_dsn(ORIGINAL, sender="relances@entreprise.example",
                                 recipient="Compta@Client.example"))
    assert found.kind == "bounce"
    assert found.refers_to == (OURS,)
    assert [(f.address, f.status) for f in found.failures] == [("compta@client.example", "5.1.1")]
    assert described(found.failures) == "550 5.1.1 utilisateur inconnu"


def test_a_delay_notice_is_not_a_bounce() -> None:
    found = classify(postfix_dsn(ORIGINAL, sender="relances@entreprise.example",
                                 recipient="compta@client.example", status="4.4.1",
                                 action="delayed"))
    assert found.kind == "delayed"
    assert described(found.failures) == "450 4.4.1 serveur du destinataire injoignable"


def test_an_old_style_bounce_is_read_by_flufl_bounce() -> None:
    # qmail's format: no report part, the failed address and the quoted message in the text.
    raw = (b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.client.example\r\n"
           b"To: relances@entreprise.example\r\nSubject: failure notice\r\n\r\n"
           b"Hi. This is the qmail-send program at mx.client.example.\r\n"
           b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
           b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
           b"<compta@client.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n\r\n") + ORIGINAL
    found = classify(raw)
    assert found.kind == "bounce"
    assert found.refers_to == (OURS,)
    assert [f.address for f in found.failures] == ["compta@client.example"]


def test_an_out_of_office_and_a_reply_name_the_reminder_they_answer() -> None:
    auto = classify(_mail(From="compta@client.example", Subject="Absence du bureau",
                          In_Reply_To=OURS, Auto_Submitted="auto-replied"))
    assert (auto.kind, auto.refers_to) == ("auto-reply", (OURS,))
    reply = classify(_mail(From="compta@client.example", Subject="Re: Relance facture F-1",
                           In_Reply_To=OURS, References=f"<other@x.example> {OURS}"))
    assert (reply.kind, reply.refers_to, reply.subject) == ("reply", (OURS,), "Re: Relance facture F-1")


def test_a_message_about_nothing_of_ours_is_other() -> None:
    found = classify(_mail(From="promo@shop.example", Subject="Soldes",
                           In_Reply_To="<abc@shop.example>"))
    assert (found.kind, found.refers_to) == ("other", ())


HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)) * 40,
    "no body separator": b"Subject: " + b"x" * 100_000,
    "broken encoded words": b"Subject: =?utf-8?q?=FF=FE?= =?bogus?b?####?=\r\nFrom: =?x?q??=\r\n\r\n",
    "report without boundary": (b"Content-Type: multipart/report; report-type=delivery-status\r\n"
                                b"From: MAILER-DAEMON@x\r\n\r\nno parts at all\r\n"),
    "delivery-status that is text": (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nnot: headers\r\n\r\n"
        b"Action: failed\r\n--b--\r\n"),
    "nested ten thousand deep": (
        b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                 for i in range(10_000))),
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_message_is_classified_not_raised(raw: bytes) -> None:
    found = classify(raw)
    assert found.kind in ("other", "bounce", "delayed", "auto-reply", "reply")
    assert found.refers_to == ()  # nothing of ours is named, so nothing can be undone


@pytest.mark.parametrize(("action", "status", "kind"), [
    ("failed", "4.4.7", "bounce"),  # Postfix gave up on a message that waited too long
    ("delayed", "5.1.1", "delayed"),  # still trying: whatever the status says
    ("delayed", "4.2.2; 5.1.1", "delayed"),
])
def test_the_action_decides_whether_the_delivery_failed(action: str, status: str, kind: str) -> None:
    raw = postfix_dsn(ORIGINAL, sender="relances@entreprise.example",
                      recipient="compta@client.example", status=status, action=action)
    assert classify(raw).kind == kind


def test_a_bounce_of_a_reprint_is_not_taken_for_the_original() -> None:
    reprint = message_id_for("k" * 20, "entreprise.example", reprint=True)
    quoted = (f"Message-ID: {reprint}\r\nIn-Reply-To: {OURS}\r\nReferences: {OURS}\r\n"
              "To: compta@client.example\r\nSubject: Relance facture F-1\r\n\r\n").encode()
    found = classify(postfix_dsn(quoted, sender="relances@entreprise.example",
                                 recipient="compta@client.example"))
    assert (found.kind, found.refers_to) == ("bounce", (reprint,))


@pytest.mark.parametrize(("customer", "refused", "undone"), [
    ("compta@client.example", ["compta@client.example"], True),
    ("Compta@Client.example", ["compta@client.example"], True),  # addresses are compared lowered
    ("compta@client.example", ["archive@entreprise.example"], False),  # only the Bcc copy
    ("compta@client.example; dg@client.example", ["compta@client.example"], False),
    ("compta@client.example, dg@client.example",
     ["compta@client.example", "dg@client.example"], True),
    (None, ["compta@client.example"], False),
])
def test_only_a_bounce_of_every_address_of_the_customer_undoes_the_email(
        customer: str | None, refused: list[str], undone: bool) -> None:
    failures = tuple(Failure(address, "5.1.1") for address in refused)
    assert all_refused(failures, customer) is undone
