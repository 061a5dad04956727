"""The real BPI Challenge 2019 sample through the transaction collector and the procurement models, checked
against an independent plain-pandas computation: per-case throughput time and per-stage-pair durations.

The sample (CC BY 4.0 data in an MIT repository) is read from ../shared at test time. Cases are PO items
(`po_number/po_line`); activities map to stages with examples/mappings/bpic2019.toml, read here with tomllib.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from collectors import transactions
from collectors.mapping import load
from r2p.schema import STAGES
from r2p.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parents[0] / "shared" / "data" / "external" / "p2p_eventlogs" / "bpic2019_sample_WISE.csv"
MAPPING = REPO / "examples" / "mappings" / "bpic2019.toml"

pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="needs ../shared/data/external (the BPIC 2019 sample)")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("bpic") / "data"
    warehouse = Warehouse(data_dir)
    summary = transactions.ingest([SAMPLE], warehouse.landing, load(MAPPING))
    assert summary.rejected == 0
    warehouse.refresh()
    yield warehouse.reader()
    warehouse.close()


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """The sample's events with their case (PO/item), stage (from the mapping) and UTC time, in pandas only."""
    raw = pd.read_csv(SAMPLE, dtype=str)
    stages = {activity: spec["stage"] for activity, spec in tomllib.loads(MAPPING.read_text())["event_types"].items()}
    frame = pd.DataFrame({
        "case_id": raw["case_Purchasing_Document"] + "/" + raw["case_Item"].astype(int).astype(str),
        "event_id": raw["eventID"],
        "stage": raw["event_concept_name"].map(stages),
        "at": pd.to_datetime(raw["event_time_timestamp"], utc=True),
    })
    assert frame["stage"].notna().all(), "every activity of the sample has a stage in the mapping"
    frame["order"] = frame["stage"].map({stage: position for position, stage in enumerate(STAGES)})
    return frame.sort_values(["case_id", "at", "order", "event_id"]).reset_index(drop=True)


def test_per_case_throughput_equals_pandas(con, log: pd.DataFrame) -> None:
    expected = log.groupby("case_id")["at"].agg(lambda times: (times.max() - times.min()).total_seconds())
    actual = con.execute("SELECT case_id, end_to_end_s FROM fct_requisition_timeline").df().set_index("case_id")["end_to_end_s"]
    assert len(expected) == 1000
    pd.testing.assert_series_equal(actual.sort_index(), expected.sort_index(), check_names=False)


def test_per_stage_pair_durations_equal_pandas(con, log: pd.DataFrame) -> None:
    # Consecutive events of a case in the same stage form one visit; a transition runs visit entry to visit entry.
    starts = log[log["stage"] != log.groupby("case_id")["stage"].shift()].copy()
    starts["to_stage"] = starts.groupby("case_id")["stage"].shift(-1)
    starts["seconds"] = (starts.groupby("case_id")["at"].shift(-1) - starts["at"]).dt.total_seconds()
    pairs = starts.dropna(subset=["to_stage"]).groupby(["stage", "to_stage"])["seconds"].agg(["count", "sum", "median"])
    actual = con.execute(
        "SELECT from_stage AS stage, to_stage, count(*) AS count, sum(duration_s) AS sum, median(duration_s) AS median "
        "FROM fct_stage_durations GROUP BY ALL"
    ).df().set_index(["stage", "to_stage"])
    assert len(pairs) > 20
    pd.testing.assert_frame_equal(actual.sort_index(), pairs.sort_index(), check_dtype=False)
