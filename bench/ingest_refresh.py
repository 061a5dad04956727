"""Land a simulated health system through the collectors, then load it into a new warehouse.

``python -m bench ingest_refresh [--days 21 --scale 0.05 --snapshot-interval 300]`` (the demo preset by
default) prints the simulation, landing and refresh times and the rows per second of each step.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

from r2p.demo import DEMO_SEED, land_inputs
from r2p.landing import LandingZone
from r2p.warehouse import Warehouse
from simulator import SimulationConfig, simulate
from simulator.cli import DEMO_PRESET


def run(days: str | None = None, scale: str | None = None, snapshot_interval: str | None = None) -> dict:
    config = SimulationConfig(
        seed=DEMO_SEED,
        days=int(days or DEMO_PRESET["days"]),
        scale=float(scale or DEMO_PRESET["scale"]),
        snapshot_interval_s=int(snapshot_interval or DEMO_PRESET["snapshot_interval_s"]),
    )
    root = Path(tempfile.mkdtemp(prefix="r2p-bench-"))
    try:
        started = time.perf_counter()
        simulate(config, root / "input")
        simulated = time.perf_counter()
        summary = land_inputs(root / "input", LandingZone(root / "data"))
        landed = time.perf_counter()
        warehouse = Warehouse(root / "data")
        loaded = warehouse.refresh()
        refreshed = time.perf_counter()
        warehouse.close()
        again = time.perf_counter()
        warehouse = Warehouse(root / "data")
        noop = warehouse.refresh()
        idle_refresh_s = time.perf_counter() - again
        warehouse.close()
        assert noop.batches == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    records = sum(summary.accepted.values())
    return {
        "days": config.days,
        "scale": config.scale,
        "files": summary.files,
        "records_landed": records,
        "rejected": summary.rejected,
        "simulate_s": round(simulated - started, 2),
        "land_s": round(landed - simulated, 2),
        "land_records_per_s": round(records / (landed - simulated)),
        "refresh_s": round(refreshed - landed, 2),
        "refresh_rows_per_s": round(sum(loaded.rows.values()) / (refreshed - landed)),
        "idle_refresh_s": round(idle_refresh_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
