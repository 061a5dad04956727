"""Trace collector, file ingest: every OTLP sample shape, mapping, inheritance, redaction, rejects."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from collectors.files import ingest_files
from collectors.otlp_config import load_config
from collectors.traces import SOURCE, collect_file
from r2p.errors import UserError
from r2p.landing import LandingZone
from samples import warehouse_rows

DATA = Path(__file__).parent / "data" / "otlp"
SHARED = Path(__file__).parents[2] / "shared" / "data" / "external" / "otlp"


def ingest(data_dir: Path, *paths: Path, config_path: Path | None = None):
    """Land ``paths`` under ``data_dir``; returns the run summary."""
    config = load_config(config_path)
    return ingest_files(SOURCE, list(paths), LandingZone(data_dir), lambda path, writer: collect_file(path, writer, config))


def rows(data_dir: Path, table: str, order: str = "") -> list[dict]:
    """Every landed row of ``table`` as dicts (batch_id dropped), in ``order``."""
    files = list((data_dir / "landing" / table).rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = con.sql(
        f"SELECT * EXCLUDE (batch_id) FROM read_parquet({[str(f) for f in files]}, hive_partitioning = false)"
        + (f" ORDER BY {order}" if order else "")
    )
    names = relation.columns
    return [dict(zip(names, row)) for row in relation.fetchall()]


# (file, spans, events, links, rejects): every sample in tests/data/otlp.
EXPECTED_COUNTS = [
    ("otel-proto_examples_trace.json", 1, 0, 0, 0),
    ("otel-proto_pr_trace.protobuf-bin", 1, 0, 0, 0),
    ("jaeger_memory_otel_traces_01.json", 4, 8, 8, 0),
    ("jaeger_integration_example_trace.json", 5, 10, 0, 0),
    ("jaeger_integration_link_attributes_trace.json", 1, 0, 3, 0),
    ("jaeger_integration_scope_attributes_trace.json", 1, 2, 0, 0),
    ("jaeger_apiv3_GetTrace_response.json", 1, 0, 0, 0),
    ("otlp2parquet_trace.json", 2, 0, 0, 0),
    ("otlp2parquet_trace.pb", 2, 0, 0, 0),
    ("otlp2parquet_traces.jsonl", 19, 6, 0, 0),
    ("otlp2parquet_traces.pb", 19, 6, 0, 0),
    ("otel-desktop-viewer_checkout_traces.json", 6, 1, 0, 0),
    ("otlp2parquet_invalid_trace_invalid_kind.json", 0, 0, 0, 1),
    ("otlp2parquet_invalid_trace_mixed_encoding.json", 0, 0, 0, 1),
    ("otel-proto_examples_logs.json", 0, 0, 0, 1),
    ("otel-proto_pr_metrics.protobuf-bin", 0, 0, 0, 1),
]


def test_every_sample_is_covered():
    assert {name for name, *_ in EXPECTED_COUNTS} == {p.name for p in DATA.iterdir() if p.name != "SOURCES.md"}


@pytest.mark.parametrize(("name", "spans", "events", "links", "rejects"), EXPECTED_COUNTS)
def test_sample_counts(tmp_path, name, spans, events, links, rejects):
    summary = ingest(tmp_path, DATA / name)
    assert (summary.accepted["spans"], summary.accepted["span_events"], summary.accepted["span_links"]) == (
        spans, events, links)
    assert summary.rejected == rejects
    assert len(rows(tmp_path, "spans")) == spans
    assert len(rows(tmp_path, "rejects")) == rejects


def test_canonical_example_upper_case_hex_scope_and_resource(tmp_path):
    ingest(tmp_path, DATA / "otel-proto_examples_trace.json")
    [span] = rows(tmp_path, "spans")
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert span["span_id"] == "eee19b7ec3c1b174"
    assert span["parent_span_id"] == "eee19b7ec3c1b173"
    assert span["name"] == "I'm a server span"
    assert span["kind"] == "server"
    assert span["status_code"] == "unset"
    assert span["start_time"].isoformat() == "2018-12-13T14:51:00+00:00"
    assert span["duration_ms"] == 1000.0
    assert span["service_name"] == "my.service"
    assert (span["scope_name"], span["scope_version"]) == ("my.library", "1.0.0")
    assert json.loads(span["attributes"]) == {"my.span.attr": "some value"}
    assert json.loads(span["resource_attributes"]) == {"service.name": "my.service"}
    assert json.loads(span["scope_attributes"]) == {"my.scope.attribute": "some scope attribute"}


def test_protobuf_equals_its_json(tmp_path):
    ingest(tmp_path / "json", DATA / "otel-proto_examples_trace.json")
    ingest(tmp_path / "pb", DATA / "otel-proto_pr_trace.protobuf-bin")
    assert rows(tmp_path / "json", "spans") == rows(tmp_path / "pb", "spans")


def test_base64_ids_and_enum_names_match_the_protobuf(tmp_path):
    ingest(tmp_path / "jsonl", DATA / "otlp2parquet_traces.jsonl")
    ingest(tmp_path / "pb", DATA / "otlp2parquet_traces.pb")
    from_json = rows(tmp_path / "jsonl", "spans", "trace_id, span_id")
    assert from_json == rows(tmp_path / "pb", "spans", "trace_id, span_id")
    first = next(span for span in from_json if span["span_id"] == "5a69fc178ba8f837")
    # "aYQql5kRA2zz6CIIbsqgBw==" / "Wmn8F4uo+Dc=" / "ROYdmrMPywY=" in the file
    assert first["trace_id"] == base64.b64decode("aYQql5kRA2zz6CIIbsqgBw==").hex()
    assert first["parent_span_id"] == "44e61d9ab30fcb06"
    assert first["kind"] == "internal"
    assert first["status_code"] == "unset"
    assert first["service_name"] == "product-catalog"
    assert json.loads(first["attributes"]) == {
        "rpc.system": "grpc", "rpc.service": "oteldemo.Product-CatalogService", "rpc.method": "Get",
        "rpc.grpc.status_code": 0,
    }
    assert json.loads(first["resource_attributes"])["telemetry.sdk.version"] == "1.37.0"
    assert rows(tmp_path / "jsonl", "span_events", "trace_id, span_id, event_index") == rows(
        tmp_path / "pb", "span_events", "trace_id, span_id, event_index")


def test_all_features_fixture(tmp_path):
    ingest(tmp_path, DATA / "jaeger_memory_otel_traces_01.json")
    spans = rows(tmp_path, "spans", "span_id")
    assert [(s["span_id"], s["kind"], s["status_code"], s["trace_state"], s["flags"]) for s in spans] == [
        ("0000000000000002", "server", "error", "state.2", 1),
        ("0000000000000003", "client", "error", "state.3", 1),
        ("0000000000000004", "producer", "error", "state.4", 1),
        ("0000000000000005", "consumer", "error", "state.5", 1),
    ]
    assert json.loads(spans[0]["attributes"]) == {
        "peer.service": "service-y", "peer.ipv4": 23456, "blob": "AAAwOQ==", "temperature": 72.5}
    assert spans[0]["duration_ms"] == pytest.approx(0.005)
    events = rows(tmp_path, "span_events", "span_id, event_index")
    assert [(e["event_index"], e["name"], json.loads(e["attributes"])) for e in events[:2]] == [
        (0, "testing-event", {"event-x": "event-y"}), (1, "", {"x": "y"})]
    links = rows(tmp_path, "span_links", "span_id, link_index")
    assert [(l["link_index"], l["linked_trace_id"], l["linked_span_id"], json.loads(l["attributes"])) for l in links[:2]] == [
        (0, "00000000000000010000000000000000", "0000000000000004", {"opentracing.ref_type": "follows_from"}),
        (1, "00000000000000ff0000000000000000", "00000000000000ff", {"opentracing.ref_type": "child_of"}),
    ]


def test_defaults_omitted_and_empty_scope(tmp_path):
    ingest(tmp_path, DATA / "jaeger_integration_example_trace.json", DATA / "jaeger_apiv3_GetTrace_response.json")
    spans = {s["span_id"]: s for s in rows(tmp_path, "spans")}
    assert [spans[f"000000000000000{n}"]["kind"] for n in range(3, 8)] == [
        "unspecified", "unspecified", "unspecified", "server", "client"]  # 3-5 have no "kind"
    assert {spans[f"000000000000000{n}"]["status_code"] for n in range(3, 8)} == {"unset"}  # "status": {}
    assert {spans[f"000000000000000{n}"]["scope_name"] for n in range(3, 8)} == {None}  # "scope": {}
    wrapped = spans["0000000000000002"]  # Jaeger API v3: {"result": {...}}, resource {}, no times (proto3: 0)
    assert (wrapped["name"], wrapped["kind"], wrapped["status_code"]) == ("foobar", "server", "error")
    assert wrapped["resource_attributes"] == "{}"
    assert wrapped["start_time"].isoformat() == "1970-01-01T00:00:00+00:00"


def test_scope_attributes_of_every_scalar_kind(tmp_path):
    ingest(tmp_path, DATA / "jaeger_integration_scope_attributes_trace.json")
    [span] = rows(tmp_path, "spans")
    assert json.loads(span["scope_attributes"]) == {
        "sameplacescopeattribute1": "sameplacevalue", "sameplacescopeattribute2": 123,
        "sameplacescopeattribute4": True, "sameplacescopeattribute3": 72.5, "scopeblob": "AAAwOQ==",
    }


def test_exception_event_gives_error_type_and_status_message(tmp_path):
    ingest(tmp_path, DATA / "otel-desktop-viewer_checkout_traces.json")
    spans = {s["span_id"]: s for s in rows(tmp_path, "spans")}
    assert (spans["0000000000000001"]["status_code"], spans["0000000000000001"]["status_message"]) == (
        "error", "Payment declined")
    assert spans["0000000000000001"]["http_status_code"] == 402
    assert spans["0000000000000006"]["error_type"] == "PaymentDeclinedError"
    [event] = rows(tmp_path, "span_events")
    assert (event["span_id"], event["name"]) == ("0000000000000006", "exception")
    assert json.loads(event["attributes"])["exception.message"] == "Card declined: insufficient funds"


def test_invalid_samples_are_rejected_with_a_reason(tmp_path):
    ingest(tmp_path, DATA / "otlp2parquet_invalid_trace_invalid_kind.json",
           DATA / "otlp2parquet_invalid_trace_mixed_encoding.json", DATA / "otel-proto_examples_logs.json")
    rejects = {Path(r["input"]).name: r for r in rows(tmp_path, "rejects")}
    kind = rejects["otlp2parquet_invalid_trace_invalid_kind.json"]
    assert kind["reason"] == "span rejected: unknown span kind 'SPAN_KIND_INVALID_TYPE'"
    assert (kind["line"], kind["field"], json.loads(kind["raw"])["spanId"]) == (1, "span", "57526846903bb13e")
    mixed = rejects["otlp2parquet_invalid_trace_mixed_encoding.json"]
    assert mixed["reason"] == ("span rejected: traceId 'zzz' is not 32 hex digits nor base64 of 16 bytes; "
                               "spanId 'xyz' is not 16 hex digits nor base64 of 8 bytes")
    assert rejects["otel-proto_examples_logs.json"]["reason"] == "not OTLP traces: no resourceSpans"


def span_json(span_id: str, parent: str | None = None, attributes: dict | None = None, **extra) -> dict:
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": f"op-{span_id[-1]}",
        "startTimeUnixNano": 1_790_000_000_000_000_000, "endTimeUnixNano": "1790000000250000000",
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in (attributes or {}).items()],
        **extra,
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def traces_line(spans: list[dict], resource: dict | None = None, legacy: bool = False) -> str:
    scope_key, spans_key = ("instrumentationLibrary", "instrumentationLibrarySpans") if legacy else ("scope", "scopeSpans")
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]},
        spans_key: [{scope_key: {"name": "r2p"}, "spans": spans}],
    }]})


SPAN_KEYS = "SELECT span_id, po_number, facility_id, stage, kind, attributes FROM spans"


def test_mapping_resource_fallback_and_parent_inheritance(tmp_path):
    # Children come before their parent, as a file exporter writes them (children end first).
    path = tmp_path / "po.jsonl"
    path.write_text("\n".join([
        traces_line([span_json("00000000000000c2", "00000000000000c1")], {"service.name": "erp-gateway"}),
        traces_line([span_json("00000000000000c1", "00000000000000a1", kind="SPAN_KIND_CLIENT")],
                    {"service.name": "erp-gateway", "procurement.facility.id": "SOUTH-CLINIC"}),
        traces_line([span_json("00000000000000a1", None, {
            "procurement.po.number": "PO-4711", "procurement.facility.id": "NORTH-GENERAL",
            "procurement.stage": "po_creation", "http.request.method": "POST"})], {"service.name": "procurement"}),
    ]) + "\n")
    data_dir = tmp_path / "data"
    ingest(data_dir, path)
    landed = {s["span_id"]: s for s in rows(data_dir, "spans")}
    assert landed["00000000000000c2"]["po_number"] is None  # landing keeps what the span itself carried
    spans = {row[0]: row[1:] for row in warehouse_rows(data_dir, SPAN_KEYS)}
    root, child, grandchild = spans["00000000000000a1"], spans["00000000000000c1"], spans["00000000000000c2"]
    assert root[:3] == ("PO-4711", "NORTH-GENERAL", "po_creation")
    assert json.loads(root[4]) == {"http.request.method": "POST"}  # business keys pulled out
    # resource beats parent; the rest is inherited, across two levels
    assert child[:4] == ("PO-4711", "SOUTH-CLINIC", "po_creation", "client")
    assert grandchild[:3] == ("PO-4711", "SOUTH-CLINIC", "po_creation")


def test_business_keys_are_inherited_across_files_loaded_at_different_times(tmp_path):
    # An SDK exports a child before its parent, often in another request: each file is a batch here.
    def export(name: str, spans: list[dict]) -> Path:
        path = tmp_path / name
        path.write_text(traces_line(spans, {"service.name": "erp-gateway"}) + "\n")
        return path

    data_dir = tmp_path / "data"
    ingest(data_dir, export("1.jsonl", [span_json("00000000000000c1", "00000000000000a1")]))
    assert warehouse_rows(data_dir, "SELECT po_number FROM spans") == [(None,)]  # its parent is not in yet
    ingest(data_dir, export("2.jsonl", [span_json("00000000000000a1", None, {
        "procurement.po.number": "PO-4711", "procurement.stage": "po_creation"})]))
    ingest(data_dir, export("3.jsonl", [span_json("00000000000000c2", "00000000000000c1", {
        "procurement.stage": "po_transmission"})]))
    spans = {row[0]: row[1:4] for row in warehouse_rows(data_dir, SPAN_KEYS)}
    assert spans == {
        "00000000000000a1": ("PO-4711", None, "po_creation"),
        "00000000000000c1": ("PO-4711", None, "po_creation"),  # loaded before its parent
        "00000000000000c2": ("PO-4711", None, "po_transmission"),  # its own stage wins
    }
    (data_dir / "warehouse.duckdb").unlink()  # rebuilt from the landing zone in one load: the same keys
    assert {row[0]: row[1:4] for row in warehouse_rows(data_dir, SPAN_KEYS)} == spans


def test_user_mapping_and_legacy_instrumentation_library(tmp_path):
    config = tmp_path / "r2p.toml"
    config.write_text('[business]\npo_number = ["po_number", "procurement.po.number"]\nfacility_id = ["facility"]\n')
    path = tmp_path / "legacy.json"
    path.write_text(traces_line([span_json("00000000000000b1", None, {"po_number": "PO-9", "facility": "EAST"})],
                                legacy=True))
    ingest(tmp_path / "data", path, config_path=config)
    [span] = rows(tmp_path / "data", "spans")
    assert (span["po_number"], span["facility_id"], span["scope_name"]) == ("PO-9", "EAST", "r2p")
    assert span["attributes"] == "{}"


def test_documents_needing_the_full_schema_beside_plain_ones(tmp_path):
    # Lines mixing a current and a legacy resource (the second spelling the legacy keys with JSON
    # escapes) and a Tempo wrapper must give every span, like the plain line beside them.
    def mixed(first: str, second: str) -> dict:
        document = json.loads(traces_line([span_json(first)], {"service.name": "current"}))
        legacy = json.loads(traces_line([span_json(second)], {"service.name": "legacy"}, legacy=True))
        document["resourceSpans"] += legacy["resourceSpans"]
        return document

    escaped = json.dumps(mixed("00000000000000f3", "00000000000000f4")).replace(
        '"instrumentationLibrary', '"instrumentation\\u004cibrary')
    tempo = json.loads(traces_line([span_json("00000000000000f5")], {"service.name": "tempo"}))
    tempo = {"batches": tempo["resourceSpans"]}
    path = tmp_path / "shapes.jsonl"
    path.write_text("\n".join([traces_line([span_json("00000000000000f0")], {"service.name": "plain"}),
                               json.dumps(mixed("00000000000000f1", "00000000000000f2")), escaped,
                               json.dumps(tempo)]) + "\n")
    summary = ingest(tmp_path / "data", path)
    assert (summary.accepted["spans"], summary.rejected) == (6, 0)
    assert {(s["span_id"], s["service_name"], s["scope_name"]) for s in rows(tmp_path / "data", "spans")} == {
        ("00000000000000f0", "plain", "r2p"), ("00000000000000f1", "current", "r2p"),
        ("00000000000000f2", "legacy", "r2p"), ("00000000000000f3", "current", "r2p"),
        ("00000000000000f4", "legacy", "r2p"), ("00000000000000f5", "tempo", "r2p")}


def test_bad_config_is_a_user_error(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[business]\npo_numbr = ["x"]\n')
    with pytest.raises(UserError, match="unknown business column"):
        load_config(config)
    config.write_text('[[redaction.maskers]]\nname = "x"\npattern = "("\nreplacement = "[X]"\n')
    with pytest.raises(UserError, match="does not compile"):
        load_config(config)


PHI = ("Jane Q Doe", "123-45-6789", "MRN 00123456", "1961-04-01", "A1234567")


def test_redaction_leaves_no_phi_on_disk(tmp_path):
    config = tmp_path / "phi.toml"
    config.write_text('[redaction]\ndeny_keys = ["member.id"]\n')  # added to the defaults, not replacing them
    exception = {"timeUnixNano": "1790000000100000000", "name": "exception", "attributes": [
        {"key": "exception.type", "value": {"stringValue": "LookupError"}},
        {"key": "exception.message", "value": {"stringValue": "no chart for MRN 00123456 (SSN 123-45-6789)"}}]}
    good = span_json("00000000000000d1", None, {"patient.name": "Jane Q Doe", "hl7.pid.ssn": "123-45-6789",
                                                 "note": "patient MRN 00123456", "member.id": "A1234567"},
                     events=[exception], status={"code": 2, "message": "lookup failed for 123-45-6789"})
    good["attributes"].append({"key": "ctx", "value": {"kvlistValue": {"values": [
        {"key": "dob", "value": {"stringValue": "1961-04-01"}},
        {"key": "ids", "value": {"arrayValue": {"values": [{"stringValue": "SSN 123-45-6789"}, {"intValue": "7"}]}}}]}}})
    bad_span = span_json("zz", None, {"patient_name": "Jane Q Doe", "x": "MRN 00123456"})
    path = tmp_path / "phi.jsonl"
    path.write_text("\n".join([
        traces_line([good], {"service.name": "ehr-bridge", "patient.id": "A1234567"}),
        traces_line([bad_span]),
        '{"resourceSpans": [{"key": "patient.name", "value": {"stringValue": "Jane Q Doe"}}, "MRN 00123456" ',
    ]) + "\n")
    summary = ingest(tmp_path / "data", path, config_path=config)
    assert summary.accepted["spans"] == 1 and summary.rejected == 2
    con = duckdb.connect()
    for parquet in (tmp_path / "data" / "landing").rglob("*.parquet"):
        text = " ".join(str(row) for row in con.sql(f"SELECT * FROM read_parquet('{parquet}')").fetchall())
        for value in PHI:
            assert value not in text, (parquet, value)
    [span] = rows(tmp_path / "data", "spans")
    assert json.loads(span["attributes"]) == {
        "patient.name": "[REDACTED]", "hl7.pid.ssn": "[REDACTED]", "note": "patient [MRN]", "member.id": "[REDACTED]",
        "ctx": {"dob": "[REDACTED]", "ids": ["SSN [SSN]", 7]}}
    assert json.loads(span["resource_attributes"]) == {"service.name": "ehr-bridge", "patient.id": "[REDACTED]"}
    assert span["status_message"] == "lookup failed for [SSN]"
    assert span["error_type"] == "LookupError"
    [event] = rows(tmp_path / "data", "span_events")
    assert json.loads(event["attributes"])["exception.message"] == "no chart for [MRN] (SSN [SSN])"
    rejects = rows(tmp_path / "data", "rejects", "line")
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "span rejected: spanId 'zz' is not 16 hex digits nor base64 of 8 bytes"),
        (3, "not valid JSON (or not an object)")]
    assert '"[REDACTED]"' in rejects[1]["raw"] and "[MRN]" in rejects[1]["raw"]
    [batch] = rows(tmp_path / "data", "ingest_batches")
    counts = json.loads(batch["notes"])["redacted"]
    assert counts["us_ssn"] >= 3 and counts["mrn"] >= 3 and counts["key"] >= 6


def test_malformed_line_rejected_rest_lands(tmp_path):
    lines = (DATA / "otlp2parquet_traces.jsonl").read_text().splitlines()
    lines.insert(3, '{"resourceSpans": [ truncated')
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summary = ingest(tmp_path / "data", path)
    assert (summary.accepted["spans"], summary.rejected) == (19, 1)
    [reject] = rows(tmp_path / "data", "rejects")
    assert (reject["line"], reject["reason"], reject["raw"]) == (
        4, "not valid JSON (or not an object)", '{"resourceSpans": [ truncated')


def test_crlf_blank_lines_and_bytes_that_are_not_utf8(tmp_path):
    lines = (DATA / "otlp2parquet_traces.jsonl").read_bytes().splitlines()
    bad = b'{"resourceSpans": [ \xff truncated'
    head = b"\r\n".join(lines[:2]) + b"\r\n\r\n   \r\n"  # two blank lines (CRLF) are no documents
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(head + bad + b"\r\n" + b"\r\n".join(lines[2:]) + b"\r\n")
    summary = ingest(tmp_path / "data", path)
    assert (summary.accepted["spans"], summary.rejected) == (19, 1)
    [reject] = rows(tmp_path / "data", "rejects")
    assert (reject["line"], reject["byte_offset"], reject["reason"]) == (5, len(head), "not valid JSON (or not an object)")
    assert reject["raw"] == '{"resourceSpans": [ \ufffd truncated\r'


def test_gzip_and_length_delimited_protobuf(tmp_path):
    gz = tmp_path / "traces.jsonl.gz"
    gz.write_bytes(gzip.compress((DATA / "otlp2parquet_traces.jsonl").read_bytes()))
    message = (DATA / "otlp2parquet_trace.pb").read_bytes()
    from google.protobuf.internal.encoder import _VarintBytes

    stream = tmp_path / "stream.pb.gz"
    stream.write_bytes(gzip.compress(_VarintBytes(len(message)) + message + _VarintBytes(len(message)) + message))
    summary = ingest(tmp_path / "gz", gz)
    assert summary.accepted["spans"] == 19
    assert rows(tmp_path / "gz", "spans", "span_id") == rows(
        ingest(tmp_path / "plain", DATA / "otlp2parquet_traces.jsonl") and tmp_path / "plain", "spans", "span_id")
    summary = ingest(tmp_path / "stream", stream)
    assert summary.accepted["spans"] == 4  # the same 2 spans twice: the warehouse keeps one of each key
    assert len({(s["trace_id"], s["span_id"]) for s in rows(tmp_path / "stream", "spans")}) == 2


def test_numbers_for_64_bit_integers(tmp_path):
    span = span_json("00000000000000e1", None, kind=3, status={"code": "STATUS_CODE_OK"})
    span["attributes"] = [{"key": "n", "value": {"intValue": 42}}, {"key": "f", "value": {"doubleValue": "NaN"}}]
    path = tmp_path / "numbers.json"
    path.write_text(traces_line([span]))
    ingest(tmp_path / "data", path)
    [landed] = rows(tmp_path / "data", "spans")
    assert (landed["kind"], landed["status_code"], landed["duration_ms"]) == ("client", "ok", 250.0)
    assert json.loads(landed["attributes"]) == {"n": 42, "f": "nan"}


def test_same_file_twice_lands_once(tmp_path):
    copy = tmp_path / "again.jsonl"
    shutil.copy(DATA / "otlp2parquet_traces.jsonl", copy)
    first = ingest(tmp_path / "data", DATA / "otlp2parquet_traces.jsonl")
    second = ingest(tmp_path / "data", copy, DATA / "otlp2parquet_traces.jsonl")
    assert (first.accepted["spans"], second.accepted["spans"], second.already_present) == (19, 0, 2)
    assert len(rows(tmp_path / "data", "spans")) == 19


@pytest.mark.skipif(not SHARED.exists(), reason="AGPL Tempo samples are read from ../shared only (not in the repo)")
def test_tempo_samples(tmp_path):
    summary = ingest(tmp_path, SHARED / "tempo_servicegraphs_trace-with-failed-requests.json",
                     SHARED / "tempo_servicegraphs_trace-with-queue-database.json", SHARED / "tempo_vulture_trace.json")
    assert (summary.accepted["spans"], summary.accepted["span_events"], summary.rejected) == (40, 18, 0)
    spans = rows(tmp_path, "spans")
    errors = [s for s in spans if s["status_code"] == "error"]
    assert len(errors) == 3
    assert any('violates not-null constraint' in (s["status_message"] or "") for s in errors)
    rabbit = [s for s in spans if json.loads(s["attributes"]).get("messaging.system") == "rabbitmq"]
    assert {s["kind"] for s in rabbit} == {"producer", "consumer"}
