"""Validating parsed backlog rows and landing them: shared by file ingest and the live poller.

Every row is checked (counts are non-negative integers, rates finite and non-negative; a snapshot
with no figure at all is rejected) and given its flow columns from the flow configuration. A
RabbitMQ queue whose ready + unacked differs from its messages is kept as reported, with
``depth_mismatch`` (messages minus ready plus unacked) in its attributes and counted in the batch
notes: recorded, never corrected.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from collectors.broker_common import AGGREGATE_QUEUE, COUNT_COLUMNS, RATE_COLUMNS, Candidate, Parsed, Problem, iso
from collectors.broker_flows import FLOW_COLUMNS, FlowConfig
from r2p import schema
from r2p.landing import BatchWriter

SOURCE = "backlog"
_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
                "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "JSON": pa.string()}
ARROW_SCHEMA = pa.schema([(name, _ARROW_TYPES[sql_type]) for name, sql_type, _, _ in schema.columns(schema.BacklogSnapshot)
                          if name != "batch_id"])


def validate(candidate: Candidate, config: FlowConfig, notes: Parsed) -> tuple[dict[str, Any] | None, Problem | None]:
    """The landed row of a candidate (flow columns filled, attributes as JSON), or why it is rejected."""
    row = {column: candidate.row.get(column) for column in ARROW_SCHEMA.names}
    attributes = dict(candidate.attributes)

    def problem(reason: str, field: str) -> tuple[None, Problem]:
        return None, Problem(reason, candidate.raw_text(), line=candidate.line, field=field)

    if not isinstance(row["queue"], str) or not row["queue"]:
        return problem("queue name is missing", "queue")
    for column in (*COUNT_COLUMNS, "partition"):
        value = row[column]
        if isinstance(value, float) and value.is_integer():
            value = row[column] = int(value)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return problem(f"{column} is not an integer: {value!r}", column)
        if value is not None and value < 0:
            return problem(f"negative {column}: {value}", column)
    for column in RATE_COLUMNS:
        value = row[column]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return problem(f"{column} is not a number: {value!r}", column)
        if value is not None and value < 0 and column != "oldest_message_age_s":
            return problem(f"negative {column}: {value}", column)
    if row["oldest_message_age_s"] is not None and row["oldest_message_age_s"] < 0:
        # The head message is stamped after the observation: a publisher's clock runs ahead.
        attributes["oldest_message_age_s_negative"] = row["oldest_message_age_s"]
        row["oldest_message_age_s"] = None
        notes.count("head_timestamp_after_observation")
    if all(row[column] is None for column in COUNT_COLUMNS) and "dead_lettered_total" not in attributes:
        return problem("no backlog figure: messages, ready, unacked, consumers and lag all missing",
                       "lag" if row["broker"] == "kafka" else "messages")
    if None not in (row["depth"], row["ready"], row["unacked"]) and row["ready"] + row["unacked"] != row["depth"]:
        attributes["depth_mismatch"] = row["depth"] - row["ready"] - row["unacked"]
        notes.count("depth_mismatch")
    sources = attributes.get("dead_letter_sources", [])
    if row["is_dead_letter"] is None:
        row["is_dead_letter"] = config.is_dead_letter_name(row["queue"]) or bool(sources)
    if row["queue"] != AGGREGATE_QUEUE and all(row[column] is None for column in FLOW_COLUMNS):
        flow = config.flow_of(row["queue"])
        inherited = {json.dumps(config.flow_of(source), sort_keys=True) for source in sources}
        if flow is None and len(inherited) == 1:
            # A dead-letter queue fed by one flow's queues belongs to that flow; a shared one to none.
            flow = json.loads(inherited.pop())
        if flow is not None:
            row.update(flow)
        else:
            notes.count("unmapped_rows")
    row["attributes"] = json.dumps(attributes, sort_keys=True, default=str)
    return row, None


def land(parsed: Parsed, writer: BatchWriter, config: FlowConfig) -> int:
    """Validate and land a parse result: rows to backlog_snapshots, problems to rejects."""
    rows = []
    for candidate in parsed.candidates:
        row, problem = validate(candidate, config, parsed)
        if problem is not None:
            parsed.problems.append(problem)
        else:
            rows.append(row)
    written = writer.add(schema.BacklogSnapshot.table, pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)) if rows else 0
    for problem in sorted(parsed.problems, key=lambda problem: (problem.line is None, problem.line or 0)):
        writer.reject(problem.reason, problem.raw, line=problem.line, byte_offset=problem.byte_offset,
                      field=problem.field)
    for key, value in parsed.notes.items():
        writer.notes[key] = writer.notes.get(key, 0) + value
    if parsed.observed_at is not None:
        writer.notes["observed_at"] = iso(parsed.observed_at)
    return written
