"""The demo health-system simulator: determinism, valid real formats, linear volume, visible incidents."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator import SimulationConfig, simulate
from simulator.cli import simulate as simulate_command
from simulator.model import LOCAL_ZONE
from simulator.writers.transactions import COLUMNS

CONFIG = SimulationConfig(seed=7, days=10, scale=0.04, snapshot_interval_s=600)
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim")
    simulate(CONFIG, out)
    return out, json.loads((out / "manifest.json").read_text())


def incident(manifest: dict, kind: str) -> dict:
    return next(i for i in manifest["incidents"] if i["kind"] == kind)


def window(item: dict) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.fromisoformat(item["start"].replace("Z", "+00:00")),
            dt.datetime.fromisoformat(item["end"].replace("Z", "+00:00")))


def rows(out: Path, system: str) -> list[dict]:
    with open(out / "transactions" / f"{system}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def erp_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=LOCAL_ZONE).astimezone(UTC)


def iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def broken_lines(manifest: dict, prefix: str) -> set[tuple[str, int]]:
    return {(b["file"], b["line"]) for b in manifest["broken_records"] if b["file"].startswith(prefix)}


def all_spans(out: Path, manifest: dict):
    """(service, span) of every distinct span: repeated batches count once, as the collector must."""
    broken = broken_lines(manifest, "traces/")
    seen = set()
    for path in sorted((out / "traces").glob("spans-*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if (f"traces/{path.name}", number) in broken:
                continue
            for resource_spans in json.loads(line)["resourceSpans"]:
                service = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}["service.name"]
                for scope_spans in resource_spans["scopeSpans"]:
                    for span in scope_spans["spans"]:
                        if (span["traceId"], span["spanId"]) not in seen:
                            seen.add((span["traceId"], span["spanId"]))
                            yield service["stringValue"], span


def attributes(span: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def interchanges(path: Path) -> list[tuple[int, list[list[str]]]]:
    """(first line number, segments split into elements) per ISA...IEA."""
    result, current, start = [], [], 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert line.endswith("~"), f"{path.name}:{number} lacks the ~ terminator"
        elements = line[:-1].split("*")
        if elements[0] == "ISA":
            current, start = [], number
        current.append(elements)
        if elements[0] == "IEA":
            result.append((start, current))
    return result


def file_hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# Determinism and volume.


def test_same_seed_gives_byte_identical_output_and_another_seed_does_not(tmp_path):
    small = SimulationConfig(seed=3, days=3, scale=0.02, snapshot_interval_s=3600)
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(small, first)
    simulate(small, second)
    simulate(SimulationConfig(seed=4, days=3, scale=0.02, snapshot_interval_s=3600), other)
    hashes = file_hashes(first)
    assert len(hashes) == 1 + 3 * 4 + 9  # manifest, 4 per-day files x 3 days, 9 CSV exports
    assert hashes == file_hashes(second)
    different = {name for name, digest in file_hashes(other).items() if hashes.get(name) != digest}
    assert "transactions/procurement.csv" in different and "traces/spans-2025-01-06.jsonl" in different


def test_volume_scales_linearly_with_scale_and_days(tmp_path):
    def totals(name: str, **kwargs) -> dict:
        config = SimulationConfig(seed=5, snapshot_interval_s=3600, faults=False, **kwargs)
        return simulate(config, tmp_path / name).totals

    base = totals("base", days=2, scale=0.05)
    double_scale = totals("scale", days=2, scale=0.1)
    double_days = totals("days", days=4, scale=0.05)
    assert double_scale["requisitions"] / base["requisitions"] == pytest.approx(2, rel=0.1)
    assert double_scale["spans"] / base["spans"] == pytest.approx(2, rel=0.15)
    assert double_scale["transaction_events"] / base["transaction_events"] == pytest.approx(2, rel=0.15)
    # Monday to Thursday: twice the requisitions; later days also carry the earlier days' follow-ups.
    assert double_days["requisitions"] / base["requisitions"] == pytest.approx(2, rel=0.1)
    assert 2.0 < double_days["transaction_events"] / base["transaction_events"] < 3.5


def test_cli_writes_the_manifest_and_reports_rates(tmp_path):
    result = CliRunner().invoke(simulate_command, ["--seed", "2", "--days", "2", "--scale", "0.02",
                                                   "--snapshot-interval", "3600", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert re.search(r"wrote .*: \d+ requisitions, \d+ transaction events, \d+ spans", result.output)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 2 and manifest["config"]["days"] == 2


# Formats.


def test_manifest_lists_files_with_counts_incidents_and_four_broken_records(run):
    out, manifest = run
    assert manifest["config"]["start"] == "2025-01-06"
    for name, info in manifest["files"].items():
        assert (out / name).exists(), name
    csv_rows = sum(1 for _ in open(out / "transactions" / "erp.csv")) - 1
    assert manifest["files"]["transactions/erp.csv"]["records"] == csv_rows
    kinds = {i["kind"] for i in manifest["incidents"]}
    assert kinds == {"late_receipts", "approval_before_budget_check", "erp_throttling", "missing_acks",
                     "legacy_adapter_failure", "supplier_status_drift", "duplicate_delivery", "out_of_order",
                     "clock_skew", "stalled_approvals"}
    assert sorted(b["why"].split()[0] for b in manifest["broken_records"]) == [
        "IEA02", "negative", "truncated", "unparseable"]


def test_otlp_lines_are_collector_file_exporter_traces_data(run):
    out, manifest = run
    bad = broken_lines(manifest, "traces/")
    assert len(bad) == 1
    (name, line_number), = bad
    with pytest.raises(json.JSONDecodeError):
        json.loads((out / name).read_text().splitlines()[line_number - 1])
    kinds, errors, consumers, count = set(), 0, 0, 0
    for service, span in all_spans(out, manifest):
        count += 1
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
        assert span["startTimeUnixNano"].isdigit() and int(span["endTimeUnixNano"]) > int(span["startTimeUnixNano"])
        kinds.add(span["kind"])
        attrs = attributes(span)
        assert attrs["procurement.facility.id"] and attrs["procurement.stage"]
        if span["status"].get("code") == 2:
            errors += 1
            event = next(e for e in span["events"] if e["name"] == "exception")
            assert {a["key"] for a in event["attributes"]} == {"exception.type", "exception.message",
                                                                "exception.stacktrace"}
        if span["kind"] == 5:
            consumers += 1
            assert len(span["links"]) == 1 and attrs["messaging.operation.type"] == "process"
    assert kinds == {1, 2, 3, 4, 5}
    assert errors > 0 and consumers > 0
    assert count == sum(info["records"] for name, info in manifest["files"].items() if name.startswith("traces/"))
    assert duplicate_span_count(out, manifest) > 0


def duplicate_span_count(out: Path, manifest: dict) -> int:
    """Spans in the repeated lines (the same batch written twice), which count once in the manifest."""
    total = 0
    for name, info in manifest["files"].items():
        if info.get("duplicate_lines"):
            lines = (out / name).read_text().splitlines()
            seen = set()
            for line in lines:
                if line in seen:
                    total += sum(len(scope["spans"]) for resource in json.loads(line)["resourceSpans"]
                                 for scope in resource["scopeSpans"])
                seen.add(line)
    return total


def test_x12_envelopes_have_consistent_control_numbers_except_the_broken_one(run):
    out, manifest = run
    bad = broken_lines(manifest, "edi/")
    found_bad, types = set(), {}
    for path in sorted((out / "edi").glob("x12-*.edi")):
        for start, segments in interchanges(path):
            isa, gs, st, se, ge, iea = segments[0], segments[1], segments[2], segments[-3], segments[-2], segments[-1]
            assert len("*".join(isa)) == 105  # fixed-width ISA (without the terminator)
            assert (gs[0], st[0], se[0], ge[0]) == ("GS", "ST", "SE", "GE")
            assert gs[6] == ge[2] and st[2] == se[2] and int(se[1]) == len(segments) - 4 and ge[1] == iea[1] == "1"
            if isa[13] != iea[2]:
                found_bad.add((f"edi/{path.name}", start))
            types[st[1]] = types.get(st[1], 0) + 1
    assert found_bad == bad
    assert set(types) == {"850", "855", "856", "810"}


def test_csv_exports_match_exports_md_and_their_timestamp_formats(run):
    out, manifest = run
    doc = (Path(__file__).parents[1] / "simulator" / "EXPORTS.md").read_text()
    parsers = {"procurement": ("event_timestamp", dt.datetime.fromisoformat),
               "erp": ("POSTING_TIME", erp_time),
               "legacy-erp": ("TXNTIME_MS", lambda v: dt.datetime.fromtimestamp(int(v) / 1000, UTC)),
               "wms": ("event_time_utc", iso), "ap": ("event_time", dt.datetime.fromisoformat)}
    broken = broken_lines(manifest, "transactions/")
    failures = set()
    for path in sorted((out / "transactions").glob("*.csv")):
        kind = "wms" if path.stem.startswith("wms-") else path.stem
        assert [c for c in COLUMNS[kind] if f"| `{c}` |" not in doc] == []
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            assert tuple(next(reader)) == COLUMNS[kind]
            column, parse = parsers[kind]
            index = COLUMNS[kind].index(column)
            for number, row in enumerate(reader, 2):
                try:
                    parse(row[index])
                except ValueError:
                    failures.add((f"transactions/{path.name}", number))
    assert failures == broken and len(broken) == 1


def test_backlog_snapshots_are_management_api_bodies_and_describe_output(run):
    out, manifest = run
    negative = broken_lines(manifest, "backlog/")
    assert len(negative) == 1
    seen_negative, names = set(), set()
    for path in sorted((out / "backlog" / "rabbitmq").glob("queues-*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            observation = json.loads(line)
            assert observation["observed_at"].endswith("Z")
            for queue in observation["queues"]:
                names.add(queue["name"])
                assert queue["messages"] == queue["messages_ready"] + queue["messages_unacknowledged"]
                if queue["messages"] < 0:
                    seen_negative.add((f"backlog/rabbitmq/{path.name}", number))
                if not queue["name"].endswith(".dlq"):
                    assert queue["arguments"]["x-dead-letter-exchange"].endswith(".dlx")
    assert seen_negative == negative
    assert {"wms.south-community.receipts", "erp.po.outbound", "erp.integration.dlq"} <= names
    text = (out / "backlog" / "kafka" / "consumer-groups-2025-01-06.txt").read_text()
    blocks = text.split("# observed_at ")[1:]
    assert len(blocks) == 3 * 144
    header = re.compile(r"GROUP +TOPIC +PARTITION +CURRENT-OFFSET +LOG-END-OFFSET +LAG +CONSUMER-ID +HOST +CLIENT-ID")
    for block in blocks:
        lines = [line for line in block.splitlines()[1:] if line]
        assert header.fullmatch(lines[-4])
        for row in lines[-3:]:
            cells = row.split()
            assert int(cells[4]) - int(cells[3]) == int(cells[5])


# Each incident is visible in the raw output.


def receipt_lags(out: Path, facility_slug: str) -> list[tuple[dt.datetime, float]]:
    posted = {}
    for row in rows(out, f"wms-{facility_slug}"):
        if row["txn_type"] == "RECEIPT_POSTED":
            posted[row["receipt_no"]] = iso(row["event_time_utc"])
    result = []
    for row in rows(out, "erp"):
        if row["EVENT_CODE"] == "RECEIPT_SYNCED" and row["GOODS_RECEIPT"] in posted:
            at = posted[row["GOODS_RECEIPT"]]
            result.append((at, (erp_time(row["ENTRY_TIME"]) - at).total_seconds() / 3600))
    return result


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def test_late_receipts_lag_over_four_hours_in_the_window_only(run):
    out, manifest = run
    item = incident(manifest, "late_receipts")
    start, end = window(item)
    lags = receipt_lags(out, item["facility"].lower())
    inside = [lag for at, lag in lags if start <= at < end]
    outside = [lag for at, lag in lags if not start <= at < end]
    assert len(inside) >= 5 and len(outside) >= 5
    assert p95(inside) > item["expected"]["p95_lag_hours_over"]
    assert p95(outside) < item["expected"]["p95_lag_hours_outside_under"]
    exceptions = [r for r in rows(out, "ap") if r["exception_reason"] == "missing_receipt"
                  and r["entity"] == item["facility"]]
    assert len(exceptions) >= item["observed"]["missing_receipt_exceptions"] > 0
    depths = []
    for path in sorted((out / "backlog" / "rabbitmq").glob("queues-*.jsonl")):
        for line in path.read_text().splitlines():
            observation = json.loads(line)
            queue = next(q for q in observation["queues"] if q["name"] == item["queue"])
            depths.append((iso(observation["observed_at"]), queue["messages"]))
    assert max(d for t, d in depths if start <= t < end) >= 3
    assert max(d for t, d in depths if not start <= t < end + dt.timedelta(hours=1)) <= 2


def test_missing_acks_from_the_supplier_in_the_window(run):
    out, manifest = run
    item = incident(manifest, "missing_acks")
    start, end = window(item)
    sender = f"SUP{item['supplier'][1:]}EDI"
    acks_in, acks_out, orders_in = 0, 0, 0
    for path in sorted((out / "edi").glob("x12-*.edi")):
        for _, segments in interchanges(path):
            gs = segments[1]
            sent = dt.datetime.strptime(gs[4] + gs[5], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            inside = start <= sent < end
            if segments[2][1] == "855" and gs[2] == sender:
                acks_in += inside
                acks_out += not inside
            if segments[2][1] == "850" and gs[3] == sender and inside:
                orders_in += 1
    assert acks_in == 0 and acks_out > 0
    assert orders_in == item["observed"].get("count_850_over", 0)


def test_erp_throttling_429_rate_in_peak_hour_and_dead_letters(run):
    out, manifest = run
    item = incident(manifest, "erp_throttling")
    start, end = window(item)
    peak, limited_peak, limited_elsewhere = 0, 0, 0
    for service, span in all_spans(out, manifest):
        if service != "erp-api" or span["kind"] != 2:
            continue
        status = attributes(span).get("http.response.status_code")
        at = dt.datetime.fromtimestamp(int(span["startTimeUnixNano"]) / 1e9, UTC)
        local = at.astimezone(LOCAL_ZONE)
        in_peak = start <= at < end and local.weekday() < 5 and local.hour == 9
        if in_peak:
            peak += 1
            limited_peak += status == "429"
        else:
            limited_elsewhere += status == "429"
    assert peak >= 20
    assert limited_peak / peak > item["expected"]["rate_429_over"]
    assert limited_elsewhere == 0
    assert limited_peak == item["observed"]["erp_429_in_window"]
    dlq = []
    for path in sorted((out / "backlog" / "rabbitmq").glob("queues-*.jsonl")):
        for line in path.read_text().splitlines():
            observation = json.loads(line)
            queue = next(q for q in observation["queues"] if q["name"] == "erp.integration.dlq")
            dlq.append((iso(observation["observed_at"]), queue["messages"]))
    assert max(d for t, d in dlq if start <= t < end) >= 1
    assert max(d for t, d in dlq if t < start) == 0


def test_legacy_adapter_errors_concentrate_in_its_outage(run):
    out, manifest = run
    item = incident(manifest, "legacy_adapter_failure")
    start, end = window(item)
    counts = {True: [0, 0], False: [0, 0]}
    for service, span in all_spans(out, manifest):
        if service == "legacy-erp-adapter" and span["kind"] == 3:
            # The adapter's clock is the legacy ERP's: 3 minutes slow; a window is days long.
            at = dt.datetime.fromtimestamp(int(span["startTimeUnixNano"]) / 1e9, UTC)
            inside = start <= at < end
            counts[inside][0] += 1
            counts[inside][1] += span["status"].get("code") == 2
    assert counts[True][1] / counts[True][0] > item["expected"]["error_rate_over"]
    assert counts[False][1] / counts[False][0] < item["expected"]["error_rate_outside_under"]


def test_supplier_status_drifts_between_erp_and_procurement(run):
    out, manifest = run
    item = incident(manifest, "supplier_status_drift")
    start, end = window(item)
    blocked_erp = [erp_time(r["POSTING_TIME"]) for r in rows(out, "erp")
                   if r["OBJECT_KEY"] == item["supplier"] and r["STATUS"] == "BLOCKED"]
    blocked_procurement = [iso(r["event_timestamp"]) for r in rows(out, "procurement")
                           if r["entity_id"] == item["supplier"] and r["state"] == "blocked"]
    assert blocked_erp == [start + dt.timedelta(hours=10)]
    assert len(blocked_procurement) == 1 and blocked_procurement[0] >= end
    lags = {}
    for path in sorted((out / "backlog" / "kafka").glob("consumer-groups-*.txt")):
        for block in path.read_text().split("# observed_at ")[1:]:
            observed = iso(block.splitlines()[0])
            for line in block.splitlines():
                if line.startswith("procurement-supplier-sync "):
                    lags[observed] = lags.get(observed, 0) + int(line.split()[5])
    assert max(lag for t, lag in lags.items() if start <= t < end) >= 5
    assert max(lag for t, lag in lags.items() if t >= end + dt.timedelta(hours=1)) <= 2


def test_duplicates_repeat_the_same_event_ids_in_the_window(run):
    out, manifest = run
    item = incident(manifest, "duplicate_delivery")
    start, end = window(item)
    seen, repeated = set(), []
    for row in rows(out, "erp"):
        if row["EVENT_UUID"] in seen:
            repeated.append(erp_time(row["POSTING_TIME"]))
        seen.add(row["EVENT_UUID"])
    assert len(repeated) == item["observed"]["duplicate_rows_over"] > 0
    assert all(start <= at < end for at in repeated)
    assert item["observed"]["duplicate_otlp_lines"] > 0


def test_out_of_order_and_budget_race_and_clock_skew(run):
    out, manifest = run
    procurement = rows(out, "procurement")
    last_level, approved = {}, {}
    for row in procurement:
        if row["event_name"] == "LEVEL_APPROVED":
            last_level[row["entity_id"]] = max(last_level.get(row["entity_id"], ""), row["logged_timestamp"])
        if row["event_name"] == "REQUISITION_APPROVED":
            approved[row["entity_id"]] = row
    reordered = [rid for rid, row in approved.items()
                 if rid in last_level and iso(row["logged_timestamp"]) < iso(last_level[rid])]
    assert len(reordered) == incident(manifest, "out_of_order")["observed"]["count_over"] > 0

    race = incident(manifest, "approval_before_budget_check")
    checks = {r["OBJECT_KEY"]: erp_time(r["POSTING_TIME"]) for r in rows(out, "erp")
              if r["EVENT_CODE"].startswith("BUDGET_CHECK_")}
    early = [rid for rid, row in approved.items()
             if rid in checks and iso(row["event_timestamp"]) < checks[rid] - dt.timedelta(seconds=1)]
    assert len(early) == race["observed"]["count_over"] > 0
    start, end = window(race)
    assert all(start <= iso(approved[rid]["event_timestamp"]) < end + dt.timedelta(hours=1) for rid in early)

    skew = next(i for i in manifest["incidents"] if i["kind"] == "clock_skew" and i["system"].startswith("wms-"))
    skewed = statistics.median(lag for _, lag in receipt_lags(out, skew["system"][4:]))
    normal = statistics.median(lag for _, lag in receipt_lags(out, "north-general"))
    assert skewed * 60 < -skew["expected"]["skew_minutes"] + 1 < 0 < normal * 60 < 2


def test_stalled_approvals_wait_past_their_sla(run):
    out, manifest = run
    procurement = rows(out, "procurement")
    for item in [i for i in manifest["incidents"] if i["kind"] == "stalled_approvals"]:
        level = f"level {item['approval_level']}"
        samples = item["observed"]["sample_requisitions"]
        assert item["observed"]["count_over"] >= len(samples) > 0
        for rid in samples:
            events = [r for r in procurement if r["entity_id"] == rid and r["note"] == level]
            requested = min(iso(r["event_timestamp"]) for r in events if r["event_name"] == "APPROVAL_REQUESTED")
            decided = [iso(r["event_timestamp"]) for r in events if r["event_name"] != "APPROVAL_REQUESTED"]
            priority = events[0]["priority"]
            waited_until = min(decided) if decided else window(item)[1]
            assert waited_until - requested > dt.timedelta(hours=item["expected"]["sla_hours"][priority])
            assert events[0]["user"] == item["waiting_on"] or any(r["user"] == item["waiting_on"] for r in events)


# The project's own collectors read the output with no rejects but the deliberate ones.


def test_x12_collector_rejects_only_the_broken_interchange(run):
    from collectors import x12

    out, manifest = run
    (broken_file, _), = broken_lines(manifest, "edi/")
    sets = 0
    for path in sorted((out / "edi").glob("x12-*.edi")):
        parsed = x12.parse(path.read_text())
        sets += len(parsed.sets)
        expected = 1 if f"edi/{path.name}" == broken_file else 0
        assert len(parsed.problems) == expected, (path.name, [p.reason for p in parsed.problems])
    totals = manifest["totals"]
    assert sets == totals["interchanges"] - 1


def test_backlog_collector_rejects_only_the_negative_depth(run):
    from collectors import backlog
    from collectors.broker_flows import load_config
    from collectors.broker_landing import validate

    out, manifest = run
    config = load_config()
    rejected = set()
    for path in sorted((out / "backlog").rglob("*.*")):
        parsed = backlog.parse_file(path, path.read_bytes(), None, None)
        assert parsed.problems == [] and parsed.candidates
        for candidate in parsed.candidates:
            _, problem = validate(candidate, config, parsed)
            if problem is not None:
                rejected.add((str(path.relative_to(out)), problem.line, problem.reason))
    (file, line), = broken_lines(manifest, "backlog/")
    assert rejected == {(file, line, "negative depth: -3")}
