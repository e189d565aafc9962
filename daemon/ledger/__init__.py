"""The ledger: what the seller's books say is owed, and what was done about it.

Reads the books into validated rows: the ERP's export as TSV, CSV or JSON
(``export``, kept in ``rowstore``; the file opened by ``infiles``, cells by
``readers`` under the rules of ``cells``, values by ``parsing``), the FEC (``fec``, checked by
``fec_checks``), Factur-X invoices (``facturx``), an e-invoicing
platform's CDAR statuses (``cdar``, applied by ``statuses``); ``sources`` tells a file's
kind from its content, ``kinds`` who a customer is (business, public,
consumer).  ``reconcile`` brings the book in line with a source's invoices
(complete sources settle what they no longer list; payments recorded here
are never undone; every change has its history line; written in bulk by
``bulk``, customers kept in step by ``customers``), called by ``imports``,
which also imports customers and payments.  ``book`` records what people do
by hand (payments, holds, levels, kinds, notes) and keeps
the history.  ``listing`` is the reminders table; ``due`` says what may be
reminded and which reminder is due; ``policies`` which policy a customer
falls under; ``latecharges`` the interest and indemnity of L441-10;
``references`` the RF creditor references letters print and the bank
matches, and the EPC QR payload.

Reads and writes the customers, invoices, payments, invoice statuses, notes
and history tables; never the outbox.  May import the foundation only.
"""
