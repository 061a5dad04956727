"""The mapping file: how one source system's export becomes ``transaction_events`` rows.

A mapping is a TOML file (documented in ``examples/mappings/README.md``) validated by the models
below. A new source system is a new mapping file, never new code: it names which source column
holds each canonical column, how its timestamps and amounts are written, and how the system's own
event types and status values map to DOMAIN.md stages and outcomes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from r2p import schema
from r2p.config import load_toml

TIME_COLUMNS = ("occurred_at", "recorded_at")
MONEY_COLUMNS = ("amount", "unit_price")
NUMBER_COLUMNS = ("quantity",)
INTEGER_COLUMNS = ("po_line",)
TEXT_COLUMNS = (
    "object_type",
    "object_id",
    "event_type",
    "stage",
    "outcome",
    "currency",
    "facility_id",
    "supplier_id",
    "department",
    "priority",
    "requisition_id",
    "po_number",
    "receipt_id",
    "invoice_id",
    "trace_id",
    "actor",
)
MAPPABLE_COLUMNS = ("event_id", "system", *TIME_COLUMNS, *MONEY_COLUMNS, *NUMBER_COLUMNS, *INTEGER_COLUMNS, *TEXT_COLUMNS)
"""Canonical columns a mapping may fill (``attributes`` and ``batch_id`` are filled by the collector)."""

REQUIRED_COLUMNS = ("object_type", "object_id", "event_type", "occurred_at")
"""Columns every event needs from its source (system, outcome and event_id have fallbacks)."""

TIME_FORMATS = ("iso8601", "epoch_s", "epoch_ms")
TABULAR_FORMATS = ("csv", "tsv", "jsonl", "parquet")
EVENT_LOG_FORMATS = ("ocel", "xes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """Where one canonical column comes from, and how its text is read."""

    column: list[str] = Field(
        description="Source column; with several names, each row takes the first non-empty one the file has."
    )
    format: list[str] | None = Field(
        None,
        description="Timestamps: iso8601, epoch_s, epoch_ms, or strptime patterns (the first that parses wins).",
    )
    timezone: str | None = Field(None, description="Zone of local timestamps in this column (default: source.timezone).")
    decimal: Literal[".", ","] | None = Field(None, description="Decimal separator (default: source.decimal).")
    map: dict[str, str] | None = Field(None, description="Source value -> canonical value; unlisted values are kept.")

    @field_validator("column", "format", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class Source(_Strict):
    """What the input is and how its text is written."""

    system: str | None = Field(None, description="System name of every row (unless a `system` column is mapped).")
    format: Literal["csv", "tsv", "jsonl", "parquet", "ocel", "xes", "x12"] = "csv"
    delimiter: str | None = Field(None, description="Field delimiter (csv: `,`, tsv: tab).")
    quote: str = '"'
    timezone: str = Field("UTC", description="Zone of timestamps written without an offset.")
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'"] = Field("", description="Thousands separator to drop from amounts.")
    unmapped_event_types: Literal["reject", "keep"] = Field(
        "reject", description="An event type missing from [event_types]: reject the row, or keep it without a stage."
    )
    attributes: Literal["rest", "none"] | list[str] = Field(
        "rest", description="Source columns kept in `attributes`: every unmapped one, none, or a list."
    )
    ignore_columns: list[str] = Field(default_factory=list, description="Source columns never kept in attributes.")
    probe_rows: int = Field(200, ge=1, description="When all of the first N rows are rejected, stop with one message.")


class EventTypeRule(_Strict):
    """What one of the source's event types means."""

    stage: schema.Stage | None = None
    outcome: Literal[schema.OUTCOMES] | None = None  # type: ignore[valid-type]
    object_type: str | None = Field(None, description="Business object of this event type, overriding the column.")


class Ocel(_Strict):
    """How OCEL 2.0 objects become an event's object and its correlation ids."""

    object_types: list[str] = Field(
        description="OCEL object types in flow order (requisition first). An event's object is its related object of "
        "the latest type; its correlation ids are reached by following object-to-object links to earlier types."
    )
    event_objects: dict[str, str] = Field(
        default_factory=dict,
        description="Event type -> OCEL object type of its object, where the latest related type is not it.",
    )


class Mapping(_Strict):
    """A whole mapping file."""

    source: Source
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    event_types: dict[str, EventTypeRule] = Field(default_factory=dict)
    defaults: EventTypeRule = Field(default_factory=lambda: EventTypeRule(outcome="succeeded"))
    ocel: Ocel | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _column_shorthand(cls, value):
        return {key: ({"column": spec} if isinstance(spec, (str, list)) else spec) for key, spec in value.items()}

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        for name in [*self.columns, *self.constants]:
            if name not in MAPPABLE_COLUMNS:
                raise ValueError(f"{name!r} is not a canonical column; choose from {', '.join(MAPPABLE_COLUMNS)}")
        both = set(self.columns) & set(self.constants)
        if both:
            raise ValueError(f"{sorted(both)} given both as column and constant")
        if self.source.format != "x12":
            if not self.source.system and "system" not in self.columns and "system" not in self.constants:
                raise ValueError("source.system (or a `system` column) is required")
            for name in REQUIRED_COLUMNS:
                if name not in self.columns and name not in self.constants and not (
                    name == "object_type" and any(rule.object_type for rule in self.event_types.values())
                ):
                    raise ValueError(f"required column {name!r} is neither mapped nor a constant")
        for name in TIME_COLUMNS:
            spec = self.columns.get(name)
            if spec and not spec.format:
                raise ValueError(f"columns.{name} needs a format: iso8601, epoch_s, epoch_ms or a strptime pattern")
        if self.source.format == "ocel" and self.ocel is None:
            raise ValueError("format = 'ocel' needs an [ocel] table with object_types")
        return self

    @property
    def system(self) -> str:
        return self.source.system or str(self.constants.get("system", ""))

    def fingerprint(self) -> bytes:
        """Canonical bytes of the mapping: part of the batch id, so a fixed mapping re-lands a file."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()


def load(path: Path | str) -> Mapping:
    """Read and validate a mapping file; any mistake is one UserError line naming the file and key."""
    return load_toml(Mapping, path, "mapping")
