"""The canonical schema: every table the landing zone and the warehouse hold, defined once.

Each table is a pydantic model; each field's description is that column's documentation, and
``ddl()`` derives the DuckDB ``CREATE TABLE`` from the model, so the Python records, the Parquet
batches and the warehouse can never disagree. ``docs/schema.md`` is generated from this module and
the marts' model files (``python -m r2p.contract > docs/schema.md``); a test keeps them in step.

Vocabulary (stages, outcomes, span attributes) is ../shared/DOMAIN.md's. Times are UTC
``TIMESTAMPTZ``; money is ``DECIMAL(18,4)``; free-form attribute bags are JSON text.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Collection
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STAGES: tuple[str, ...] = (
    "requisition",
    "approval",
    "budget_check",
    "po_creation",
    "po_transmission",
    "supplier_ack",
    "shipment",
    "receipt",
    "invoice",
    "match",
    "payment",
)
"""The R2P stages in flow order (DOMAIN.md section 1)."""

Stage = Literal[STAGES]  # type: ignore[valid-type]

OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "exception", "rejected", "returned", "cancelled", "pending")
"""Outcomes of a business transaction event. ``failed`` and ``exception`` count as failures."""

PRIORITIES: tuple[str, ...] = ("stat", "urgent", "routine")

SPAN_KINDS: tuple[str, ...] = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES: tuple[str, ...] = ("unset", "ok", "error")


class _JsonColumn:
    """Marks a str column as JSON text (an attribute map or a list), stored as DuckDB JSON."""


Json = Annotated[str, _JsonColumn]


def column(description: str, **kwargs: Any) -> Any:
    """A documented column; the description is the contract users read in docs/schema.md."""
    return Field(description=description, **kwargs)


class Record(BaseModel):
    """Base of every canonical record: strict about unknown fields so a typo cannot land."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: typing.ClassVar[str]
    key: typing.ClassVar[tuple[str, ...]]
    """Columns that identify a row; the warehouse keeps the first row of each key it sees."""
    partition_by: typing.ClassVar[str | None]
    """The time column whose UTC day partitions the landing zone (None: not partitioned)."""


BUSINESS_COLUMNS: tuple[str, ...] = (
    "facility_id",
    "supplier_id",
    "stage",
    "requisition_id",
    "po_number",
    "receipt_id",
    "invoice_id",
    "object_type",
    "object_id",
    "source_system",
    "target_system",
    "priority",
)
"""The span columns pulled out of ``procurement.*`` attributes (DOMAIN.md section 4), in order."""


class Span(Record):
    """One OpenTelemetry span, with its business context pulled out into columns.

    A business column the span and its resource leave empty takes the value of the span's nearest
    ancestor in the trace that has one (in the warehouse; landed rows keep the span's own)."""

    table: typing.ClassVar[str] = "spans"
    key: typing.ClassVar[tuple[str, ...]] = ("trace_id", "span_id")
    partition_by: typing.ClassVar[str | None] = "start_time"

    trace_id: str = column("Trace id, 32 lower-case hex digits.")
    span_id: str = column("Span id, 16 lower-case hex digits.")
    parent_span_id: str | None = column("Parent span id, 16 lower-case hex digits; NULL for a root span.", default=None)
    trace_state: str | None = column("W3C trace state, as sent.", default=None)
    flags: int | None = column("W3C trace flags (bit 0: sampled).", default=None)
    name: str = column("Span name, e.g. `POST /po` or `receipts publish`.")
    kind: str = column("Span kind: unspecified, internal, server, client, producer or consumer.")
    start_time: dt.datetime = column("When the operation started (UTC, microseconds).")
    end_time: dt.datetime = column("When the operation ended (UTC, microseconds).")
    duration_ms: float = column("end_time - start_time in milliseconds, from the nanosecond timestamps.")
    status_code: str = column("Span status: unset, ok or error. Error spans count as failed operations.")
    status_message: str | None = column("Status description (redacted).", default=None)
    service_name: str | None = column("Resource attribute `service.name`: the system or adapter that ran it.", default=None)
    scope_name: str | None = column("Instrumentation scope name.", default=None)
    scope_version: str | None = column("Instrumentation scope version.", default=None)
    facility_id: str | None = column("`procurement.facility.id`: facility code, e.g. NORTH-GENERAL.", default=None)
    supplier_id: str | None = column("`procurement.supplier.id`: supplier code.", default=None)
    stage: str | None = column("`procurement.stage`: a stage code of DOMAIN.md section 1.", default=None)
    requisition_id: str | None = column("`procurement.requisition.id` correlation id.", default=None)
    po_number: str | None = column("`procurement.po.number` correlation id.", default=None)
    receipt_id: str | None = column("`procurement.receipt.id` correlation id.", default=None)
    invoice_id: str | None = column("`procurement.invoice.id` correlation id.", default=None)
    object_type: str | None = column("`procurement.object.type`: the business object acted on.", default=None)
    object_id: str | None = column("`procurement.object.id`: that object's id.", default=None)
    source_system: str | None = column("`procurement.source.system`: the sending end of an integration flow.", default=None)
    target_system: str | None = column("`procurement.target.system`: the receiving end of an integration flow.", default=None)
    priority: str | None = column("`procurement.priority`: stat, urgent or routine.", default=None)
    error_type: str | None = column("`error.type`, else the first exception event's `exception.type`.", default=None)
    http_status_code: int | None = column("`http.response.status_code` where the span is an HTTP call.", default=None)
    attributes: Json = column("Every other span attribute, as a JSON object of key to value.")
    resource_attributes: Json = column("Resource attributes (including service.name), as a JSON object.")
    scope_attributes: Json | None = column("Instrumentation scope attributes, as a JSON object.", default=None)
    batch_id: str = column("The landing batch this row came from (see ingest_batches); set by the landing writer.", default="")


class SpanEvent(Record):
    """A span event, e.g. an `exception` event with exception.type / message / stacktrace."""

    table: typing.ClassVar[str] = "span_events"
    key: typing.ClassVar[tuple[str, ...]] = ("trace_id", "span_id", "event_index")
    partition_by: typing.ClassVar[str | None] = "time"

    trace_id: str = column("Trace id of the span the event belongs to.")
    span_id: str = column("Span id of the span the event belongs to.")
    event_index: int = column("Position of the event within its span, from 0.")
    time: dt.datetime = column("When the event happened (UTC).")
    name: str = column("Event name; `exception` for a recorded exception.")
    attributes: Json = column("Event attributes as a JSON object (redacted).")
    batch_id: str = column("The landing batch this row came from; set by the landing writer.", default="")


class SpanLink(Record):
    """A link from a span to another span, e.g. a consumer span to the producer span of its message."""

    table: typing.ClassVar[str] = "span_links"
    key: typing.ClassVar[tuple[str, ...]] = ("trace_id", "span_id", "link_index")
    partition_by: typing.ClassVar[str | None] = None

    trace_id: str = column("Trace id of the linking span.")
    span_id: str = column("Span id of the linking span.")
    link_index: int = column("Position of the link within its span, from 0.")
    linked_trace_id: str = column("Trace id of the linked span.")
    linked_span_id: str = column("Span id of the linked span.")
    trace_state: str | None = column("Trace state of the link.", default=None)
    attributes: Json = column("Link attributes as a JSON object.")
    batch_id: str = column("The landing batch this row came from; set by the landing writer.", default="")


class BacklogSnapshot(Record):
    """One queue (RabbitMQ) or topic partition and consumer group (Kafka) at one observation."""

    table: typing.ClassVar[str] = "backlog_snapshots"
    key: typing.ClassVar[tuple[str, ...]] = ("observed_at", "broker", "vhost", "queue", "consumer_group", "partition")
    partition_by: typing.ClassVar[str | None] = "observed_at"

    observed_at: dt.datetime = column("When the snapshot was taken (UTC).")
    broker: str = column("Broker kind: rabbitmq or kafka.")
    vhost: str | None = column("RabbitMQ virtual host; Kafka cluster name where known.", default=None)
    queue: str = column("Queue name (RabbitMQ) or topic (Kafka).")
    consumer_group: str | None = column("Kafka consumer group; NULL for RabbitMQ.", default=None)
    partition: int | None = column("Kafka partition; NULL for RabbitMQ.", default=None)
    depth: int | None = column("Messages in the queue (RabbitMQ `messages`); NULL where the source does not say.", default=None)
    ready: int | None = column("Messages ready for delivery.", default=None)
    unacked: int | None = column("Messages delivered and not yet acknowledged.", default=None)
    consumers: int | None = column("Consumers attached (RabbitMQ) or active members (Kafka).", default=None)
    lag: int | None = column("Kafka consumer lag in messages (log-end offset minus committed offset).", default=None)
    oldest_message_age_s: float | None = column("Age of the oldest message in seconds, where the source gives it.", default=None)
    publish_rate: float | None = column("Messages published per second, as the broker reports it.", default=None)
    deliver_rate: float | None = column("Messages delivered per second, as the broker reports it.", default=None)
    is_dead_letter: bool = column("True when the queue is a dead-letter queue.")
    flow: str | None = column("Integration flow the queue belongs to (configured), e.g. receipt-sync.", default=None)
    stage: str | None = column("Stage of that flow.", default=None)
    source_system: str | None = column("Sending system of that flow.", default=None)
    target_system: str | None = column("Receiving system of that flow.", default=None)
    facility_id: str | None = column("Facility of that flow, where the queue is per facility.", default=None)
    attributes: Json = column("Everything else the source said about the queue, as a JSON object.")
    batch_id: str = column("The landing batch this row came from; set by the landing writer.", default="")


class TransactionEvent(Record):
    """One business event from an ERP, procurement suite, warehouse system, supplier network or AP platform."""

    table: typing.ClassVar[str] = "transaction_events"
    key: typing.ClassVar[tuple[str, ...]] = ("event_id",)
    partition_by: typing.ClassVar[str | None] = "occurred_at"

    event_id: str = column(
        "Stable event key: the source's own event id, else a hash of system, object, event type, "
        "occurred time and mapped content. The same event delivered twice has the same id."
    )
    system: str = column("System that recorded the event, e.g. procurement, erp, legacy-erp, wms-north, ap.")
    occurred_at: dt.datetime = column("When the event happened in its system (UTC).")
    recorded_at: dt.datetime | None = column("When the system recorded or exported it (UTC); lag = recorded_at - occurred_at.", default=None)
    object_type: str = column("Business object: requisition, purchase_order, po_ack, asn, receipt, invoice, payment, supplier ...")
    object_id: str = column("That object's id in its system.")
    event_type: str = column("The source's own event or activity name, kept verbatim.")
    stage: str | None = column("Stage code of DOMAIN.md section 1, mapped from the event type.", default=None)
    outcome: str = column("succeeded, failed, exception, rejected, returned, cancelled or pending.")
    amount: Decimal | None = column("Money value of the object at this event.", default=None)
    currency: str | None = column("ISO 4217 currency of amount.", default=None)
    quantity: float | None = column("Quantity (ordered, shipped, received or invoiced) where the event carries one.", default=None)
    unit_price: Decimal | None = column("Unit price where the event carries one.", default=None)
    facility_id: str | None = column("Facility code.", default=None)
    supplier_id: str | None = column("Supplier code.", default=None)
    department: str | None = column("Requesting department or cost centre.", default=None)
    priority: str | None = column("stat, urgent or routine.", default=None)
    requisition_id: str | None = column("Requisition id correlation.", default=None)
    po_number: str | None = column("PO number correlation.", default=None)
    po_line: int | None = column("PO line number, for line-level events (EDI, receipts, invoices).", default=None)
    receipt_id: str | None = column("Receipt id correlation.", default=None)
    invoice_id: str | None = column("Invoice id correlation.", default=None)
    trace_id: str | None = column("Trace id where the system knows it.", default=None)
    actor: str | None = column("User, role or batch job that caused the event.", default=None)
    attributes: Json = column("Remaining source columns, as a JSON object.")
    batch_id: str = column("The landing batch this row came from; set by the landing writer.", default="")


class Reject(Record):
    """An input record that could not be accepted, kept with its reason and raw text."""

    table: typing.ClassVar[str] = "rejects"
    key: typing.ClassVar[tuple[str, ...]] = ("batch_id", "reject_index")
    partition_by: typing.ClassVar[str | None] = None

    batch_id: str = column("The landing batch of the input the record came from (set by the landing writer).", default="")
    reject_index: int = column("Position of the reject within its batch, from 0.")
    source: str = column("Collector kind: traces, backlog, transactions or triage.")
    input: str = column("File path or endpoint the record came from.")
    line: int | None = column("1-based line number in the input, where it has lines.", default=None)
    byte_offset: int | None = column("Byte offset of the record in the input, where lines do not apply.", default=None)
    field: str | None = column("Column or field at fault, where one is.", default=None)
    reason: str = column("Why the record was rejected, in one line.")
    raw: str = column("The raw text of the record (redacted like accepted data), cut at 64 KiB.")


class IngestBatch(Record):
    """One landed batch: the commit record written after its data files, so partial writes never load."""

    table: typing.ClassVar[str] = "ingest_batches"
    key: typing.ClassVar[tuple[str, ...]] = ("batch_id",)
    partition_by: typing.ClassVar[str | None] = None

    batch_id: str = column("Content hash (SHA-256, hex) of the input and the collector kind: the batch's name.")
    source: str = column("Collector kind: traces, backlog, transactions or triage.")
    input: str = column("File path, endpoint or description of the input.")
    landed_at: dt.datetime = column("When the batch was committed to the landing zone (UTC).")
    seconds: float = column("Time taken to parse, normalise and write the batch.")
    record_counts: Json = column("Rows landed per table, as a JSON object, e.g. {\"spans\": 120}.")
    rejected: int = column("Records rejected from this input.")
    files: Json = column("Landing files of this batch relative to the landing root, as a JSON list.")
    input_offset: int | None = column("Byte offset reached in a followed input, for resuming after a restart.", default=None)
    notes: Json | None = column("Collector-specific counters, e.g. redactions per rule, as a JSON object.", default=None)


class TriageEvent(Record):
    """A human triage decision on an exception group; landed so it survives a rebuild."""

    table: typing.ClassVar[str] = "triage_events"
    key: typing.ClassVar[tuple[str, ...]] = ("triage_event_id",)
    partition_by: typing.ClassVar[str | None] = "changed_at"

    triage_event_id: str = column(
        "Id of the decision: a content hash of the event without its time, so a double submit lands once."
    )
    fingerprint: str = column("Exception group fingerprint the decision applies to.")
    changed_at: dt.datetime = column("When the decision was made (UTC).")
    changed_by: str = column("Who made it: login name or the name the user entered.")
    action: str = column("acknowledge, resolve, ignore, reopen, assign or note.")
    status_before: str | None = column("Group status its author saw: new, acknowledged, resolved, ignored or regressed.", default=None)
    status_after: str | None = column("Group status after the decision; NULL for assign and note, which leave it.", default=None)
    assignee: str | None = column("For assign: the new assignee (empty text: nobody); NULL for other actions.", default=None)
    note: str | None = column("Free-text note.", default=None)
    ignore_until: dt.datetime | None = column("For ignore: until when (NULL: until it escalates).", default=None)
    based_on_event_id: str | None = column(
        "Optimistic concurrency: the group's latest triage_event_id its author saw (NULL: none). When another "
        "decision landed in between, both stand in order of changed_at (last write wins) and the later is flagged.",
        default=None,
    )


TABLES: tuple[type[Record], ...] = (
    Span,
    SpanEvent,
    SpanLink,
    BacklogSnapshot,
    TransactionEvent,
    Reject,
    IngestBatch,
    TriageEvent,
)
"""Every canonical table, in the order the warehouse creates them."""

BY_NAME: dict[str, type[Record]] = {model.table: model for model in TABLES}

_SCALAR_SQL_TYPES: dict[Any, str] = {
    str: "VARCHAR",
    int: "BIGINT",
    float: "DOUBLE",
    bool: "BOOLEAN",
    dt.datetime: "TIMESTAMPTZ",
    Decimal: "DECIMAL(18,4)",
    _JsonColumn: "JSON",
}


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, bool]:
    """Return the scalar type of a field (``_JsonColumn`` for JSON) and whether it admits None."""
    nullable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        nullable = True
    if typing.get_origin(annotation) is Annotated:
        metadata = [*metadata, *typing.get_args(annotation)[1:]]
        annotation = typing.get_args(annotation)[0]
    return (_JsonColumn if _JsonColumn in metadata else annotation), nullable


def columns(model: type[Record]) -> list[tuple[str, str, bool, str]]:
    """(name, DuckDB type, nullable, description) for each column of a table, in order."""
    result = []
    for name, info in model.model_fields.items():
        scalar, nullable = _unwrap(info.annotation, info.metadata)
        result.append((name, _SCALAR_SQL_TYPES[scalar], nullable, info.description or ""))
    return result


def column_names(model: type[Record]) -> list[str]:
    return list(model.model_fields)


def ddl(model: type[Record]) -> str:
    """The DuckDB CREATE TABLE statement of a table."""
    body = ",\n    ".join(
        f"{name} {sql_type}{'' if nullable else ' NOT NULL'}" for name, sql_type, nullable, _ in columns(model)
    )
    return f"CREATE TABLE IF NOT EXISTS {model.table} (\n    {body}\n)"


def select_canonical(
    model: type[Record], relation: str, passthrough: tuple[str, ...] = (), as_is: Collection[str] = ()
) -> str:
    """A SELECT that casts ``relation``'s columns to the table's types, in the table's order.

    Landing writers push every batch through this, so a collector cannot land a column the
    contract does not have, or land one under the wrong type. ``passthrough`` columns are
    selected first, uncast (the warehouse keeps the Parquet file name and row number this way);
    ``as_is`` columns already have a type that is stored as the table's (an ENUM for a VARCHAR).
    """
    casts = [
        name if name in as_is else f"CAST({name} AS {sql_type}) AS {name}" for name, sql_type, _, _ in columns(model)
    ]
    return f"SELECT {', '.join([*passthrough, *casts])} FROM {relation}"


def markdown() -> str:
    """The public contract of the warehouse's tables, as Markdown (docs/schema.md)."""
    lines = [
        "# Warehouse contract",
        "",
        "Generated from `r2p/schema.py` and `metrics/models/marts/` by `python -m r2p.contract`; do not edit by hand.",
        "The warehouse is `<data-dir>/warehouse.duckdb`. Times are UTC (`TIMESTAMPTZ`); JSON columns hold",
        "objects of attribute key to value. Each table keeps the first row of each key it receives.",
        "",
    ]
    for model in TABLES:
        lines += [f"## `{model.table}`", "", (model.__doc__ or "").strip(), "", f"Key: `{', '.join(model.key)}`.", ""]
        lines += ["| column | type | null | meaning |", "|---|---|---|---|"]
        for name, sql_type, nullable, description in columns(model):
            lines.append(f"| `{name}` | {sql_type} | {'yes' if nullable else 'no'} | {description} |")
        lines.append("")
    return "\n".join(lines)
