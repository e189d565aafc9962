"""The command line, ``relances``: one face of the application.

Each command parses its options, opens the database, calls the one stage
function that does the work (the same function the daemon and the web
screen call), and prints the result in French tables.  Errors of the
project's hierarchy become one line on stderr and exit status 1.

``main`` builds the click group and loads each command's module only when
that command runs; one module per group of commands: ``setup`` (init,
check-config), ``ledger`` (imports, payments, holds, notes, levels),
``table`` (the reminders table, a customer, an invoice, its history),
``escalate``, ``letters`` (preview, report), ``send`` (send, reprint),
``daemon`` (the service, its status), ``plugins``, ``imports`` (the books
and the bank), ``bank`` (the review queue), ``users`` (accounts and API
tokens of the web screen), ``web`` (serves it) and ``backup`` (a copy of
the SQLite database).

May import every stage, the web screen and the foundation; nothing
imports it, and
``relances daemon`` starts :mod:`relances.daemon.service` from here.
"""

from relances.daemon.cli.main import main

__all__ = ["main"]
