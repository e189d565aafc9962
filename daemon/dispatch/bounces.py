"""Bounces, auto-replies and replies: what comes back after an email left.

Each message of the mailboxes (:mod:`.mailboxes`) is classified once:

- **bounce**: a delivery status notification (RFC 3464) whose recipients
  failed for good (``Action: failed``, status 5.x.x), or a bounce in an
  older format that flufl.bounce reads;
- **delayed**: a notification that only says the server keeps trying;
- **auto-reply** (RFC 3834's ``Auto-Submitted``, an out-of-office);
- **reply**: a message in reply to a reminder;
- **other**: anything else, left to the people who read the mailbox.

It is tied to the reminder it answers by the Message-ID of that reminder's
email, which a bounce quotes (its ``text/rfc822-headers`` or
``message/rfc822`` part) and a reply names in ``In-Reply-To`` and
``References``; every Message-ID Relances writes has one recognisable form
(:data:`OUR_MESSAGE_ID`), which is looked for anywhere in a bounce whose
format is not the standard one.

A bounce of every address of the customer undoes the email: the invoices'
"Relancé le" goes back to what it was (``Reminder.stamp_undo``), the
history says "Email rejeté : 550 5.1.1 utilisateur inconnu", the address
is marked as bounced on the customer (email no longer reaches them until
it changes), and the reminder goes to the level's next channel.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

KINDS = ("bounce", "delayed", "auto-reply", "reply", "other")
OUR_MESSAGE_ID = re.compile(rb"<[0-9a-f]{32}(?:\.r[0-9a-f]+)?\.relances@[A-Za-z0-9.-]{1,253}>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?reply|r[ée]ponse automatique|absence|"
                           r"out of (the )?office|abwesenheit|autoreply)\b", re.IGNORECASE)
# What a person reads in the history for the usual statuses (RFC 3463).
STATUS_WORDS = {
    "5.1.1": "utilisateur inconnu", "5.1.2": "domaine inconnu", "5.1.3": "adresse invalide",
    "5.1.6": "la boîte a changé d'adresse", "5.1.10": "adresse sans serveur de messagerie",
    "5.2.1": "boîte désactivée", "5.2.2": "boîte pleine", "5.2.3": "message trop gros",
    "5.4.1": "refusé par le serveur du destinataire", "5.4.4": "domaine sans serveur de messagerie",
    "5.7.1": "refusé par le serveur du destinataire", "5.7.26": "refusé (authentification de l'expéditeur)",
    "4.2.2": "boîte pleine", "4.4.1": "serveur du destinataire injoignable",
    "4.4.7": "toujours pas remis", "4.7.1": "refusé pour le moment",
}


@dataclass(frozen=True)
class Failure:
    """One recipient a notification reports on."""

    address: str
    status: str  # "5.1.1"
    diagnostic: str = ""  # the remote server's words: "550 5.1.1 <x@y>: user unknown"
    action: str = ""  # RFC 3464's Action, which decides over the status: failed | delayed

    @property
    def permanent(self) -> bool:
        """``Action: failed`` is a failure whatever the status (Postfix gives up on a
        message that waited too long with 4.4.7); ``delayed`` never is."""
        if self.action in ("failed", "delayed"):
            return self.action == "failed"
        return self.status.startswith("5")

    def french(self) -> str:
        """"550 5.1.1 utilisateur inconnu": the reply code, the status, in words."""
        code = re.match(r"\s*([245]\d\d)\b", self.diagnostic)
        words = STATUS_WORDS.get(self.status) or STATUS_WORDS.get(self.status[:1] + ".0.0") or (
            "refus définitif" if self.permanent else "remise retardée")
        return " ".join(part for part in (code.group(1) if code else "", self.status, words) if part)


@dataclass(frozen=True)
class Classified:
    kind: str
    refers_to: tuple[str, ...] = ()  # our Message-IDs this message is about
    failures: tuple[Failure, ...] = ()
    subject: str = ""
    sender: str = ""
    text: str = ""  # a reply's own words (its first text part, quoted lines left out)

    def summary(self) -> str:
        parts = [self.kind, self.subject[:120]]
        parts += [f"{f.address}: {f.status} {f.diagnostic[:120]}".strip() for f in self.failures]
        return " | ".join(part for part in parts if part)


def _header(message: Message, name: str) -> str:
    """A header as one line of text; a header a hostile sender broke reads as ''."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the email package raises many things on bad headers
        return ""
    return " ".join(str(value).split())[:998] if value is not None else ""


def _ids(*values: str | bytes) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        data = value.encode("utf-8", "replace") if isinstance(value, str) else value
        found += [m.decode("ascii") for m in OUR_MESSAGE_ID.findall(data)]
    return tuple(dict.fromkeys(found))


def _address(value: str) -> str:
    """``rfc822; Compta@Example.fr`` → ``compta@example.fr``."""
    value = value.split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower()[:254]


def _delivery_status(report: Message) -> list[Failure]:
    failures = []
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks[1:]:  # the first block is about the message, then one per recipient
            if not isinstance(block, Message):
                continue
            action = _header(block, "Action").lower()
            recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
            status = _STATUS.search(_header(block, "Status"))
            diagnostic = _header(block, "Diagnostic-Code").split(";", 1)[-1].strip()
            if action in ("failed", "delayed") and recipient:
                code = ".".join(status.groups()) if status else ("5.0.0" if action == "failed"
                                                                else "4.0.0")
                failures.append(Failure(_address(recipient), code, diagnostic[:300], action))
    return failures


def _older_bounce(raw: bytes) -> list[Failure]:
    """A bounce that is no RFC 3464 report (qmail, old Exim, some webmails): flufl.bounce
    knows their formats; it tells the addresses, not the status."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:  # noqa: BLE001 - a detector choking on a hostile message finds nothing
        return []
    return ([Failure(a.decode("utf-8", "replace").lower(), "5.0.0") for a in sorted(permanent)]
            + [Failure(a.decode("utf-8", "replace").lower(), "4.0.0") for a in sorted(temporary)])


def classify(raw: bytes) -> Classified:
    """What one message read from a mailbox is, and which of our emails it is about.

    A message the email package cannot take apart (nested past Python's recursion
    limit, say) is ``other``: it must not stop every later reading of its mailbox."""
    try:
        return _classify(raw)
    except (RecursionError, MemoryError, LookupError, ValueError, TypeError) as exc:
        return Classified("other", subject=f"(illisible : {type(exc).__name__})")


def _classify(raw: bytes) -> Classified:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = _header(message, "Subject")
    sender = _header(message, "From")
    in_reply = _ids(_header(message, "In-Reply-To"), _header(message, "References"))
    is_report = (message.get_content_type() == "multipart/report"
                 and str(message.get_param("report-type", "")).lower() == "delivery-status")
    failures = _delivery_status(message) if is_report else []
    if not is_report and _looks_like_a_bounce(message, sender, subject):
        failures = _older_bounce(raw)
    if failures:
        # The quoted message's own Message-ID, when the report quotes its headers: a
        # reprint's References name the original, which must not be taken for it.
        quoted = _quoted_ids(message) or _ids(raw) or in_reply
        kind = "bounce" if any(f.permanent for f in failures) else "delayed"
        return Classified(kind, quoted, tuple(failures), subject, sender)
    auto = _header(message, "Auto-Submitted").lower()
    if (auto and auto != "no") or _header(message, "X-Autoreply") or \
            _header(message, "X-Autorespond") or _AUTO_SUBJECT.match(subject) or \
            _header(message, "Precedence").lower() in ("auto_reply", "bulk", "junk"):
        return Classified("auto-reply", in_reply, (), subject, sender)
    if in_reply:
        return Classified("reply", in_reply, (), subject, sender, body_text(message))
    return Classified("other", (), (), subject, sender, body_text(message))


MAX_TEXT = 4000  # a reply's words kept in the customer's notes


def body_text(message: Message) -> str:
    """The first text part's words, without the lines that quote the reminder (``>``,
    and everything from "Le … a écrit :" / "On … wrote:"), at most :data:`MAX_TEXT`."""
    for part in message.walk():
        if part.get_content_type() != "text/plain" or part.get_filename():
            continue
        try:
            raw = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a broken transfer encoding reads as nothing
            return ""
        if not isinstance(raw, bytes):
            return ""
        charset = part.get_content_charset() or "utf-8"
        try:
            text = raw[:MAX_TEXT * 4].decode(charset, "replace")
        except LookupError:
            text = raw[:MAX_TEXT * 4].decode("utf-8", "replace")
        kept = []
        for line in text.splitlines():
            if _QUOTE_HEADER.match(line):
                break
            if not line.lstrip().startswith(">"):
                kept.append("".join(c for c in line if c.isprintable() or c == "\t").rstrip())
        return "\n".join(kept).strip()[:MAX_TEXT]
    return ""


_QUOTE_HEADER = re.compile(r"^\s*(le .{0,200} a [ée]crit\s*:|on .{0,200} wrote\s*:|-{2,}\s*"
                           r"(original message|message d'origine))", re.IGNORECASE)


def _quoted_ids(report: Message) -> tuple[str, ...]:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            headers = email.message_from_bytes(payload if isinstance(payload, bytes) else b"")
        elif kind == "message/rfc822":
            inner: Any = part.get_payload()
            if not (isinstance(inner, list) and inner and isinstance(inner[0], Message)):
                continue
            headers = inner[0]
        else:
            continue
        found = _ids(_header(headers, "Message-ID"))
        if found:
            return found
    return ()


def _looks_like_a_bounce(message: Message, sender: str, subject: str) -> bool:
    who = sender.lower()
    return (not _header(message, "Return-Path").strip("<> ")
            or any(word in who for word in ("mailer-daemon", "postmaster", "mail delivery"))
            or bool(re.search(r"undeliver|delivery (status|failure)|non remis|returned mail",
                              subject, re.IGNORECASE)))


def addresses_of(field_value: str | None) -> set[str]:
    """The customer's addresses, as the email channel splits them."""
    return {part.strip().lower() for part in re.split(r"[,;]", field_value or "") if part.strip()}


def all_refused(failures: tuple[Failure, ...], customer_email: str | None) -> bool:
    """Whether the permanent failures cover every address of the customer: a bounce of
    the Bcc copy, or of one address among several, is not a reminder that did not leave."""
    refused = {f.address for f in failures if f.permanent}
    wanted = addresses_of(customer_email)
    return bool(wanted) and wanted <= refused


def described(failures: tuple[Failure, ...]) -> str:
    permanent = [f for f in failures if f.permanent] or list(failures)
    return "; ".join(dict.fromkeys(f.french() for f in permanent))
