"""A deterministic simulator of a health system's requisition-to-pay traffic (DOMAIN.md section 5).

``simulate(config, out_dir)`` walks requisitions day by day and writes the three raw inputs in their
real formats (OTLP/JSON lines, RabbitMQ and Kafka backlog snapshots, CSV exports and X12 EDI) plus
``manifest.json``: the ground truth of every injected incident and deliberately broken record.
Output is byte-identical for a config; memory is bounded (see ``simulator.spool``).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from r2p.errors import UserError
from simulator.faults import Faults, date_of
from simulator.flow import Walk
from simulator.model import US_PER_DAY, US_PER_H, HealthSystem, SimulationConfig, iso_utc
from simulator.spool import DaySpool
from simulator.writers.backlog import BacklogWriter
from concurrent.futures import Future, ProcessPoolExecutor

from simulator.writers.otlp import write_day_in_worker
from simulator.writers.transactions import TransactionWriter
from simulator.writers.x12 import X12Writer

__all__ = ["Manifest", "SimulationConfig", "simulate"]

OUTPUT_PARTS = ("traces", "backlog", "transactions", "edi", "manifest.json")


@dataclasses.dataclass
class Manifest:
    """What a run wrote and the ground truth it holds; ``manifest.json`` is ``as_dict()``."""

    config: dict
    files: dict[str, dict]
    incidents: list[dict]
    broken_records: list[dict]
    totals: dict

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def prepare(out_dir: Path) -> None:
    """Make ``out_dir`` ready: empty, or holding a previous simulation (whose parts are replaced)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / "manifest.json").exists():
            raise UserError(f"{out_dir} is not empty and holds no earlier simulation; choose an empty --out")
        for part in OUTPUT_PARTS:
            path = out_dir / part
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def simulate(config: SimulationConfig, out_dir: Path, progress: Callable[[int], None] | None = None) -> Manifest:
    """Write a whole simulated run to ``out_dir``; ``progress(1)`` is called after each day."""
    out_dir = Path(out_dir)
    if config.days < 1 or config.scale <= 0 or config.facilities < 1 or config.suppliers < 1:
        raise UserError("days, scale, facilities and suppliers must be positive")
    prepare(out_dir)
    system = HealthSystem.build(config)
    faults = Faults(config, system)
    # Spans (the SDK and the exporter's encoding: the costliest part) are written by a second process
    # while this one walks the next day; at most two days wait, so memory stays bounded. The worker
    # starts before any output file is open, so it holds no copy of their buffers.
    span_writer = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    span_writer.submit(int).result()
    try:
        return _run(config, out_dir, system, faults, span_writer, progress)
    finally:
        span_writer.shutdown()


def _run(config: SimulationConfig, out_dir: Path, system: HealthSystem, faults: Faults,
         span_writer: ProcessPoolExecutor, progress: Callable[[int], None] | None) -> Manifest:
    systems = ["procurement", "erp", "ap", *sorted(f.wms for f in system.facilities)]
    if any(f.legacy for f in system.facilities):
        systems.insert(2, "legacy-erp")
    transactions = TransactionWriter(out_dir, systems)
    pending: list[tuple[str, Future]] = []
    edi = X12Writer(out_dir, {s.code: s.isa_id for s in system.suppliers})
    backlog = BacklogWriter(out_dir, system, config.seed, config.snapshot_interval_s)
    files: dict[str, dict] = {}
    broken: list[dict] = []
    broken_day = config.days // 2
    edi_break_pending = True
    totals = {"requisitions": 0, "transaction_events": 0, "spans": 0}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".spool-") as spool_dir:
        spool = DaySpool(Path(spool_dir), config.days)
        walk = Walk(config, system, faults, spool)
        for day in range(config.days):
            spool.floor = day
            totals["requisitions"] += walk.day(day)
            day_start = config.start_us + day * US_PER_DAY
            date = date_of(config, day).isoformat()
            kinds: dict[str, list] = {"txn": [], "span": [], "edi": [], "msg": [], "kafka": []}
            for kind, record in spool.drain(day):
                kinds[kind].append(record)
            totals["transaction_events"] += len(kinds["txn"])
            totals["spans"] += len(kinds["span"])
            note = transactions.write_day(kinds["txn"], broken_timestamp=day == broken_day)
            broken += [note] if note else []
            pending.append((date, span_writer.submit(write_day_in_worker, out_dir, date, kinds["span"],
                                                     faults.duplicated(day_start), day == broken_day)))
            while len(pending) > 2:
                collect_spans(*pending.pop(0), files, broken, faults)
            before = edi.counts["interchanges"]
            note = edi.write_day(date, kinds["edi"], break_one=day >= broken_day and edi_break_pending)
            if note:
                broken.append(note)
                edi_break_pending = False
            files[f"edi/x12-{date}.edi"] = {"records": edi.counts["interchanges"] - before}
            note = backlog.write_day(date, day_start, kinds["msg"], kinds["kafka"], faults.supplier_sync_down,
                                     negative_at=day_start + 12 * US_PER_H if day == broken_day else None)
            broken += [note] if note else []
            observations = len(backlog.snapshot_times(day_start))
            files[f"backlog/rabbitmq/queues-{date}.jsonl"] = {"records": observations}
            files[f"backlog/kafka/consumer-groups-{date}.txt"] = {"records": observations * 3}
            if progress is not None:
                progress(1)
        for date, future in pending:
            collect_spans(date, future, files, broken, faults)
    for system_name, rows in transactions.close().items():
        files[f"transactions/{system_name}.csv"] = {"records": rows}
    totals.update(edi.counts)
    manifest = Manifest(config=config.as_dict(), files=dict(sorted(files.items())),
                        incidents=[finish(incident) for incident in faults.incidents], broken_records=broken,
                        totals=totals)
    (out_dir / "manifest.json").write_text(json.dumps(manifest.as_dict(), indent=2) + "\n", encoding="utf-8")
    return manifest


def collect_spans(date: str, future: Future, files: dict, broken: list, faults: Faults) -> None:
    """Wait for one day's span file and book its counts."""
    stats = future.result()
    files[f"traces/spans-{date}.jsonl"] = {"records": stats["spans"], "lines": stats["lines"],
                                           "duplicate_lines": stats["duplicate_lines"]}
    if faults.duplicates is not None:
        faults.duplicates.count("duplicate_otlp_lines", stats["duplicate_lines"])
    if stats["truncated_line"]:
        broken.append({"file": f"traces/spans-{date}.jsonl", "line": stats["truncated_line"],
                       "locator": "first batch of the day, written twice", "why": "truncated OTLP/JSON line"})


def finish(incident) -> dict:
    """An incident's manifest entry, with its counted ground truth summarised."""
    observed = incident.observed
    lags = observed.pop("_lags", None)
    if lags is not None:
        for key, values in (("in_window", lags["in"]), ("outside", lags["out"])):
            ordered = sorted(values)
            observed[f"receipts_{key}"] = len(ordered)
            observed[f"p95_lag_hours_{key}"] = round(ordered[int(0.95 * (len(ordered) - 1))], 3) if ordered else None
    if "erp_calls_in_window" in observed:
        observed["rate_429"] = round(observed.get("erp_429_in_window", 0) / observed["erp_calls_in_window"], 4)
    if "calls_in_window" in observed:
        observed["error_rate_in_window"] = round(observed.get("errors_in_window", 0) / observed["calls_in_window"], 4)
    if observed.get("calls_outside"):
        observed["error_rate_outside"] = round(observed.get("errors_outside", 0) / observed["calls_outside"], 4)
    if "procurement_updated_at" in observed:
        observed["procurement_updated_at"] = iso_utc(observed["procurement_updated_at"])
    incident.observed = dict(sorted(observed.items()))
    return incident.as_dict()
