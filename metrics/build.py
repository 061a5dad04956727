"""Builds the SQL models under ``metrics/models``: staging and intermediate as views, marts as tables.

Each model is one file holding one SELECT, named after the file; a header of ``--`` comments says
what a row is and what each column means (collected into docs/schema.md). Models are built in
dependency order, found by the model names each file mentions. Marts are tables rebuilt at every
warehouse refresh, so pages read precomputed rows instead of grouping raw events per query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

MODELS_DIR = Path(__file__).parent / "models"
LAYERS = ("staging", "intermediate", "marts")


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str

    @property
    def materialised(self) -> bool:
        """Marts are tables; staging and intermediate models are views."""
        return self.layer == "marts"

    @property
    def doc(self) -> str:
        """The leading ``--`` comment block, without the markers."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            lines.append(line[2:].removeprefix(" "))
        return "\n".join(lines).strip()


@cache
def models() -> tuple[Model, ...]:
    """Every model, in an order where each comes after the models it reads."""
    found = {
        path.stem: Model(path.stem, layer, path.read_text())
        for layer in LAYERS
        for path in sorted((MODELS_DIR / layer).glob("*.sql"))
    }
    graph = {
        name: {other for other in found if other != name and re.search(rf"\b{other}\b", model.sql)}
        for name, model in found.items()
    }
    return tuple(found[name] for name in TopologicalSorter(graph).static_order())


def write_config_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The configuration tables models read (integration flows), rewritten before each build."""
    from metrics.flows import write_flow_table

    write_flow_table(con)


def build_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the staging and intermediate views, and any mart table that does not exist yet."""
    write_config_tables(con)
    existing = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for model in models():
        if not model.materialised:
            con.execute(f"CREATE OR REPLACE VIEW {model.name} AS {model.sql}")
        elif model.name not in existing:
            con.execute(f"CREATE TABLE {model.name} AS {model.sql}")


def build_marts(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every mart table from the current raw tables."""
    write_config_tables(con)
    for model in models():
        if model.materialised:
            con.execute(f"CREATE OR REPLACE TABLE {model.name} AS {model.sql}")


def markdown() -> str:
    """The marts' part of the warehouse contract, from their header comments."""
    lines = ["# Marts", "", "Tables rebuilt from the raw tables at every refresh; documented in their model files.", ""]
    for model in models():
        if model.materialised:
            lines += [f"## `{model.name}`", "", model.doc, ""]
    return "\n".join(lines)
