"""What every backlog parser produces: candidate snapshot rows and problems, before validation.

A parser turns one broker response (a queue list, a metrics scrape, a consumer-group table)
into ``Candidate`` rows, each a dict of ``backlog_snapshots`` columns plus the raw text it came
from, and ``Problem`` records for what it could not read. ``collectors.backlog`` then validates
the rows (negative counts, wrong types), applies the flow mapping and lands them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

COUNT_COLUMNS: tuple[str, ...] = ("depth", "ready", "unacked", "consumers", "lag")
"""Integer columns that count messages or consumers: a negative value is a bad snapshot."""

RATE_COLUMNS: tuple[str, ...] = ("oldest_message_age_s", "publish_rate", "deliver_rate")
"""Float columns that cannot be negative either."""

AGGREGATE_QUEUE = "*"
"""Queue name of a row that covers a whole node or consumer group rather than one queue or
partition (RabbitMQ's aggregated Prometheus metrics and dead-letter counters, a Kafka group's
state or member count)."""


@dataclass
class Candidate:
    """One snapshot row as parsed, not yet validated. ``row`` holds backlog_snapshots columns;
    ``attributes`` is the JSON object landed in the ``attributes`` column."""

    row: dict[str, Any]
    raw: str | dict[str, Any]
    """The raw text, or the JSON object it was parsed from (serialised only if the row is rejected)."""
    line: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


    def raw_text(self) -> str:
        return self.raw if isinstance(self.raw, str) else json.dumps(self.raw, sort_keys=True, default=str)


@dataclass
class Problem:
    """Something the parser could not accept: becomes one reject."""

    reason: str
    raw: str
    line: int | None = None
    byte_offset: int | None = None
    field: str | None = None


@dataclass
class Parsed:
    """A parser's result for one input (or one observation within a capture file)."""

    candidates: list[Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    observed_at: dt.datetime | None = None
    """The observation time given to a single response (which carries none of its own)."""

    def extend(self, other: Parsed) -> None:
        self.candidates += other.candidates
        self.problems += other.problems
        for key, value in other.notes.items():
            self.notes[key] = self.notes.get(key, 0) + value

    def count(self, note: str, by: int = 1) -> None:
        self.notes[note] = self.notes.get(note, 0) + by


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO 8601 time (``Z`` or an offset), or RabbitMQ's ``YYYY-MM-DD H:MM:SS`` form, as UTC.

    RabbitMQ up to 3.9 writes ``idle_since`` without a zone (the node's UTC clock) and sometimes
    with an unpadded hour (``2015-11-01 8:22:14``); 3.11+ writes ``2023-02-26T09:31:07.739+00:00``.
    A time without a zone is taken as UTC. Raises ValueError for anything else.
    """
    text = text.strip()
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", text)
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    day, hour, minute, second, fraction, zone = match.groups()
    normalised = f"{day}T{int(hour):02d}:{minute}:{second}{(fraction or '')[:7]}"
    if zone in (None, "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return dt.datetime.fromisoformat(normalised + zone).astimezone(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    """UTC ISO 8601 with a Z, as the capture files and notes write times."""
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
