"""Letters: which document goes to whom, and its PDF.

``documents`` reads the ledger into a picklable letter job (the invoices,
the copies to attach); ``context`` turns ORM rows into the plain dict a
template sees, with how to pay (``payment``: the RF reference and the EPC
QR code); ``mergefields`` is the documented catalogue of those fields
with samples; ``templating`` is the sandboxed Jinja2 environment and what
the PDF engine may fetch; ``check`` renders every template once against
the samples (at ``check-config`` and the service's start); ``pdf`` is one
process's WeasyPrint engine; ``pool`` renders in worker processes;
``bounds`` holds each template to a deadline, a memory limit and an output
cap in those processes; ``report`` is the printed reminders table.

Reads the ledger; writes nothing.  May import the ledger, the foundation
and ``relances.plugins``.
"""
