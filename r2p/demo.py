"""The demo health system: simulate it, then land its raw files through the real collectors.

Nothing here writes the warehouse: ``land_demo`` only fills the landing zone, exactly as a user's
``r2p ingest`` runs would, and ``r2p demo`` then loads it, or leaves it to a running dashboard.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path

import click

from collectors.files import IngestSummary, expand, ingest_files
from r2p.errors import UserError
from r2p.landing import LandingZone

MAPPINGS = Path(__file__).resolve().parents[1] / "examples" / "mappings"
DEMO_SEED = 7


def simulator_mapping(export: Path) -> Path:
    """The example mapping of one simulator export: ``sim_<system>.toml``, one for all ``wms-*`` exports."""
    system = export.name.split(".", 1)[0]
    for name in (system, system.split("-", 1)[0]):
        candidate = MAPPINGS / f"sim_{name}.toml"
        if candidate.exists():
            return candidate
    raise UserError(f"no example mapping for the simulator export {export.name} under {MAPPINGS}")


def land_inputs(directory: Path, zone: LandingZone) -> IngestSummary:
    """Land a simulator output folder (traces, backlog, transactions, EDI) through the collectors."""
    from collectors import backlog, traces, transactions
    from collectors.broker_flows import load_config as backlog_config
    from collectors.mapping import load as load_mapping
    from collectors.otlp_config import load_config as traces_config

    traces_settings, backlog_settings = traces_config(None), backlog_config(None)
    runs = [
        ingest_files(traces.SOURCE, expand([str(directory / "traces")]), zone,
                     lambda path, writer: traces.collect_file(path, writer, traces_settings)),
        ingest_files(backlog.SOURCE, expand([str(directory / "backlog")]), zone,
                     lambda path, writer: backlog.collect_file(path, writer, backlog_settings)),
        transactions.ingest(expand([str(directory / "edi")]), zone, None),
    ]
    for export in expand([str(directory / "transactions")]):
        runs.append(transactions.ingest([export], zone, load_mapping(simulator_mapping(export))))
    total = IngestSummary(accepted=Counter())
    for run in runs:
        total.files += run.files
        total.accepted.update(run.accepted)
        total.rejected += run.rejected
        total.already_present += run.already_present
    return total


def land_demo(data_dir: Path, today: dt.date | None = None) -> IngestSummary:
    """Simulate the demo preset ending today into ``<data-dir>/demo-input`` and land it."""
    from simulator import SimulationConfig, simulate
    from simulator.cli import DEMO_PRESET

    days = DEMO_PRESET["days"]
    start = (today or dt.date.today()) - dt.timedelta(days=days - 1)
    out = Path(data_dir) / "demo-input"
    with click.progressbar(length=days, label="simulate demo", file=sys.stderr) as progress:
        simulate(SimulationConfig(seed=DEMO_SEED, start=start, **DEMO_PRESET), out, progress.update)
    return land_inputs(out, LandingZone(data_dir))


def land_demo_in_child_process(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``r2p demo --no-serve`` in a child process, for the dashboard: the simulator forks a worker,
    which a threaded server must not do. The child leaves loading to the dashboard that holds the warehouse."""
    return subprocess.run([sys.executable, "-m", "r2p", "--data-dir", str(data_dir), "demo", "--no-serve"],
                          capture_output=True, text=True)
