"""How to pay a letter: the seller's account, the reference to quote, the EPC QR code.

The QR code is the European Payments Council's "SEPA credit transfer" code
(EPC069-12): a banking app scans it and fills in the IBAN, the amount and
the structured reference, so the transfer comes back matched to its
invoice.  It is drawn by ``segno`` as SVG and handed to the template as a
``data:`` URI, which the PDF engine's fetcher serves without fetching
anything.  The payload itself is :func:`~relances.daemon.ledger.references.epc_qr_payload`.
"""

from __future__ import annotations

import base64
import io
import logging
from decimal import Decimal
from typing import Any

import segno
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

from relances.daemon.config import Settings
from relances.daemon.ledger.references import epc_qr_payload, format_reference

log = logging.getLogger(__name__)

QR_MASK = 3
"""The QR code's data mask, fixed.  Left to itself, segno draws the code
under all eight masks and scores each (ISO/IEC 18004's penalty rules), which
took three quarters of the time of a letter's QR code and a fifth of the
daemon's own work per reminder.  Any mask gives a valid code that every
reader decodes; 3 is the one segno picks most often for EPC payloads, and
the tests decode codes of many payloads drawn under it."""


def qr_svg(payload: str) -> bytes:
    """The QR code of ``payload``: UTF-8, error correction level M as EPC069-12 asks
    (not raised by segno), a four-module quiet zone, sized by the stylesheet."""
    code = segno.make(payload, error="M", boost_error=False, micro=False, encoding="utf-8",
                      mask=QR_MASK)
    out = io.BytesIO()
    code.save(out, kind="svg", xmldecl=False, omitsize=True, border=4,
              svgclass=None, lineclass=None, dark="#000")
    return out.getvalue()


def svg_data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def payment_fields(settings: Settings, *, reference: str, amount: Decimal) -> dict[str, Any]:
    """The ``payment`` merge fields: the reference to quote, the amount, the account, the QR."""
    iban = stdnum_iban.compact(settings.sender.iban)
    bic = stdnum_bic.compact(settings.sender.bic)
    qr = ""
    if iban:  # checked when the settings were loaded
        try:
            payload = epc_qr_payload(bic=bic, name=settings.sender.name,
                                     iban=iban, amount=amount, reference=reference)
        except ValueError as exc:  # nothing to pay (a credit), or too much for the code
            log.debug("no payment QR code for %s: %s", reference, exc)
        else:
            qr = svg_data_uri(qr_svg(payload))
    return {
        "reference": format_reference(reference),
        "amount": amount,
        "iban": stdnum_iban.format(iban) if iban else "",
        "bic": bic,
        "qr": qr,
    }
