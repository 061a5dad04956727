"""``r2p simulate``: write a simulated health system's raw inputs and manifest to a directory."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from simulator import simulate as run_simulation
from simulator.model import DEFAULT_START, SimulationConfig

DEMO_PRESET = {"days": 21, "scale": 0.05, "snapshot_interval_s": 300}
"""Flags for ``r2p demo``: about 10 s on a small machine, every incident still clearly visible."""


@click.command("simulate")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of every random stream.")
@click.option("--days", type=click.IntRange(min=1), default=60, show_default=True, help="Days to simulate.")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Volume multiplier: 1 is 300 requisitions per facility per weekday.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default=DEFAULT_START.isoformat(),
              show_default=True, help="First simulated day (UTC).")
@click.option("--facilities", type=click.IntRange(min=1), default=5, show_default=True,
              help="Facilities; the last is the acquired hospital on the legacy ERP.")
@click.option("--suppliers", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--snapshot-interval", "snapshot_interval_s", type=click.IntRange(min=1), default=60,
              show_default=True, help="Seconds between backlog snapshots (coarsen for big runs).")
@click.option("--no-faults", is_flag=True, help="Simulate a healthy system: no injected incidents.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for the raw files and manifest.json (empty, or an earlier simulation's).")
def simulate(seed: int, days: int, scale: float, start: dt.datetime, facilities: int, suppliers: int,
             snapshot_interval_s: int, no_faults: bool, out_dir: Path) -> None:
    """Simulate requisition-to-pay traffic with injected faults; write raw inputs and manifest.json."""
    config = SimulationConfig(seed=seed, days=days, start=start.date(), scale=scale, facilities=facilities,
                              suppliers=suppliers, snapshot_interval_s=snapshot_interval_s, faults=not no_faults)
    began = time.perf_counter()
    with click.progressbar(length=days, label="simulating", file=sys.stderr) as bar:
        manifest = run_simulation(config, out_dir, progress=bar.update)
    seconds = time.perf_counter() - began
    totals = manifest.totals
    click.echo(f"wrote {out_dir}: {totals['requisitions']} requisitions, {totals['transaction_events']} transaction "
               f"events, {totals['spans']} spans, {totals['interchanges']} X12 interchanges, "
               f"{len(manifest.incidents)} incidents in {seconds:.1f} s "
               f"({totals['transaction_events'] / seconds:.0f} events/s, {totals['spans'] / seconds:.0f} spans/s)")


COMMANDS = [simulate]
