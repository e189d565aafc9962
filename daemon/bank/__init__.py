"""The bank: statements in, payments matched, nobody reminded after paying.

``statements`` is what every reader hands over (entries with a stable
identity); ``camt`` (ISO 20022 camt.053, its plain entries read by
``camt_quick``), ``cfonb`` (CFONB 120), ``ofx`` and ``mt940`` read each
format, and ``read`` tells a file's format from its content.  ``matching``
finds the invoices an entry pays, most certain rule first; ``known`` the
payments recorded here that an entry shows; ``apply`` decides every entry
in memory and writes the payments, links and history in bulk, sends the
rest to the review queue (``review``), and remembers what was read so
nothing is applied twice.

Reads statements; writes bank entries, payments (through the ledger's
book), customers' known IBANs and review holds.  May import the ledger and
the foundation; independent of ``escalation``.
"""
