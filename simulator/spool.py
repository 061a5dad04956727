"""Records the walk emits, and the per-day spool that holds them until their day is written.

A requisition's whole life is drawn when it is created, so it emits records for days not yet
written. Each record goes to the bucket of the UTC day it belongs to (when its system recorded
it); buckets live in memory up to a bound, then spill to one pickle file per day. A day is
complete once every requisition created on or before it has been walked, and is then drained,
sorted and written: memory stays bounded by the spill limit plus one day.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import NamedTuple


class Txn(NamedTuple):
    """A business event in one system's export."""

    system: str
    event_id: str
    event_type: str
    object_type: str
    object_id: str
    status: str
    occurred: int
    recorded: int
    facility: str | None = None
    supplier: str | None = None
    department: str | None = None
    priority: str | None = None
    amount: float | None = None
    quantity: float | None = None
    unit_price: float | None = None
    requisition_id: str | None = None
    po_number: str | None = None
    po_line: int | None = None
    receipt_id: str | None = None
    invoice_id: str | None = None
    trace_id: str | None = None
    actor: str | None = None
    detail: str | None = None


class SpanSpec(NamedTuple):
    """What the SDK needs to make one span with explicit ids and times."""

    service: str
    name: str
    kind: str
    trace_id: int
    span_id: int
    parent_id: int | None
    parent_remote: bool
    start: int
    end: int
    attributes: dict
    error: tuple[str, str, str] | None
    """(error.type, exception.message, exception.stacktrace); None for success."""
    links: tuple[tuple[int, int], ...] = ()


class EdiDoc(NamedTuple):
    """One X12 transaction set, with what the writer needs to build its segments."""

    doc_type: str
    time: int
    supplier: str
    facility: str
    number: str
    po_number: str
    lines: tuple
    """850/810: (line, item, description, qty, unit_price); 855: (line, item, qty, ack_code); 856: (line, item, qty)."""
    code: str = ""
    """855: BAK02 (AD, AC, RJ)."""
    resend: bool = False
    broken_control_number: bool = False


class Message(NamedTuple):
    """One message's life on a RabbitMQ queue: published, delivered to a consumer, acknowledged."""

    queue: str
    published: int
    delivered: int
    acked: int
    redelivered: bool = False


class KafkaRecord(NamedTuple):
    topic: str
    partition: int
    produced: int
    consumed: int
    """When the group committed past it (may be after the run's end)."""


SPILL_LIMIT = 200_000
"""Records held in memory across all buckets before they are spilled to disk."""


class DaySpool:
    """Records bucketed by day index, spilled to ``directory`` when memory holds too many."""

    def __init__(self, directory: Path, days: int):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.days = days
        self.buckets: dict[int, list] = {}
        self.held = 0
        self.floor = 0
        """The first day not yet written: a record dated earlier (clock skew) goes to this day."""

    def add(self, day: int, record) -> None:
        day = max(day, self.floor)
        if day >= self.days:
            return
        self.buckets.setdefault(day, []).append(record)
        self.held += 1
        if self.held >= SPILL_LIMIT:
            self.spill()

    def spill(self) -> None:
        for day, records in self.buckets.items():
            with open(self.directory / f"{day:05d}.pickle", "ab") as handle:
                pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.buckets = {}
        self.held = 0

    def drain(self, day: int) -> list:
        """Every record of a day, in the order added; removes them from the spool."""
        records: list = []
        path = self.directory / f"{day:05d}.pickle"
        if path.exists():
            with open(path, "rb") as handle:
                while True:
                    try:
                        records.extend(pickle.load(handle))
                    except EOFError:
                        break
            path.unlink()
        held = self.buckets.pop(day, [])
        self.held -= len(held)
        records.extend(held)
        return records
