"""The project's error hierarchy.

``RelancesError`` and ``DeliveryError`` live in the plugin contract because
channels raise them and ``plugins/`` imports nothing of the project; the
rest of the hierarchy is here, and :class:`DatabaseError` beside it.
"""

from __future__ import annotations

from relances.plugins.contract import DeliveryError, RelancesError

__all__ = [
    "BankError",
    "ConfigError",
    "DatabaseError",
    "DeliveryError",
    "LedgerError",
    "RelancesError",
    "RenderError",
]


class ConfigError(RelancesError):
    """``settings.yaml`` or a template does not validate.

    The message names the file, the line and the key.
    """


class LedgerError(RelancesError):
    """Bad input to the ledger: an import row, an unknown invoice, a bad amount."""


class RenderError(RelancesError):
    """A letter could not be rendered (template error, missing invoice copy)."""


class NothingToSend(RenderError):
    """The document has nothing to ask for (no overdue invoice left, all at level 0):
    a reminder for it is cancelled, not failed."""


class BankError(RelancesError):
    """A bank statement that cannot be read, or a review action that does not apply."""


class DatabaseError(Exception):
    """The database cannot do the work: unreachable, read-only, full, busy.

    The message names the database (a SQLite file, or the URL without its
    password) and the reason, never a statement's bound values.  Not a
    :class:`RelancesError`: the daemon's inbox refuses a file on one, and a
    file must not be refused because the database was busy.  The command
    line prints it as one line all the same.
    """
