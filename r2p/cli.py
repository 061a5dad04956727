"""The ``r2p`` command line: ingest, refresh, rebuild, simulate, demo, serve.

Collector modules own their commands (``ingest traces``, ``receive``, ``poll`` ...) and this module
only attaches them, so a new source kind never edits the core. A ``UserError`` (or a click usage
error) prints one line, ``r2p: error: ...``, and exits 2: never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from r2p.errors import UserError

DEFAULT_DATA_DIR = "data"


class Context:
    """What every command gets: the data directory, resolved once."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def landing(self):
        from r2p.landing import LandingZone

        return LandingZone(self.data_dir)


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("R2P_DATA_DIR", DEFAULT_DATA_DIR),
    show_default="./data, or $R2P_DATA_DIR",
    help="Where the landing zone and warehouse.duckdb live.",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path) -> None:
    """R2P Observatory: observability for healthcare requisition-to-pay integration."""
    ctx.obj = Context(data_dir)


@cli.group()
def ingest() -> None:
    """Land input files (files, folders, globs) in the landing zone, then refresh the warehouse."""


def report_ingest(context: Context, summary) -> None:
    """Print an ingest run's summary line, then load the new batches unless the dashboard will."""
    click.echo(summary.line())
    refresh_or_defer(context)


def refresh_or_defer(context: Context) -> None:
    """Load new landing batches into the warehouse, or say that the running dashboard will."""
    from r2p.warehouse import WarehouseBusy, refresh_now

    try:
        loaded = refresh_now(context.data_dir)
    except WarehouseBusy as busy:
        click.echo(f"warehouse held by {busy.holder}: it loads new batches by itself within a few seconds")
        return
    click.echo(loaded.line())


@cli.command()
@pass_context
def refresh(context: Context) -> None:
    """Load new landing batches into the warehouse (the dashboard does this by itself)."""
    refresh_or_defer(context)


@cli.command()
@pass_context
def rebuild(context: Context) -> None:
    """Recreate the warehouse from the landing zone alone."""
    from r2p.warehouse import WarehouseBusy, rebuild as rebuild_warehouse

    try:
        loaded = rebuild_warehouse(context.data_dir)
    except WarehouseBusy as busy:
        raise UserError(f"warehouse held by {busy.holder}: stop the dashboard, then rebuild") from None
    click.echo(loaded.line())


def _attach_commands() -> None:
    """Attach the commands that collector, simulator and triage modules define."""
    from collectors import traces, backlog, transactions

    for module in (traces, backlog, transactions):
        for command in module.COMMANDS:
            (ingest if command.name == module.SOURCE else cli).add_command(command)


def main(argv: list[str] | None = None) -> int:
    _attach_commands()
    try:
        cli.main(args=argv, prog_name="r2p", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("r2p: aborted", err=True)
        return 130
    except click.ClickException as error:
        click.echo(f"r2p: error: {error.format_message()}", err=True)
        return 2
    except UserError as error:
        click.echo(f"r2p: error: {error}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
