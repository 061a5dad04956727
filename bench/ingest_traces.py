"""Trace ingest speed: ``python -m bench ingest_traces [--spans N] [--runs R] [--keep-dir DIR]``.

Generates OTLP/JSON lines (file-exporter shape: one TracesData a line, 50 spans of one service a
line, R2P business attributes, one span in ten with an exception event) and ingests them end to
end (parse, map, redact, land) as ``r2p ingest traces`` does. The floor is DuckDB's own
``read_json`` of the same file with an explicit schema, unnested to one row a span and written to
Parquet, run in a child process so ``peak_rss_mb`` is the collector's alone. ``cpu_seconds`` (all
threads of the ingest) shows how much of the two cores the ingest needed, whatever else ran.

The floor and the ingest run one after the other R times (default 3), each ingest into a fresh
landing zone: the same code on a shared machine varies by a fifth from one run to the next, so the
figures are medians, ``floor_ratio`` the median of each run's own ratio; per-run figures go to stderr.
"""

from __future__ import annotations

import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPANS_PER_LINE = 50
SERVICES = ("procurement-adapter", "erp-gateway", "wms-north-adapter", "ap-automation", "edi-bridge")
FACILITIES = ("NORTH-GENERAL", "SOUTH-CLINIC", "EAST-WAREHOUSE", "WEST-HOSPITAL")
STAGES = ("requisition", "approval", "po_creation", "po_transmission", "receipt", "invoice", "match")


def _attribute(key: str, value: str | int) -> str:
    if isinstance(value, int):
        return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'
    return f'{{"key":"{key}","value":{{"stringValue":"{value}"}}}}'


def generate(path: Path, spans: int, seed: int = 7) -> int:
    """Write ``spans`` spans of OTLP/JSON lines to ``path``; returns the file size in bytes."""
    rng = random.Random(seed)
    base_ns = 1_790_000_000_000_000_000
    written = 0
    with path.open("w") as out:
        line_index = 0
        while written < spans:
            count = min(SPANS_PER_LINE, spans - written)
            service = SERVICES[line_index % len(SERVICES)]
            trace_id = f"{rng.getrandbits(128):032x}"
            root_id = f"{rng.getrandbits(64):016x}"
            facility = FACILITIES[line_index % len(FACILITIES)]
            po_number = f"PO-{100000 + line_index}"
            span_texts = []
            for index in range(count):
                span_id = root_id if index == 0 else f"{rng.getrandbits(64):016x}"
                start = base_ns + (line_index * SPANS_PER_LINE + index) * 1_000_000
                attributes = [
                    _attribute("http.request.method", "POST"),
                    _attribute("http.response.status_code", 500 if index % 10 == 9 else 200),
                    _attribute("url.path", f"/api/po/{po_number}"),
                    _attribute("messaging.system", "rabbitmq"),
                ]
                if index == 0:
                    attributes += [
                        _attribute("procurement.facility.id", facility),
                        _attribute("procurement.po.number", po_number),
                        _attribute("procurement.stage", STAGES[line_index % len(STAGES)]),
                        _attribute("procurement.supplier.id", f"SUP-{line_index % 97:03d}"),
                    ]
                if index % 25 == 3:
                    attributes.append(_attribute("patient.mrn", f"MRN{rng.randrange(10**7):07d}"))
                events = ""
                status = '"status":{}'
                if index % 10 == 9:
                    status = '"status":{"code":2,"message":"ERP returned 500"}'
                    events = (
                        f',"events":[{{"timeUnixNano":"{start + 500_000}","name":"exception","attributes":['
                        f'{_attribute("exception.type", "ErpServerError")},'
                        f'{_attribute("exception.message", "ERP rejected request for SSN 123-45-6789")}]}}]'
                    )
                parent = "" if index == 0 else f',"parentSpanId":"{root_id}"'
                span_texts.append(
                    f'{{"traceId":"{trace_id}","spanId":"{span_id}"{parent},"name":"POST /po","kind":{2 if index == 0 else 3},'
                    f'"startTimeUnixNano":"{start}","endTimeUnixNano":"{start + 3_000_000 + index * 1000}",'
                    f'"attributes":[{",".join(attributes)}]{events},{status}}}'
                )
            resource_attributes = ",".join(
                [_attribute("service.name", service), _attribute("host.name", f"host-{line_index % 8}")]
            )
            out.write(
                f'{{"resourceSpans":[{{"resource":{{"attributes":[{resource_attributes}]}},'
                f'"scopeSpans":[{{"scope":{{"name":"r2p.integration","version":"1.0"}},"spans":[{",".join(span_texts)}]}}]}}]}}\n'
            )
            written += count
            line_index += 1
    return path.stat().st_size


FLOOR_SQL = """
import duckdb, sys, time
path, target = sys.argv[1], sys.argv[2]
attrs = "STRUCT(key VARCHAR, value STRUCT(stringValue VARCHAR, intValue VARCHAR))[]"
span = ("STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, name VARCHAR, kind INTEGER, "
        f"startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes {attrs}, "
        f"events STRUCT(timeUnixNano VARCHAR, name VARCHAR, attributes {attrs})[], "
        "status STRUCT(code INTEGER, message VARCHAR))")
columns = {"resourceSpans": f"STRUCT(resource STRUCT(attributes {attrs}), scopeSpans STRUCT(scope STRUCT(name VARCHAR, version VARCHAR), spans {span}[])[])[]"}
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
started = time.perf_counter()
rows = con.execute(f'''COPY (SELECT unnest(ss.spans, recursive := true) FROM (
    SELECT unnest(rs.scopeSpans) AS ss FROM (SELECT unnest(resourceSpans) AS rs FROM read_json('{path}', columns={columns!r}, format='newline_delimited', maximum_object_size=268435456))))
    TO '{target}' (FORMAT parquet)''').fetchall()[0][0]
print(rows, time.perf_counter() - started)
"""


def run(spans: str | int = 1_000_000, runs: str | int = 3, keep_dir: str | None = None) -> dict:
    """Generate, then measure the floor and the ingest ``runs`` times; returns the median figures
    (printed last as JSON by bench.__main__); the generated file and landing zone are deleted
    afterwards unless ``keep_dir`` names where to keep them."""
    spans = int(spans)
    work = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="bench-traces-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _measure(work, spans, int(runs))
    finally:
        if not keep_dir:
            shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path, spans: int, runs: int) -> dict:
    from collectors.files import ingest_files
    from collectors.otlp_config import load_config
    from collectors.traces import SOURCE, collect_file
    from r2p.landing import LandingZone

    source = work / "traces.jsonl"
    started = time.perf_counter()
    size = generate(source, spans)
    print(f"generated {spans:,} spans, {size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    config = load_config()
    rates, floor_rates, cpu_seconds = [], [], []
    for attempt in range(1, runs + 1):
        floor = subprocess.run(
            [sys.executable, "-c", FLOOR_SQL, str(source), str(work / "floor.parquet")],
            check=True, capture_output=True, text=True,
        )
        floor_rows, floor_seconds = floor.stdout.split("\n")[-2].split()
        floor_rates.append(int(floor_rows) / float(floor_seconds))

        zone_dir = work / "data"
        shutil.rmtree(zone_dir, ignore_errors=True)
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = ingest_files(SOURCE, [source], LandingZone(zone_dir), lambda path, writer: collect_file(path, writer, config))
        seconds = time.perf_counter() - started
        cpu_seconds.append(time.process_time() - cpu_started)
        landed = summary.accepted["spans"]
        rates.append(landed / seconds)
        print(
            f"run {attempt}: {summary.line()}; {rates[-1]:,.0f} spans/s ({cpu_seconds[-1]:.1f} CPU-s); "
            f"floor {int(floor_rows):,} spans in {float(floor_seconds):.2f} s, {floor_rates[-1]:,.0f} spans/s",
            file=sys.stderr,
        )
    ratios = [floor_rate / rate for floor_rate, rate in zip(floor_rates, rates)]
    return {
        "spans": landed,
        "input_mb": round(size / 1e6, 1),
        "runs": len(rates),
        "cpu_seconds": round(statistics.median(cpu_seconds), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "floor_ratio": round(statistics.median(ratios), 2),
        "floor_ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
        "spans_per_s": round(statistics.median(rates)),
        "floor_spans_per_s": round(statistics.median(floor_rates)),
    }
