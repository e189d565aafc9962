"""The web screen: the reminders table, the customer's card and the invoice,
in French, for the people who chase payments without a terminal; and a JSON
API under ``/api/`` for programs.

A face like the command line: each handler reads the form, checks the role
on the server, calls the stage function the matching command calls (the
ledger's book and listing, ``screens`` for what the screen adds) in one
transaction, and redirects with a message.  ``app`` builds the ASGI
application; ``accounts`` keeps the people and API tokens (tables
``users`` and ``api_tokens``); ``sessions`` signs the session cookie and
checks CSRF tokens; ``guard`` rate-limits logins and sets the security
headers; ``rendering`` is the Jinja2 environment of the pages (autoescape
on, apart from the letters' sandbox); ``pages``, ``actions``, ``login`` and
``api`` are the routes; ``sending`` (a letter with its preview, a reprint,
the PDF that left, the escalation, a batch), ``review`` (À valider),
``dashboard`` (Tableau de bord) and ``exports`` (CSV, the printed table)
are the routes of what leaves and what is summed up.

Reads the ledger through its functions and writes only the users and
api_tokens tables itself.  May import service, dispatch, letters,
escalation, bank, ledger and the foundation; only the command line
imports it (``relances web`` serves it).
"""
