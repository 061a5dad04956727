"""The ``r2p`` command line: ingest, refresh, rebuild, simulate, demo, serve.

Collector and simulator modules own their commands (``ingest traces``, ``receive``, ``poll`` ...),
listed in a module's ``COMMANDS``; this module names which module holds each command and imports
it only when that command runs, so ``r2p serve`` never pays for (or trips on) a collector's imports.
A ``UserError`` (or a click usage error) prints one line, ``r2p: error: ...``, and exits 2: never a
traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

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


class LazyGroup(click.Group):
    """A group whose other commands live in modules imported on first use: name -> module path."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module = importlib.import_module(self.lazy[name])
            return next(command for command in module.COMMANDS if command.name == name)
        return super().get_command(ctx, name)


@click.group(
    cls=LazyGroup,
    lazy={
        "receive": "collectors.traces",
        "poll": "collectors.backlog",
        "simulate": "simulator.cli",
        "check": "metrics.slo",
        "triage": "r2p.triage",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


@cli.group(
    cls=LazyGroup,
    lazy={"traces": "collectors.traces", "backlog": "collectors.backlog", "transactions": "collectors.transactions"},
)
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


APP = Path(__file__).resolve().parents[1] / "app.py"


def serve_dashboard(data_dir: Path, host: str, port: int) -> NoReturn:
    """Become the Streamlit dashboard on the data directory (exec, not a child process: a signal that
    stops ``r2p serve`` stops the dashboard, and no server outlives it)."""
    if not APP.exists():
        raise UserError(f"the dashboard's app.py is not at {APP}: install the project from its checkout (pip install -e .)")
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    click.echo(f"dashboard on http://{host}:{port} (data: {data_dir})")
    sys.stdout.flush()
    os.execve(sys.executable, command, {**os.environ, "R2P_DATA_DIR": str(data_dir.resolve())})


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@pass_context
def serve(context: Context, host: str, port: int) -> None:
    """Start the dashboard."""
    serve_dashboard(context.data_dir, host, port)


@cli.command()
@click.option("--no-serve", is_flag=True, help="Load the demo into the data directory and exit.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@pass_context
def demo(context: Context, no_serve: bool, host: str, port: int) -> None:
    """Simulate the demo health system, ingest it through the collectors, and start the dashboard."""
    from r2p.demo import land_demo

    report_ingest(context, land_demo(context.data_dir))
    if not no_serve:
        serve_dashboard(context.data_dir, host, port)


def main(argv: list[str] | None = None) -> int:
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
