"""Trace collector, follow mode: growth, a truncated last line, rotation and restart."""

from __future__ import annotations

from pathlib import Path

import duckdb

from collectors.otlp_config import load_config
from collectors.otlp_follow import Follower, committed_offset
from r2p.landing import LandingZone

LINES = (Path(__file__).parent / "data" / "otlp" / "otlp2parquet_traces.jsonl").read_text().splitlines(keepends=True)


def landed_spans(data_dir: Path) -> list[tuple[str, str]]:
    return duckdb.sql(
        f"SELECT trace_id, span_id FROM read_parquet('{data_dir}/landing/spans/**/*.parquet') ORDER BY ALL"
    ).fetchall()


def test_follow_growth_partial_line_rotation_and_restart(tmp_path):
    zone, config = LandingZone(tmp_path / "data"), load_config()
    log = tmp_path / "traces.jsonl"
    log.write_text("".join(LINES[:5]) + LINES[5][:40])  # the 6th line is still being written
    follower = Follower(zone, config)
    assert follower.poll(log) == 5
    assert follower.poll(log) == 0  # the partial line waits, it is not rejected
    with log.open("a") as out:
        out.write(LINES[5][40:] + "".join(LINES[6:10]))
    assert follower.poll(log) == 5
    assert committed_offset(zone, log) == len("".join(LINES[:10]).encode())

    restarted = Follower(zone, config)  # a new process: resumes from the landed offset
    assert restarted.poll(log) == 0
    log.rename(tmp_path / "traces.jsonl.1")  # rotation: a new, smaller file
    log.write_text("".join(LINES[10:13]))
    assert restarted.poll(log) == 3
    with log.open("a") as out:
        out.write("".join(LINES[13:]))
    assert Follower(zone, config).poll(log) == 6
    assert len(landed_spans(tmp_path / "data")) == 19
    assert not list((tmp_path / "data" / "landing" / "rejects").rglob("*.parquet"))
