"""The backlog mart: drain rate, time to drain, derived rates, dead-letter growth, no-consumer flag."""

from __future__ import annotations

import json
from pathlib import Path

import click
import duckdb
import pytest

from metrics.build import MODELS_DIR, Model
from r2p import schema
from r2p.cli import main

BACKLOG_MODELS = [("staging", "stg_backlog_snapshots"), ("marts", "fct_backlog")]


@pytest.fixture(autouse=True)
def landing_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Land only: the backlog models are built below on their own, whatever state other models are in."""
    monkeypatch.setattr("collectors.backlog.report_ingest", lambda context, summary: click.echo(summary.line()))


def build_backlog_models(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """The landed snapshots in a backlog_snapshots table, then the backlog models as the runner makes them."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(schema.ddl(schema.BacklogSnapshot))
    files = [str(path) for path in (data_dir / "landing" / "backlog_snapshots").rglob("*.parquet")]
    columns = ", ".join(schema.column_names(schema.BacklogSnapshot))
    con.execute(f"INSERT INTO backlog_snapshots SELECT {columns} FROM read_parquet({files}, hive_partitioning = false)")
    for layer, name in BACKLOG_MODELS:
        model = Model(name, layer, (MODELS_DIR / layer / f"{name}.sql").read_text())
        con.execute(f"CREATE {'TABLE' if model.materialised else 'VIEW'} {name} AS {model.sql}")
    return con


def stats_queue(name: str, messages: int, consumers: int, publish: int | None = None, delivered: int | None = None) -> dict:
    queue = {"name": name, "vhost": "/", "messages": messages, "messages_ready": messages,
             "messages_unacknowledged": 0, "consumers": consumers}
    if publish is not None:
        queue["message_stats"] = {"publish": publish, "deliver_get": delivered}
    return queue


OBSERVATIONS = [
    ("2024-05-01T12:00:00Z", [stats_queue("wms.south-community.receipts", 100, 1, 1000, 900),
                              stats_queue("wms.south-community.receipts.dlq", 0, 0), stats_queue("ap.invoices", 10, 1)]),
    ("2024-05-01T12:01:00Z", [stats_queue("wms.south-community.receipts", 70, 1, 1060, 1020),
                              stats_queue("wms.south-community.receipts.dlq", 2, 0), stats_queue("ap.invoices", 20, 1)]),
    ("2024-05-01T12:02:00Z", [stats_queue("wms.south-community.receipts", 40, 0, 1100, 1080),
                              stats_queue("wms.south-community.receipts.dlq", 5, 0)]),
    ("2024-05-01T12:03:00Z", [stats_queue("wms.south-community.receipts", 0, 1, 1100, 1120),
                              stats_queue("wms.south-community.receipts.dlq", 5, 0)]),
]

DEAD_LETTERED = (
    "# TYPE rabbitmq_global_messages_dead_lettered_rejected_total counter\n"
    'rabbitmq_global_messages_dead_lettered_rejected_total{{queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"}} {rejected}\n'
    "# TYPE rabbitmq_global_messages_dead_lettered_expired_total counter\n"
    'rabbitmq_global_messages_dead_lettered_expired_total{{queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"}} 4\n'
)


def mart(data_dir: Path, tmp_path: Path) -> dict:
    capture = tmp_path / "queues-2024-05-01.jsonl"
    capture.write_text("".join(json.dumps({"observed_at": at, "queues": queues}) + "\n" for at, queues in OBSERVATIONS))
    assert main(["--data-dir", str(data_dir), "ingest", "backlog", str(capture)]) == 0
    for minute, rejected in ((0, 7), (5, 10)):
        scrape = tmp_path / f"scrape-{minute}.txt"
        scrape.write_text(DEAD_LETTERED.format(rejected=rejected))
        observed = f"2024-05-01T12:0{minute}:00Z"
        assert main(["--data-dir", str(data_dir), "ingest", "backlog", str(scrape), "--observed-at", observed]) == 0
    con = build_backlog_models(data_dir)
    relation = con.sql("SELECT * FROM fct_backlog ORDER BY queue, observed_at")
    rows: dict = {}
    for values in relation.fetchall():
        row = dict(zip(relation.columns, values))
        rows.setdefault(row["queue"], []).append(row)
    con.close()
    return rows


def column(rows: list[dict], name: str) -> list:
    return [None if row[name] is None else round(row[name], 4) if isinstance(row[name], float) else row[name] for row in rows]


def test_drain_rate_time_to_drain_and_derived_rates(data_dir: Path, tmp_path: Path) -> None:
    receipts = mart(data_dir, tmp_path)["wms.south-community.receipts"]
    assert column(receipts, "backlog") == [100, 70, 40, 0]
    assert column(receipts, "interval_s") == [None, 60.0, 60.0, 60.0]
    assert column(receipts, "backlog_change") == [None, -30, -30, -40]
    assert column(receipts, "drain_rate_per_s") == [None, 0.5, 0.5, 0.5556]
    assert column(receipts, "time_to_drain_s") == [None, 140.0, 80.0, 0.0]
    # No broker rates in these snapshots: derived from the cumulative counters.
    assert column(receipts, "publish_rate") == [None, 1.0, 0.6667, 0.0]
    assert column(receipts, "deliver_rate") == [None, 2.0, 1.0, 0.6667]
    assert column(receipts, "publish_rate_derived") == [False, True, True, True]
    assert column(receipts, "no_consumer_with_messages") == [False, False, True, False]
    assert {(row["flow"], row["stage"], row["facility_id"]) for row in receipts} == {("receipt-sync", "receipt", "SOUTH-COMMUNITY")}


def test_growing_backlog_dead_letter_growth_and_node_counters(data_dir: Path, tmp_path: Path) -> None:
    rows = mart(data_dir, tmp_path)
    invoices = rows["ap.invoices"]
    assert column(invoices, "drain_rate_per_s") == [None, -0.1667]
    assert column(invoices, "time_to_drain_s") == [None, None]  # growing: never drains at this rate
    dlq = rows["wms.south-community.receipts.dlq"]
    assert column(dlq, "is_dead_letter") == [True] * 4
    assert column(dlq, "dead_letter_growth") == [None, 2, 3, 0]
    assert column(dlq, "dead_letter_growth_per_s") == [None, 0.0333, 0.05, 0.0]
    assert column(dlq, "flow") == ["receipt-sync"] * 4
    node = rows["*"]
    assert column(node, "is_aggregate") == [True, True]
    assert column(node, "dead_letter_growth") == [None, 3]
    assert column(node, "dead_letter_growth_per_s") == [None, 0.01]
    assert column(node, "backlog") == [None, None] and column(node, "no_consumer_with_messages") == [None, None]
