"""Kafka consumer-group lag: ``kafka-consumer-groups --describe`` tables and Burrow's lag JSON.

``--describe`` prints whitespace-aligned tables with a header line; ``-`` means unknown. Three
views are read:

* offsets (default): one row per topic partition; ``queue`` is the topic, ``lag`` the LAG column
  (NULL when ``-``: no committed offset), ``consumers`` 1 when a member owns the partition and 0
  when CONSUMER-ID is ``-``; offsets, consumer id, host and client id go to attributes;
* ``--members [--verbose]``: with ``--verbose`` one row per assigned partition (consumers 1),
  without it one row per group (queue ``*``) whose consumers is the member count;
* ``--state``: one row per group (queue ``*``): consumers is #MEMBERS; state, coordinator and
  assignment strategy go to attributes.

Recent Kafka prints GROUP as the first column; older output (and the docs) omit it, in which case
the group comes from a "Consumer group 'x' ..." line, else from the caller (``--consumer-group``),
else it stays NULL.

Burrow (``GET /v3/kafka/<cluster>/consumer/<group>/lag``): one row per partition, lag is
``current_lag``, vhost the cluster; partition and group status go to attributes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from collectors.broker_common import AGGREGATE_QUEUE, Candidate, Parsed, Problem

LABELS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
          "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT-STRATEGY", "ASSIGNMENT", "COORDINATOR (ID)", "STATE", "#MEMBERS")
"""Column labels of the three views; ASSIGNMENT-STRATEGY before ASSIGNMENT so the longer wins."""

_GROUP_LINE = re.compile(r"^(?:Consumer group|Error: Consumer group|Warning: Consumer group) '([^']+)'")
_ASSIGNMENT = re.compile(r"([^\s,()]+)\(([\d,]+)\)")


def looks_like_consumer_groups(text: str) -> bool:
    """True when a line of the text is a ``--describe`` header or a "Consumer group '...'" line."""
    for line in text.splitlines()[:50]:
        labels = {label for label, _ in _header_columns(line) or []}
        if labels & {"TOPIC", "CONSUMER-ID", "STATE"}:
            return True
        if _GROUP_LINE.match(line.strip()):
            return True
    return False


def _header_columns(line: str) -> list[tuple[str, int]] | None:
    """[(label, start column)] when ``line`` is a header made only of known labels, else None."""
    columns: list[tuple[str, int]] = []
    position = 0
    while position < len(line):
        if line[position] == " ":
            position += 1
            continue
        label = next((label for label in LABELS if line.startswith(label, position)), None)
        if label is None:
            return None
        columns.append((label, position))
        position += len(label)
    return columns if len(columns) >= 3 else None


def _split_row(line: str, columns: list[tuple[str, int]]) -> list[str] | None:
    """Cells of a table row: by the header's column starts when the row is aligned to them (cells
    may then hold spaces, e.g. ``localhost:9092 (0)``), else by whitespace with the last column
    taking the rest (ASSIGNMENT lists hold spaces). None when the row has too few cells."""
    starts = [start for _, start in columns]
    aligned = all(start == 0 or (start <= len(line) and line[start - 1] == " " and line[start] != " ")
                  for start in starts[1:] if start < len(line)) and len(line) > starts[-1]
    if aligned:
        ends = starts[1:] + [len(line)]
        return [line[start:end].strip() for start, end in zip(starts, ends)]
    cells = line.split(None, len(columns) - 1)
    return cells if len(cells) == len(columns) else None


def _integer(cell: str) -> int | None | str:
    """A cell as an int, None for ``-`` (unknown), or the text itself when it is not a number."""
    if cell == "-" or cell == "":
        return None
    try:
        return int(cell)
    except ValueError:
        return cell


def parse_describe(text: str, observed_at: dt.datetime, first_line: int = 1,
                   default_group: str | None = None) -> Parsed:
    """Rows for one ``kafka-consumer-groups --describe`` output; ``first_line`` numbers its lines."""
    parsed = Parsed()
    columns: list[tuple[str, int]] | None = None
    group = default_group
    members_rows: list[Candidate] = []
    for number, line in enumerate(text.splitlines(), start=first_line):
        stripped = line.strip()
        if not stripped:
            columns = None
            continue
        named = _GROUP_LINE.match(stripped)
        if named:
            group = named.group(1)
            if "has no active members" in stripped:
                parsed.count("groups_without_active_members")
            continue
        header = _header_columns(line)
        if header:
            columns = header
            continue
        if columns is None:
            parsed.problems.append(Problem("line outside a consumer-group table", line, line=number))
            continue
        cells = _split_row(line, columns)
        if cells is None:
            parsed.problems.append(Problem(f"row has fewer cells than the {len(columns)} columns of its header",
                                           line, line=number))
            continue
        record = dict(zip((label for label, _ in columns), cells))
        row_group = record.get("GROUP") or group
        if "TOPIC" in record and "PARTITION" in record:
            parsed.extend(_offsets_row(record, row_group, observed_at, line, number))
        elif "CONSUMER-ID" in record:
            members = _members_rows(record, row_group, observed_at, line, number)
            parsed.extend(members)
            members_rows += members.candidates
        elif "STATE" in record:
            parsed.extend(_state_row(record, row_group, observed_at, line, number))
        else:
            parsed.problems.append(Problem("table of an unknown consumer-groups view", line, line=number))
    return _count_group_members(parsed, members_rows)


def _offsets_row(record: dict[str, str], group: str | None, observed_at: dt.datetime, raw: str, number: int) -> Parsed:
    parsed = Parsed()
    values = {label: _integer(record[label]) for label in ("PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG")}
    for label, value in values.items():
        if isinstance(value, str):
            parsed.problems.append(Problem(f"{label} is not a number: {value!r}", raw, line=number, field=label))
            return parsed
    if values["PARTITION"] is None:
        parsed.problems.append(Problem("PARTITION is missing", raw, line=number, field="PARTITION"))
        return parsed
    consumer = record.get("CONSUMER-ID", "-")
    attributes: dict[str, Any] = {
        "current_offset": values["CURRENT-OFFSET"],
        "log_end_offset": values["LOG-END-OFFSET"],
    }
    for label in ("CONSUMER-ID", "HOST", "CLIENT-ID"):
        if record.get(label, "-") != "-":
            attributes[label.lower().replace("-", "_")] = record[label]
    row = {
        "observed_at": observed_at,
        "broker": "kafka",
        "queue": record["TOPIC"],
        "consumer_group": group,
        "partition": values["PARTITION"],
        "lag": values["LAG"],
        "consumers": 0 if consumer == "-" else 1,
    }
    parsed.candidates.append(Candidate(row, raw, number, attributes))
    return parsed


def _members_rows(record: dict[str, str], group: str | None, observed_at: dt.datetime, raw: str, number: int) -> Parsed:
    parsed = Parsed()
    assignment = record.get("ASSIGNMENT")
    attributes = {label.lower().replace("-", "_"): record[label] for label in ("CONSUMER-ID", "HOST", "CLIENT-ID")
                  if record.get(label, "-") != "-"}
    if assignment is None:
        # Without --verbose a member's partitions are unknown: the group row counts members.
        parsed.candidates.append(Candidate({"observed_at": observed_at, "broker": "kafka", "queue": AGGREGATE_QUEUE,
                                            "consumer_group": group, "consumers": 1}, raw, number, {"members": [attributes]}))
        return parsed
    for topic, partitions in _ASSIGNMENT.findall(assignment):
        for partition in partitions.split(","):
            row = {"observed_at": observed_at, "broker": "kafka", "queue": topic, "consumer_group": group,
                   "partition": int(partition), "consumers": 1}
            parsed.candidates.append(Candidate(row, raw, number, dict(attributes)))
    if not parsed.candidates:
        parsed.count("members_without_partitions")
    return parsed


def _count_group_members(parsed: Parsed, members_rows: list[Candidate]) -> Parsed:
    """Fold the non-verbose members view's per-member rows into one row per group."""
    group_rows = [c for c in members_rows if c.row["queue"] == AGGREGATE_QUEUE]
    if not group_rows:
        return parsed
    merged: dict[Any, Candidate] = {}
    for candidate in group_rows:
        key = candidate.row["consumer_group"]
        if key in merged:
            merged[key].row["consumers"] += 1
            merged[key].attributes["members"] += candidate.attributes["members"]
            merged[key].raw += "\n" + candidate.raw
        else:
            merged[key] = candidate
    parsed.candidates = [c for c in parsed.candidates if c not in group_rows] + list(merged.values())
    return parsed


def _state_row(record: dict[str, str], group: str | None, observed_at: dt.datetime, raw: str, number: int) -> Parsed:
    parsed = Parsed()
    members = _integer(record.get("#MEMBERS", "-"))
    if isinstance(members, str):
        parsed.problems.append(Problem(f"#MEMBERS is not a number: {members!r}", raw, line=number, field="#MEMBERS"))
        return parsed
    attributes = {"state": record.get("STATE"), "coordinator": record.get("COORDINATOR (ID)"),
                  "assignment_strategy": record.get("ASSIGNMENT-STRATEGY")}
    row = {"observed_at": observed_at, "broker": "kafka", "queue": AGGREGATE_QUEUE, "consumer_group": group,
           "consumers": members}
    parsed.candidates.append(Candidate(row, raw, number, {k: v for k, v in attributes.items() if v not in (None, "", "-")}))
    return parsed


def parse_burrow(document: Any, observed_at: dt.datetime) -> Parsed:
    """Rows for one Burrow v3 consumer lag response."""
    parsed = Parsed()
    status = document.get("status") if isinstance(document, dict) else None
    if not isinstance(status, dict) or not isinstance(status.get("partitions"), list):
        parsed.problems.append(Problem("Burrow response without status.partitions", json.dumps(document)[:4096],
                                       field="status.partitions"))
        return parsed
    group_attributes = {"group_status": status.get("status"), "group_total_lag": status.get("totallag")}
    for entry in status["partitions"]:
        raw = json.dumps(entry, sort_keys=True)
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str) or entry.get("partition") is None:
            parsed.problems.append(Problem("Burrow partition without topic or partition", raw, field="topic"))
            continue
        end = entry.get("end") if isinstance(entry.get("end"), dict) else {}
        row = {
            "observed_at": observed_at,
            "broker": "kafka",
            "vhost": status.get("cluster"),
            "queue": entry["topic"],
            "consumer_group": status.get("group"),
            "partition": entry["partition"],
            "lag": entry.get("current_lag"),
        }
        attributes = {**group_attributes, "status": entry.get("status"), "owner": entry.get("owner"),
                      "committed_offset": end.get("offset"), "committed_at_ms": end.get("timestamp")}
        parsed.candidates.append(Candidate(row, raw, None, {k: v for k, v in attributes.items() if v not in (None, "")}))
    return parsed
