"""The service, ``relances daemon``: the clock around the stages.

``lifecycle`` is the daemon's three phases (startup, run, shutdown) and
its signals; ``jobs`` are the two scheduled jobs (escalate, dispatch);
``preflight`` checks the settings, channels and templates before anything
runs; ``locks`` keeps daemons from stepping on each other; ``systemd``
speaks the notify protocol; ``status`` reads what the service did and what
waits, ``dashboard`` the overdue by age and what reminders recovered;
``forget`` erases a customer once the retention of the records has passed
(it crosses every stage below, so it lives here).

May import every stage below it (dispatch, letters, escalation, ledger)
and the foundation; never a face (``cli``, ``web``).
"""
