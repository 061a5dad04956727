"""The backlog collector: queue and consumer-group snapshots into ``backlog_snapshots``.

Inputs (the shape is read from the content, the extension only breaking ties):

* RabbitMQ management API ``GET /api/queues`` JSON array (a single response);
* capture files ``queues-*.jsonl``: one ``{"observed_at": "<ISO 8601>", "queues": [...]}`` a line;
* RabbitMQ Prometheus text (``/metrics``, ``/metrics/per-object``, ``/metrics/detailed``);
* ``kafka-consumer-groups --describe`` output (offsets, members, state views), a single response;
* capture files of blocks, each a line ``# observed_at <ISO 8601>`` then the verbatim output;
* Burrow's consumer lag JSON;
* a plain CSV with the columns documented in ``collectors.broker_csv``.

A single response carries no observation time: it is ``--observed-at`` when given, else the
file's modification time; the batch notes hold it (``observed_at``) and say which
(``observed_at_option`` or ``observed_at_file_mtime``). Capture files carry their own times.

Rows are validated, mapped to flows and landed by ``collectors.broker_landing``.

``r2p poll rabbitmq|prometheus`` (``collectors.broker_poller``) lands live snapshots the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import click

from collectors import broker_csv, broker_kafka, broker_prometheus, broker_rabbitmq
from collectors.broker_common import Parsed, Problem, parse_timestamp
from collectors.broker_flows import CONFIG_OPTION, FlowConfig, load_config
from collectors.broker_landing import SOURCE, land
from collectors.broker_poller import poll_group
from collectors.files import expand, ingest_files
from r2p.cli import Context, pass_context, report_ingest
from r2p.landing import BatchWriter

WHOLE_FILE_RAW = 4096
"""Characters of a whole unreadable file kept as the reject's raw text."""

_OBSERVED_MARKER = re.compile(r"^# observed_at (\S+)[ \t]*$", re.MULTILINE)


def parse_file(path: Path, data: bytes, observed_at: dt.datetime | None, consumer_group: str | None) -> Parsed:
    """Parse one input file of any supported shape into candidates and problems."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return _whole_file_problem(f"not UTF-8 text (byte {error.start})", data.decode("utf-8", "replace"))
    stripped = text.lstrip()
    if not stripped:
        return _whole_file_problem("empty input", text)
    single_observation = observed_at or dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    note = "observed_at_option" if observed_at else "observed_at_file_mtime"
    if stripped.startswith("# observed_at"):
        return parse_kafka_capture(text, consumer_group)
    if stripped[0] in "[{":
        return _parse_json(path, text, single_observation, note)
    if broker_prometheus.looks_like_prometheus(text):
        return _single(broker_prometheus.parse_metrics(text, single_observation), note, single_observation)
    if broker_kafka.looks_like_consumer_groups(text):
        return _single(broker_kafka.parse_describe(text, single_observation, default_group=consumer_group), note,
                       single_observation)
    if broker_csv.looks_like_csv(text):
        return broker_csv.parse_csv(text)
    return _whole_file_problem(
        "unrecognised content: expected RabbitMQ queues JSON, a capture file, Prometheus text, "
        "kafka-consumer-groups output, Burrow JSON or a backlog CSV", text)


def _single(parsed: Parsed, note: str, observed_at: dt.datetime) -> Parsed:
    """Record a single response's observation time and where it came from (the option or the file)."""
    if parsed.candidates:
        parsed.count(note)
        parsed.observed_at = observed_at
    return parsed


def _whole_file_problem(reason: str, text: str, byte_offset: int | None = None) -> Parsed:
    return Parsed(problems=[Problem(reason, text[:WHOLE_FILE_RAW], byte_offset=byte_offset)])


def _parse_json(path: Path, text: str, observed_at: dt.datetime, note: str) -> Parsed:
    if path.suffix != ".jsonl":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            if not _first_line_is_capture(text):
                return _whole_file_problem(f"invalid JSON (truncated?): {error.msg} at line {error.lineno} "
                                           f"column {error.colno}", text, byte_offset=error.pos)
        else:
            if isinstance(document, list):
                return _single(broker_rabbitmq.parse_queues(document, observed_at), note, observed_at)
            if isinstance(document, dict) and "queues" in document and "observed_at" in document:
                return parse_rabbitmq_capture(text)
            if isinstance(document, dict) and "status" in document and "request" in document:
                return _single(broker_kafka.parse_burrow(document, observed_at), note, observed_at)
            if isinstance(document, dict) and "queue_totals" in document:
                return _whole_file_problem("GET /api/overview holds node totals, not queues: capture GET /api/queues", text)
            return _whole_file_problem("unrecognised JSON document: expected a GET /api/queues array, a capture "
                                       "line or a Burrow lag response", text)
    return parse_rabbitmq_capture(text)


def _first_line_is_capture(text: str) -> bool:
    try:
        first = json.loads(text.lstrip().split("\n", 1)[0])
    except json.JSONDecodeError:
        return False
    return isinstance(first, dict) and "queues" in first


def parse_rabbitmq_capture(text: str) -> Parsed:
    """A ``queues-*.jsonl`` capture: each line one observation; a bad line is one reject."""
    parsed = Parsed()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            parsed.problems.append(Problem(f"invalid JSON (truncated?): {error.msg} at column {error.colno}", line,
                                           line=number))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("observed_at"), str):
            parsed.problems.append(Problem("capture line without observed_at", line, line=number, field="observed_at"))
            continue
        if "queues" not in record:
            parsed.problems.append(Problem("capture line without queues", line, line=number, field="queues"))
            continue
        try:
            observed_at = parse_timestamp(record["observed_at"])
        except ValueError as error:
            parsed.problems.append(Problem(str(error), line, line=number, field="observed_at"))
            continue
        parsed.extend(broker_rabbitmq.parse_queues(record["queues"], observed_at, line=number))
        parsed.count("observations")
    return parsed


def parse_kafka_capture(text: str, consumer_group: str | None) -> Parsed:
    """A ``consumer-groups-*.txt`` capture: blocks of ``# observed_at <time>`` then the output."""
    parsed = Parsed()
    markers = list(_OBSERVED_MARKER.finditer(text))
    preamble = text[: markers[0].start()] if markers else text
    if preamble.strip():
        parsed.problems.append(Problem("text before the first '# observed_at' line", preamble[:WHOLE_FILE_RAW], line=1))
    line, counted_to = 1, 0
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        line += text.count("\n", counted_to, marker.start())
        counted_to = marker.start()
        try:
            observed_at = parse_timestamp(marker.group(1))
        except ValueError as error:
            parsed.problems.append(Problem(str(error), marker.group(0), line=line, field="observed_at"))
            continue
        # The block starts with the marker line's own newline, so its first line is the marker's.
        block = text[marker.end():end]
        parsed.extend(broker_kafka.parse_describe(block, observed_at, first_line=line, default_group=consumer_group))
        parsed.count("observations")
    return parsed


def collect_file(path: Path, writer: BatchWriter, config: FlowConfig,
                 observed_at: dt.datetime | None = None, consumer_group: str | None = None) -> None:
    """Land one backlog input file of any supported shape into ``writer``."""
    land(parse_file(path, path.read_bytes(), observed_at, consumer_group), writer, config)


def _parse_observed_at(context: click.Context, parameter: click.Parameter, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from None


@click.command("backlog")
@click.argument("paths", nargs=-1, required=True)
@CONFIG_OPTION
@click.option("--observed-at", callback=_parse_observed_at,
              help="Observation time (ISO 8601) of single-response files; default: each file's modification time.")
@click.option("--consumer-group", help="Kafka group of --describe output that does not name it.")
@pass_context
def backlog_ingest_command(context: Context, paths: tuple[str, ...], config_path: Path | None,
                           observed_at: dt.datetime | None, consumer_group: str | None) -> None:
    """Land queue and consumer-group snapshots: RabbitMQ /api/queues JSON and captures, RabbitMQ
    Prometheus text, kafka-consumer-groups --describe output and captures, Burrow lag JSON, CSV."""
    config = load_config(config_path)
    files = expand(paths)
    summary = ingest_files(
        SOURCE, files, context.landing(), lambda path, writer: collect_file(path, writer, config, observed_at, consumer_group)
    )
    report_ingest(context, summary)


COMMANDS = [backlog_ingest_command, poll_group]
