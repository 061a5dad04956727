"""Shared fixtures: a data directory and a small landed sample built from canonical records."""

from __future__ import annotations

from pathlib import Path

import pytest

from samples import land_records, sample_records


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def landed_sample(data_dir: Path) -> Path:
    land_records(data_dir, sample_records())
    return data_dir


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A small simulated health system landed through the collectors and loaded: (data dir, manifest).

    Shared by the whole run (tests must not write to it): a week at 2 % scale, with every incident.
    """
    import json

    from r2p.demo import land_inputs
    from r2p.landing import LandingZone
    from r2p.warehouse import Warehouse
    from simulator import SimulationConfig, simulate

    root = tmp_path_factory.mktemp("simulated")
    simulate(SimulationConfig(seed=3, days=7, scale=0.02, snapshot_interval_s=900), root / "input")
    land_inputs(root / "input", LandingZone(root / "data"))
    Warehouse(root / "data").refresh()
    return root / "data", json.loads((root / "input" / "manifest.json").read_text())
