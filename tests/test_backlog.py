"""Backlog collector: every real sample shape parses to asserted values; captures, CSV, rejects, flows."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import click
import duckdb
import pytest

from collectors.broker_common import parse_timestamp
from r2p.cli import main

DATA = Path(__file__).parent / "data" / "broker"
SHARED = Path(__file__).parents[2] / "shared" / "data" / "external" / "broker"
OBSERVED = "2024-05-01T12:00:00Z"
UTC = dt.timezone.utc
AT = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def landing_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check what the collector lands; loading the warehouse is the warehouse's tests' job."""
    monkeypatch.setattr("collectors.backlog.report_ingest", lambda context, summary: click.echo(summary.line()))


def ingest(data_dir: Path, *paths: Path, options: tuple[str, ...] = ("--observed-at", OBSERVED)) -> int:
    return main(["--data-dir", str(data_dir), "ingest", "backlog", *map(str, paths), *options])


def landed(data_dir: Path, table: str, order: str) -> list[dict]:
    files = list((data_dir / "landing" / table).rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = con.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]}, hive_partitioning = false) ORDER BY {order}")
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def snapshots(data_dir: Path) -> list[dict]:
    rows = landed(data_dir, "backlog_snapshots", "observed_at, queue, consumer_group, partition")
    for row in rows:
        row["attributes"] = json.loads(row["attributes"])
    return rows


def rejects(data_dir: Path) -> list[dict]:
    return landed(data_dir, "rejects", "input, reject_index")


def batch_notes(data_dir: Path) -> list[dict]:
    return [json.loads(row["notes"] or "{}") for row in landed(data_dir, "ingest_batches", "input")]


def by_queue(rows: list[dict]) -> dict:
    return {(row["queue"], row["partition"]): row for row in rows}


def test_otel_collector_get_queues_with_and_without_message_stats(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "otelcol-contrib_rabbitmq_get_queues_response.json") == 0
    rows = by_queue(snapshots(data_dir))
    assert sorted(rows) == [("test2", None), ("webq1", None)]
    idle, busy = rows[("test2", None)], rows[("webq1", None)]
    assert (busy["observed_at"], busy["broker"], busy["vhost"]) == (AT, "rabbitmq", "dev")
    assert (busy["depth"], busy["ready"], busy["unacked"], busy["consumers"]) == (2, 1, 1, 1)
    assert (busy["publish_rate"], busy["deliver_rate"]) == (1.0, 1.6)
    assert busy["attributes"]["publish_total"] == 7830 and busy["attributes"]["deliver_get_total"] == 7828
    assert busy["lag"] is None and busy["consumer_group"] is None and busy["partition"] is None
    # No message_stats (no traffic) and no head timestamp: NULL, never a guessed zero.
    assert (idle["depth"], idle["consumers"], idle["publish_rate"], idle["deliver_rate"]) == (0, 0, None, None)
    assert idle["oldest_message_age_s"] is None
    assert idle["attributes"]["idle_since"] == "2022-01-18T16:25:07Z"
    assert not idle["is_dead_letter"] and idle["flow"] is None
    assert batch_notes(data_dir) == [{"observed_at": OBSERVED, "observed_at_option": 1, "unmapped_rows": 2}]


def test_telegraf_set1_inconsistency_is_recorded_not_hidden(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "telegraf_rabbitmq_set1_queues.json",
                  options=("--observed-at", "2015-11-01T12:00:00Z")) == 0
    rows = by_queue(snapshots(data_dir))
    reply = rows[("reply_a716f0523cd44941ad2ea6ce4a3869c3", None)]
    # As the maintainers edited it: messages 44, ready 32, unacked 44.
    assert (reply["depth"], reply["ready"], reply["unacked"], reply["consumers"]) == (44, 32, 44, 3)
    assert reply["attributes"]["depth_mismatch"] == -32
    assert reply["attributes"]["type"] == "quorum"
    # head_message_timestamp 1446362534 = 2015-11-01T07:22:14Z; unpadded idle_since hour.
    assert reply["oldest_message_age_s"] == 16666.0
    assert reply["attributes"]["idle_since"] == "2015-11-01T08:22:14Z"
    assert {queue: row["attributes"]["depth_mismatch"] for (queue, _), row in rows.items()} == {
        "reply_a716f0523cd44941ad2ea6ce4a3869c3": -32, "stream_queue_example": -20,
        "no-type-queue": -8, "invalid-type-queue": -12}
    assert batch_notes(data_dir)[0]["depth_mismatch"] == 4
    assert rejects(data_dir) == []


def test_telegraf_set2_queues_and_overview_rejected(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "telegraf_rabbitmq_set2_queues.json", DATA / "telegraf_rabbitmq_set2_overview.json") == 0
    rows = snapshots(data_dir)
    assert len(rows) == 5
    assert {(row["depth"], row["ready"], row["unacked"], row["consumers"]) for row in rows} == {(0, 0, 0, 1)}
    assert "attributes" not in rows[0]["attributes"] and rows[0]["attributes"]["consumer_capacity"] == 1
    [overview] = rejects(data_dir)
    assert overview["reason"] == "GET /api/overview holds node totals, not queues: capture GET /api/queues"
    assert overview["input"].endswith("telegraf_rabbitmq_set2_overview.json")


@pytest.mark.parametrize("text, expected", [
    ("2022-01-18 16:25:07", dt.datetime(2022, 1, 18, 16, 25, 7, tzinfo=UTC)),
    ("2015-11-01 8:22:14", dt.datetime(2015, 11, 1, 8, 22, 14, tzinfo=UTC)),
    ("2023-02-26T09:31:07.739+00:00", dt.datetime(2023, 2, 26, 9, 31, 7, 739000, tzinfo=UTC)),
    ("2024-05-01T14:00:00+0200", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
])
def test_idle_since_formats_across_versions(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected


def test_prometheus_detailed_queue_metrics(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "datadog_rabbitmq_prometheus_detailed-queue_coarse_metrics.txt") == 0
    rows = by_queue(snapshots(data_dir))
    assert sorted(rows) == [("queue1", None), ("queue2", None), ("queue3", None)]
    queue2 = rows[("queue2", None)]
    assert (queue2["vhost"], queue2["depth"], queue2["ready"], queue2["unacked"], queue2["consumers"]) == ("/", 1, 1, 0, None)
    assert queue2["attributes"] == {"process_reductions_total": 30466.0, "rabbitmq_cluster": "rabbit@54cfac2199f1",
                                    "rabbitmq_node": "rabbit@54cfac2199f1"}
    assert rows[("queue3", None)]["depth"] == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="RabbitMQ website sample (licence unchecked) lives only in ../shared")
def test_prometheus_dead_letter_counters(data_dir: Path) -> None:
    assert ingest(data_dir, SHARED / "rabbitmq-website_dead_lettered_metrics_scrape.txt") == 0
    [node] = snapshots(data_dir)
    assert (node["queue"], node["vhost"], node["depth"], node["consumers"]) == ("*", None, None, None)
    assert node["attributes"]["dead_lettered_total"] == 3
    assert node["attributes"]["dead_lettered"]["expired"] == {
        "rabbit_classic_queue/at_most_once": 0, "rabbit_classic_queue/disabled": 0,
        "rabbit_quorum_queue/at_least_once": 1, "rabbit_quorum_queue/at_most_once": 1,
        "rabbit_quorum_queue/disabled": 0}
    assert node["attributes"]["dead_lettered"]["confirmed"] == {"rabbit_quorum_queue/at_least_once": 1}


def test_kafka_describe_offsets(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_offsets_6rows.txt",
                  options=("--observed-at", OBSERVED, "--consumer-group", "my-group")) == 0
    rows = by_queue(snapshots(data_dir))
    assert {key: row["lag"] for key, row in rows.items()} == {
        ("topic1", 0): 1665, ("topic2", 0): 342753, ("topic2", 1): 282610,
        ("topic3", 0): 154289, ("topic3", 1): 157799, ("topic3", 2): 155157}
    topic2 = rows[("topic2", 0)]
    assert (topic2["broker"], topic2["consumer_group"], topic2["consumers"], topic2["depth"]) == ("kafka", "my-group", 1, None)
    assert topic2["attributes"] == {"current_offset": 460537, "log_end_offset": 803290, "client_id": "consumer1",
                                    "consumer_id": "consumer1-3fc8d6f1-581a-4472-bdf3-3515b4aee8c1", "host": "/127.0.0.1"}


def test_kafka_describe_offsets_three_rows_without_group(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_offsets_3rows.txt") == 0
    rows = snapshots(data_dir)
    assert [(row["queue"], row["partition"], row["lag"], row["consumer_group"]) for row in rows] == [
        ("my-topic", 0, 2, None), ("my-topic", 1, 1, None), ("my-topic", 2, 1, None)]


def test_kafka_describe_members_verbose(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_members_verbose.txt") == 0
    rows = snapshots(data_dir)
    assert [(row["queue"], row["partition"], row["consumers"], row["lag"], row["attributes"]["client_id"]) for row in rows] == [
        ("topic1", 0, 1, None, "consumer1"), ("topic2", 0, 1, None, "consumer1"), ("topic2", 1, 1, None, "consumer2"),
        ("topic3", 0, 1, None, "consumer2"), ("topic3", 1, 1, None, "consumer2"), ("topic3", 2, 1, None, "consumer4")]
    assert batch_notes(data_dir)[0]["members_without_partitions"] == 1


def test_kafka_describe_state(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_state.txt",
                  options=("--observed-at", OBSERVED, "--consumer-group", "my-group")) == 0
    [row] = snapshots(data_dir)
    assert (row["queue"], row["consumer_group"], row["partition"], row["consumers"]) == ("*", "my-group", None, 4)
    assert row["attributes"] == {"state": "Stable", "coordinator": "localhost:9092 (0)", "assignment_strategy": "range"}


def test_kafka_recent_output_with_group_column_and_unknowns(data_dir: Path, tmp_path: Path) -> None:
    # The shape recent Kafka prints: GROUP first, `-` for no committed offset and no member.
    text = (
        "\nConsumer group 'erp-receipts' has no active members.\n\n"
        "GROUP           TOPIC                          PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n"
        "erp-receipts    wms.south-community.receipts   0          120             180             60              -               -               -\n"
        "erp-receipts    wms.south-community.receipts   1          -               75              -               -               -               -\n"
    )
    path = tmp_path / "describe.txt"
    path.write_text(text)
    assert ingest(data_dir, path) == 0
    rows = snapshots(data_dir)
    assert [(row["consumer_group"], row["partition"], row["lag"], row["consumers"]) for row in rows] == [
        ("erp-receipts", 0, 60, 0), ("erp-receipts", 1, None, 0)]
    assert rows[1]["attributes"] == {"current_offset": None, "log_end_offset": 75}
    assert (rows[0]["flow"], rows[0]["stage"], rows[0]["facility_id"]) == ("receipt-sync", "receipt", "SOUTH-COMMUNITY")
    assert batch_notes(data_dir)[0]["groups_without_active_members"] == 1


def test_burrow_lag(data_dir: Path) -> None:
    assert ingest(data_dir, DATA / "telegraf_burrow_v3_consumer_group1_lag.json") == 0
    rows = snapshots(data_dir)
    assert [(row["vhost"], row["queue"], row["consumer_group"], row["partition"], row["lag"]) for row in rows] == [
        ("clustername1", "topicA", "group1", 0, 0), ("clustername1", "topicA", "group1", 1, 0),
        ("clustername1", "topicA", "group1", 2, 0)]
    assert rows[2]["attributes"] == {"committed_at_ms": 1515609490008, "committed_offset": 428636563, "group_status": "OK",
                                     "group_total_lag": 0, "owner": "kafka3", "status": "OK"}


def queue(name: str, messages: int | None, ready: int | None, unacked: int | None, consumers: int | None,
          **extra) -> dict:
    return {"name": name, "vhost": "/", "messages": messages, "messages_ready": ready,
            "messages_unacknowledged": unacked, "consumers": consumers, **extra}


def test_rabbitmq_capture_file_flows_dead_letters_and_bad_lines(data_dir: Path, tmp_path: Path) -> None:
    receipts = queue("wms.south-community.receipts", 12, 10, 2, 0,
                     arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "receipts-parked"},
                     head_message_timestamp=int(AT.timestamp()) - 90)
    parked = queue("receipts-parked", 3, 3, 0, 0, head_message_timestamp=int(AT.timestamp()) * 1000)
    invoices_dlq = queue("ap.invoices.dlq", 1, 1, 0, 0)
    lines = [
        json.dumps({"observed_at": "2024-05-01T12:00:00Z", "queues": [receipts, parked, invoices_dlq]}),
        json.dumps({"observed_at": "2024-05-01T12:01:00Z", "queues": [queue("wms.south-community.receipts", 5, 5, 0, 1)]}),
        json.dumps({"observed_at": "2024-05-01T12:02:00Z", "queues": [receipts]})[:40],
        json.dumps({"queues": []}),
        json.dumps({"observed_at": "2024-05-01T12:03:00Z", "queues": [
            queue("bad", -1, 0, 0, 0), {"vhost": "/", "messages": 1}, {"name": "empty", "vhost": "/"},
            queue("text", "7", 7, 0, 0)]}),
    ]
    path = tmp_path / "queues-2024-05-01.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert ingest(data_dir, path, options=()) == 0
    rows = snapshots(data_dir)
    assert [(row["observed_at"].isoformat(), row["queue"], row["depth"], row["consumers"], row["is_dead_letter"])
            for row in rows] == [
        ("2024-05-01T12:00:00+00:00", "ap.invoices.dlq", 1, 0, True),
        ("2024-05-01T12:00:00+00:00", "receipts-parked", 3, 0, True),
        ("2024-05-01T12:00:00+00:00", "wms.south-community.receipts", 12, 0, False),
        ("2024-05-01T12:01:00+00:00", "wms.south-community.receipts", 5, 1, False)]
    dlq, parked_row, source = rows[0], rows[1], rows[2]
    assert source["oldest_message_age_s"] == 90.0
    assert parked_row["oldest_message_age_s"] is None  # a millisecond head timestamp is unreadable, not a guess
    assert (source["flow"], source["stage"], source["source_system"], source["target_system"], source["facility_id"]) == (
        "receipt-sync", "receipt", "wms-south-community", "erp", "SOUTH-COMMUNITY")
    # A dead-letter queue named only by its source queue's arguments takes that queue's flow.
    assert parked_row["attributes"]["dead_letter_sources"] == ["wms.south-community.receipts"]
    assert (parked_row["flow"], parked_row["facility_id"]) == ("receipt-sync", "SOUTH-COMMUNITY")
    assert (dlq["flow"], dlq["stage"]) == ("invoice-sync", "invoice")
    assert [(r["line"], r["field"], r["reason"]) for r in rejects(data_dir)] == [
        (3, None, "invalid JSON (truncated?): Expecting property name enclosed in double quotes at column 41"),
        (4, "observed_at", "capture line without observed_at"),
        (5, "name", "queue without a name"),
        (5, "depth", "negative depth: -1"),
        (5, "messages", "no backlog figure: messages, ready, unacked, consumers and lag all missing"),
        (5, "depth", "depth is not an integer: '7'"),
    ]
    assert batch_notes(data_dir) == [{"head_message_timestamp_unreadable": 1, "observations": 3}]
    # Re-ingesting the same file lands nothing new.
    assert ingest(data_dir, path, options=()) == 0
    assert len(snapshots(data_dir)) == 4 and len(rejects(data_dir)) == 6


def test_kafka_capture_file_blocks(data_dir: Path, tmp_path: Path) -> None:
    table = DATA.joinpath("kafka-docs_consumer-groups_describe_offsets_3rows.txt").read_text()
    text = (
        "# observed_at 2024-05-01T12:00:00Z\n" + table + "\n"
        "# observed_at 2024-05-01T12:01:00Z\n" + table.replace("consumer-2\n", "consumer-2\nmy-topic  x  1  2  1  c  h  c\n")
    )
    path = tmp_path / "consumer-groups-2024-05-01.txt"
    path.write_text(text)
    assert ingest(data_dir, path, options=("--consumer-group", "my-group")) == 0
    rows = snapshots(data_dir)
    assert [(row["observed_at"].minute, row["partition"], row["lag"], row["consumer_group"]) for row in rows] == [
        (0, 0, 2, "my-group"), (0, 1, 1, "my-group"), (0, 2, 1, "my-group"),
        (1, 0, 2, "my-group"), (1, 1, 1, "my-group"), (1, 2, 1, "my-group")]
    [bad] = rejects(data_dir)
    assert (bad["line"], bad["field"], bad["reason"]) == (12, "PARTITION", "PARTITION is not a number: 'x'")
    assert text.splitlines()[11] == bad["raw"]
    assert batch_notes(data_dir)[0]["observations"] == 2


def test_csv_with_documented_columns(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "backlog.csv"
    path.write_text(
        "observed_at,broker,vhost,queue,consumer_group,partition,depth,ready,unacked,consumers,lag,"
        "oldest_message_age_s,is_dead_letter,flow,region\n"
        "2024-05-01T12:00:00Z,rabbitmq,/,wms.north-general.receipts,,,40,,,0,,310.5,,,east\n"
        "2024-05-01T12:00:00Z,kafka,,erp.payments,ap-sync,3,,,,1,17,,false,custom-flow,\n"
        "2024-05-01T12:00:00Z,rabbitmq,/,odd-name,,,1,1,0,1,,,true,,\n"
        "2024-05-01T12:00:00Z,rabbitmq,/,q,,,-4,,,,,,,,\n"
        "2024-05-01T12:00:00Z,activemq,/,q,,,4,,,,,,,,\n"
        "yesterday,rabbitmq,/,q,,,4,,,,,,,,\n"
    )
    assert ingest(data_dir, path, options=()) == 0
    rows = by_queue(snapshots(data_dir))
    north = rows[("wms.north-general.receipts", None)]
    assert (north["depth"], north["ready"], north["unacked"], north["consumers"], north["lag"]) == (40, None, None, 0, None)
    assert (north["oldest_message_age_s"], north["facility_id"], north["attributes"]) == (310.5, "NORTH-GENERAL", {"region": "east"})
    payments = rows[("erp.payments", 3)]
    assert (payments["consumer_group"], payments["lag"], payments["flow"], payments["stage"]) == ("ap-sync", 17, "custom-flow", None)
    assert rows[("odd-name", None)]["is_dead_letter"] is True
    assert [(r["line"], r["field"], r["reason"]) for r in rejects(data_dir)] == [
        (5, "depth", "negative depth: -4"),
        (6, "broker", "broker must be rabbitmq or kafka, not 'activemq'"),
        (7, "observed_at", "not a timestamp: 'yesterday'"),
    ]


def test_truncated_json_html_and_modification_time(data_dir: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "queues.json"
    truncated.write_bytes(DATA.joinpath("otelcol-contrib_rabbitmq_get_queues_response.json").read_bytes()[:3000])
    html = tmp_path / "login.html"
    html.write_text("<!DOCTYPE html><html><body>RabbitMQ Management login</body></html>\n")
    single = tmp_path / "set2.json"
    shutil.copy(DATA / "telegraf_rabbitmq_set2_queues.json", single)
    os.utime(single, (1714564800, 1714564800))  # 2024-05-01T12:00:00Z
    assert ingest(data_dir, truncated, html, single, options=()) == 0
    reasons = {Path(r["input"]).name: (r["reason"], r["byte_offset"]) for r in rejects(data_dir)}
    assert reasons["queues.json"] == ("invalid JSON (truncated?): Unterminated string starting at at line 106 column 9", 2997)
    assert reasons["login.html"][0].startswith("unrecognised content")
    rows = snapshots(data_dir)
    assert {row["observed_at"] for row in rows} == {AT} and len(rows) == 5
    assert {"observed_at": OBSERVED, "observed_at_file_mtime": 1} in [
        {k: v for k, v in n.items() if k.startswith("observed_at")} for n in batch_notes(data_dir)]


def test_user_flow_config(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "flows.toml"
    config.write_text('[dead_letter]\nname_patterns = ["*.graveyard"]\n\n[[flows]]\npattern = "topic2"\n'
                      'flow = "po-out"\nstage = "po_transmission"\nsource_system = "erp"\ntarget_system = "edi"\n'
                      'facility = "NORTH-GENERAL"\n')
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_offsets_6rows.txt",
                  options=("--config", str(config), "--observed-at", OBSERVED)) == 0
    mapped = {(row["queue"], row["flow"], row["facility_id"]) for row in snapshots(data_dir)}
    assert mapped == {("topic1", None, None), ("topic2", "po-out", "NORTH-GENERAL"), ("topic3", None, None)}


def test_bad_flow_config_is_one_clear_error(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "flows.toml"
    config.write_text('[[flows]]\npattern = "x"\nflow = "y"\nstage = "shipping"\n')
    assert ingest(data_dir, DATA / "kafka-docs_consumer-groups_describe_state.txt", options=("--config", str(config))) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"r2p: error: backlog config {config}: flows.0.stage: Input should be 'requisition'")
    assert not (data_dir / "landing" / "backlog_snapshots").exists()


def test_shared_dead_letter_queue_takes_no_single_flow(data_dir: Path, tmp_path: Path) -> None:
    into_dlq = {"x-dead-letter-exchange": "erp.integration.dlx", "x-dead-letter-routing-key": "erp.integration.dlq"}
    queues = [queue("wms.north-general.receipts", 0, 0, 0, 2, arguments=into_dlq),
              queue("edi.inbound.acks", 0, 0, 0, 2, arguments=into_dlq),
              queue("erp.integration.dlq", 4, 4, 0, 0)]
    path = tmp_path / "queues-2024-05-01.jsonl"
    path.write_text(json.dumps({"observed_at": OBSERVED, "queues": queues}) + "\n")
    assert ingest(data_dir, path, options=()) == 0
    dlq = by_queue(snapshots(data_dir))[("erp.integration.dlq", None)]
    assert dlq["is_dead_letter"] is True and dlq["flow"] is None
    assert dlq["attributes"]["dead_letter_sources"] == ["edi.inbound.acks", "wms.north-general.receipts"]
