"""Dispatch: reminders leave, and only what left is stamped.

``outbox`` queues what the ledger says is due, once per key, and hands it
out under leases; ``leases`` renews them while a reminder is in flight and
guards every outcome with them; ``run`` claims, renders (through
``letters``), sends and records; ``channels`` builds the configured channels and the deliveries
they take; ``records`` writes each outcome (sent and stamped with its PDF
kept, retry, fallback, failed, cancelled); ``reprint`` sends a kept PDF
again.

Reads the ledger, writes the outbox, the documents, the reminder stamps
and the history.  May import letters, escalation, the ledger, the
foundation and ``relances.plugins``.
"""
