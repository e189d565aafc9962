"""Escalation ("incrémentation de relances"): invoices climb one level.

``rule`` is the SQL condition of which invoices move on a given day;
``run`` applies it in one UPDATE and records the run.  Reads and writes
invoice levels and the runs table.  May import the ledger and the
foundation; independent of ``bank``.
"""
