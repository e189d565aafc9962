"""The ledger: what the seller's books say is owed, and what was done about it.

Reads import files (the ERP's export as TSV, CSV or JSON) into validated
rows (``readers``, ``parsing``) and writes them into the book
(``imports``): customers, invoices and payments.  ``book`` records what
people do by hand (payments, holds, levels, notes) and keeps every
invoice's history.  ``listing`` is the reminders table; ``due`` says what
may be reminded and which reminder is due; ``policies`` says which policy a
customer falls under; ``latecharges`` computes the interest and indemnity
of article L441-10.

Reads and writes the customers, invoices, payments, notes and history
tables; never the outbox.  May import the foundation only.
"""
