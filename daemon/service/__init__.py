"""The service, ``relances daemon``: the clock around the stages.

``lifecycle`` is the daemon's three phases (startup, run, shutdown) and
its signals; ``jobs`` are the two scheduled jobs (escalate, dispatch);
``preflight`` checks the settings, channels and templates before anything
runs; ``locks`` keeps daemons from stepping on each other; ``systemd``
speaks the notify protocol; ``status`` reads what the service did and what
waits.

May import every stage below it (dispatch, letters, escalation, ledger)
and the foundation; never a face (``cli``, ``web``).
"""
