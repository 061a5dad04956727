"""Round trip: the simulator's transaction exports and EDI land with the example mappings, and the
only rejects are the records the simulator broke on purpose (its manifest's broken_records)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from collectors import transactions
from collectors.mapping import load
from r2p.landing import LandingZone
from simulator.cli import simulate
from test_transactions import MAPPINGS, landed


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate.main(["--days", "2", "--scale", "0.2", "--out", str(out)], standalone_mode=False)
    return out


def test_simulator_exports_round_trip_with_only_the_deliberate_rejects(simulated: Path, tmp_path: Path) -> None:
    manifest = json.loads((simulated / "manifest.json").read_text())
    zone = LandingZone(tmp_path / "data")
    exports = simulated / "transactions"
    for mapping, pattern in [
        ("sim_procurement", "procurement.csv"),
        ("sim_erp", "erp.csv"),
        ("sim_legacy-erp", "legacy-erp.csv"),
        ("sim_wms", "wms-*.csv"),
        ("sim_ap", "ap.csv"),
    ]:
        transactions.ingest(sorted(exports.glob(pattern)), zone, load(MAPPINGS / f"{mapping}.toml"))
    edi = transactions.ingest(sorted((simulated / "edi").glob("*.edi")), zone, None)
    rejects = landed(tmp_path / "data", "rejects", order="input, line")
    got = {(str(Path(r["input"]).relative_to(simulated)), r["line"]) for r in rejects}
    expected = {
        (b["file"], b["line"]) for b in manifest["broken_records"] if b["file"].startswith(("transactions/", "edi/"))
    }
    assert got == expected and len(rejects) == len(expected)
    events = landed(tmp_path / "data", order="event_id")
    from_exports = [e for e in events if e["system"] != "edi"]
    csv_rejects = sum(1 for f, _ in expected if f.startswith("transactions/"))
    rows = sum(len(p.read_text().splitlines()) - 1 for p in exports.glob("*.csv"))
    assert len(from_exports) + csv_rejects == rows  # every data row landed or was rejected
    assert len(from_exports) == manifest["totals"]["transaction_events"]  # the broken row was an extra copy
    documents = Counter(e["event_type"] for e in events if e["system"] == "edi")
    edi_rejects = sum(1 for f, _ in expected if f.startswith("edi/"))
    assert documents["850"] + documents["855"] + documents["856"] + documents["810"] + edi_rejects == sum(
        manifest["totals"][f"x12_{kind}"] for kind in ("850", "855", "856", "810")
    )
    assert edi.rejected == edi_rejects
    assert {e["system"] for e in events} == {"procurement", "erp", "legacy-erp", "wms", "ap", "edi"} - (
        {"ap"} if not (exports / "ap.csv").read_text().count("\n") > 1 else set()
    )
    assert all(e["stage"] is not None for e in events if e["object_type"] != "supplier")
