"""Relances, the application: installed as ``relances.daemon``.

At this folder's root is the foundation every stage may import:
``config`` (the settings, validated), ``storage`` (the engine, sessions,
migrations, and ``App``), ``models`` (the tables), ``errors`` (the error
hierarchy), ``logs``, ``formatting``, ``safexml`` (XML from outside,
parsed safely) and ``safeyaml`` (the settings' YAML, parsed as hostile);
``migrations/`` is Alembic's.

Below it, one package per stage of the flow, imports running one way
(``docs/architecture.md``; import-linter checks it):

    cli, web  →  service  →  dispatch  →  letters  →  escalation | bank  →  ledger  →  foundation

The foundation imports no stage; ``relances.plugins`` and
``relances.channels`` import nothing of this package.
"""
