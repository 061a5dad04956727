"""The configured integration flows (``metrics/defaults/flows.toml``) and their warehouse table.

A flow is one business object travelling from a source system to a target system with an SLA
(DOMAIN.md section 3, sync drift). The sync-drift, backlog, match-attribution and SLO models read
the flows from the table ``integration_flows``, which ``write_flow_table`` (re)creates from the
configuration before the models are built: the file ``flows.toml`` in the warehouse's data
directory when there is one, else the defaults shipped with the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from r2p.config import load_toml
from r2p.schema import STAGES

DEFAULT_FLOWS = Path(__file__).parent / "defaults" / "flows.toml"
FLOWS_FILE = "flows.toml"
"""A data directory's own flow configuration, replacing the defaults."""

FLOW_TABLE = "integration_flows"


class Flow(BaseModel):
    """One integration flow; see the header of metrics/defaults/flows.toml for each field."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    object_type: str
    stage: str | None = None
    source_system: str
    source_events: list[str] = Field(min_length=1)
    target_system: str
    target_events: list[str] = Field(min_length=1)
    key: Literal["object_id", "po_number", "receipt_id", "invoice_id", "requisition_id"] = "object_id"
    sla_minutes: float = Field(gt=0)
    slo_target: float = Field(default=0.99, gt=0, lt=1)
    source_state: str | None = None
    target_state: str | None = None
    clock_tolerance_minutes: float = Field(default=10, ge=0)
    queues: list[str] = []

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, stage: str | None) -> str | None:
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
        return stage


class FlowConfig(BaseModel):
    """The whole flows file: a list of flows with distinct names."""

    model_config = ConfigDict(extra="forbid")

    flows: list[Flow]

    @field_validator("flows")
    @classmethod
    def _distinct_names(cls, flows: list[Flow]) -> list[Flow]:
        names = [flow.name for flow in flows]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"flow names must be distinct: {', '.join(duplicated)}")
        return flows


def load_flows(path: Path = DEFAULT_FLOWS) -> FlowConfig:
    """Read and validate a flows file; a bad file is a UserError naming the file and the field."""
    return load_toml(FlowConfig, path, "flows file")


def config_path(con: duckdb.DuckDBPyConnection) -> Path:
    """The flows file for the warehouse behind ``con``: its data directory's flows.toml, else the defaults."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if row and row[0]:
        candidate = Path(row[0]).parent / FLOWS_FILE
        if candidate.exists():
            return candidate
    return DEFAULT_FLOWS


def flow_frame(config: FlowConfig) -> pd.DataFrame:
    """The flows as rows of the integration_flows table."""
    columns = list(Flow.model_fields)
    return pd.DataFrame([flow.model_dump() for flow in config.flows], columns=columns)


def write_flow_table(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create ``integration_flows`` from the configuration, typed even when it lists no flow."""
    frame = flow_frame(load_flows(config_path(con)))
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {FLOW_TABLE} (
            name VARCHAR NOT NULL, object_type VARCHAR NOT NULL, stage VARCHAR,
            source_system VARCHAR NOT NULL, source_events VARCHAR[] NOT NULL,
            target_system VARCHAR NOT NULL, target_events VARCHAR[] NOT NULL,
            key VARCHAR NOT NULL, sla_minutes DOUBLE NOT NULL, slo_target DOUBLE NOT NULL,
            source_state VARCHAR, target_state VARCHAR, clock_tolerance_minutes DOUBLE NOT NULL,
            queues VARCHAR[] NOT NULL
        )
        """
    )
    con.register("configured_flows", frame)
    try:
        con.execute(f"INSERT INTO {FLOW_TABLE} SELECT * FROM configured_flows")
    finally:
        con.unregister("configured_flows")


def flows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The flows the warehouse was last built with."""
    return con.execute(f"SELECT * FROM {FLOW_TABLE} ORDER BY name").df()
