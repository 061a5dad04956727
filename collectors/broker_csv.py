"""Plain CSV backlog snapshots: one row per queue or partition and observation.

Columns (header line required, any order; names as in backlog_snapshots):

* required: ``observed_at`` (ISO 8601; without a zone it is UTC), ``broker`` (rabbitmq or kafka),
  ``queue`` (queue or topic);
* optional: ``vhost``, ``consumer_group``, ``partition``, ``depth``, ``ready``, ``unacked``,
  ``consumers``, ``lag`` (integers), ``oldest_message_age_s``, ``publish_rate``, ``deliver_rate``
  (numbers), ``is_dead_letter`` (true/false), ``flow``, ``stage``, ``source_system``,
  ``target_system``, ``facility_id``: an empty cell is NULL (unknown, never 0); an empty
  ``is_dead_letter`` or flow column is filled from the flow configuration;
* any other column is kept in ``attributes``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from collectors.broker_common import COUNT_COLUMNS, RATE_COLUMNS, Candidate, Parsed, Problem, parse_timestamp
from collectors.broker_flows import FLOW_COLUMNS

REQUIRED = ("observed_at", "broker", "queue")
TEXT_COLUMNS = ("vhost", "consumer_group")
BROKERS = ("rabbitmq", "kafka")


def looks_like_csv(text: str) -> bool:
    """True when the first line is a CSV header naming the required columns."""
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    return all(name in [cell.strip() for cell in header] for name in REQUIRED)


def parse_csv(text: str) -> Parsed:
    """Rows of a backlog CSV; a row with a missing or unreadable value is a problem with its line."""
    parsed = Parsed()
    lines = text.splitlines()
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    for record in reader:
        number = reader.line_num
        raw = lines[number - 1] if number - 1 < len(lines) else ""
        if None in record:
            parsed.problems.append(Problem("more cells than header columns", raw, line=number))
            continue
        row, attributes, problem = _row(record)
        if problem is not None:
            problem.raw, problem.line = raw, number
            parsed.problems.append(problem)
            continue
        parsed.candidates.append(Candidate(row, raw, number, attributes))
    return parsed


def _row(record: dict[str, str | None]) -> tuple[dict[str, Any], dict[str, Any], Problem | None]:
    cells = {key: (value or "").strip() for key, value in record.items()}
    for name in REQUIRED:
        if not cells.get(name):
            return {}, {}, Problem(f"{name} is missing", "", field=name)
    row: dict[str, Any] = {"queue": cells["queue"]}
    try:
        row["observed_at"] = parse_timestamp(cells["observed_at"])
    except ValueError as error:
        return {}, {}, Problem(str(error), "", field="observed_at")
    if cells["broker"] not in BROKERS:
        return {}, {}, Problem(f"broker must be rabbitmq or kafka, not {cells['broker']!r}", "", field="broker")
    row["broker"] = cells["broker"]
    for name in (*TEXT_COLUMNS, *FLOW_COLUMNS):
        row[name] = cells.get(name) or None
    for name, convert in [(name, int) for name in (*COUNT_COLUMNS, "partition")] + [(name, float) for name in RATE_COLUMNS]:
        if cells.get(name):
            try:
                row[name] = convert(cells[name])
            except ValueError:
                return {}, {}, Problem(f"{name} is not a number: {cells[name]!r}", "", field=name)
    flag = cells.get("is_dead_letter", "").lower()
    if flag:
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            return {}, {}, Problem(f"is_dead_letter must be true or false, not {flag!r}", "", field="is_dead_letter")
        row["is_dead_letter"] = flag in ("true", "1", "yes")
    known = {*REQUIRED, *TEXT_COLUMNS, *FLOW_COLUMNS, *COUNT_COLUMNS, *RATE_COLUMNS, "partition", "is_dead_letter"}
    attributes = {key: value for key, value in cells.items() if key not in known and value}
    return row, attributes, None
