"""``relances plugins``: the installed plugins and the channels they provide."""

from __future__ import annotations

import json

import click

from relances.plugins import BLOCK_ENV, blocked_plugins, get_plugin_manager, plugin_listing


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List plugins, their versions and the channels they provide."""
    listing = plugin_listing(get_plugin_manager())
    if as_json:
        click.echo(json.dumps([{"name": p.name, "version": p.version, "channels": list(p.channels)}
                               for p in listing], indent=2))
        return
    width = max((len(p.name) for p in listing), default=6)
    click.echo(f"{'PLUGIN':<{width}}  {'VERSION':<9}  CHANNELS")
    for p in listing:
        click.echo(f"{p.name:<{width}}  {p.version or '-':<9}  {', '.join(p.channels) or '-'}")
    blocked = sorted(blocked_plugins())
    if blocked:
        click.echo(f"blocked by ${BLOCK_ENV}: {', '.join(blocked)}")


COMMANDS = [plugins_command]
