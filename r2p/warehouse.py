"""The warehouse: ``<data-dir>/warehouse.duckdb``, loaded incrementally from the landing zone.

One gateway for the database, in the spirit of datasette's ``Database``: ``Warehouse`` owns the
single read-write connection of its process, serialises writes (``refresh``) behind a lock and
hands readers their own cursor (``reader()``), one per thread, as DuckDB requires.

DuckDB lets one process hold the file read-write and refuses every other process, readers too.
So collectors never open it (they only write landing batches); the dashboard holds it and loads
new batches every few seconds; ``r2p refresh`` loads them when no dashboard runs, and otherwise
reports who holds it (``WarehouseBusy``).

The marts are rebuilt whole, which takes seconds to minutes as the warehouse grows. A collector
that lands every few seconds (``r2p receive``) would keep the dashboard rebuilding all the time, so
its background loop defers them (``refresh(defer_marts=True)``): new batches load at once, and the
marts are rebuilt once the last build is far enough behind (``MART_BUILD_SHARE``).

A file whose canonical tables were made by another version of the contract is emptied on open and
loaded again from the landing zone.

Loading is idempotent: a batch is loaded once (``ingest_batches`` records it) and each table keeps
the first row of each key (``schema.Record.key``) in landing order, so duplicates delivered in two
files collapse and ``rebuild`` reproduces the same tables from the landing zone alone.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from r2p import schema
from r2p.landing import LandingZone

WAREHOUSE_FILE = "warehouse.duckdb"
MART_BUILD_SHARE = 0.2
"""At most this share of the time goes to deferred mart builds: after a build of s seconds, the next
deferred one waits until s * (1 / MART_BUILD_SHARE - 1) seconds have passed since it ended."""
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


class WarehouseBusy(Exception):
    """Another process holds the warehouse file (DuckDB's lock)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


@dataclass
class LoadSummary:
    """What one refresh loaded."""

    batches: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    marts_deferred: bool = False
    """The marts do not include every loaded batch yet (``refresh(defer_marts=True)``)."""

    def line(self) -> str:
        if not self.batches:
            return "warehouse up to date: no new batches"
        rows = ", ".join(f"{count:,} {table}" for table, count in sorted(self.rows.items()) if count) or "no new rows"
        deferred = "; marts not rebuilt yet" if self.marts_deferred else ""
        return f"loaded {self.batches} batch(es): {rows} in {self.seconds:.2f} s{deferred}"


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, turning DuckDB's lock conflict into ``WarehouseBusy``."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        match = _LOCK_HOLDER.search(str(error))
        raise WarehouseBusy(f"process {match.group(1)}" if match else "another process") from None
    con.execute("SET TimeZone = 'UTC'")
    return con


class Warehouse:
    """The gateway to one warehouse file; see the module docstring."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.monotonic):
        """``clock`` (seconds) times mart builds for ``refresh(defer_marts=True)``."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.landing = LandingZone(self.data_dir)
        self.path = self.data_dir / WAREHOUSE_FILE
        self.con = connect(self.path)
        self._write_lock = threading.Lock()
        self._clock = clock
        self._marts_built_at: float | None = None
        self._mart_build_seconds = 0.0
        self.marts_behind = False
        """Loaded batches wait for the next mart build (only after ``refresh(defer_marts=True)``)."""
        self._create()

    def _create(self) -> None:
        from metrics.build import build_views

        if self._made_by_another_contract():
            self._drop_everything()
        for model in schema.TABLES:
            self.con.execute(schema.ddl(model))
        build_views(self.con)
        self._loaded: set[str] = {row[0] for row in self.con.execute("SELECT batch_id FROM ingest_batches").fetchall()}

    def _made_by_another_contract(self) -> bool:
        """Whether a canonical table's stored columns differ from the contract (a file from another version)."""
        stored: dict[str, list[str]] = {}
        for table, column in self.con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' AND NOT internal "
            "ORDER BY table_name, column_index"
        ).fetchall():
            stored.setdefault(table, []).append(column)
        return any(model.table in stored and stored[model.table] != schema.column_names(model) for model in schema.TABLES)

    def _drop_everything(self) -> None:
        """Empty the file so that it is loaded again from the landing zone, its source of truth."""
        for (view,) in self.con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        ).fetchall():
            self.con.execute(f'DROP VIEW IF EXISTS "{view}" CASCADE')
        for (table,) in self.con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall():
            self.con.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reading on the calling thread (DuckDB wants one per thread)."""
        return self.con.cursor()

    def pending(self) -> list[str]:
        """Committed landing batches not yet loaded."""
        return [batch_id for batch_id in self.landing.committed_ids() if batch_id not in self._loaded]

    def refresh(self, defer_marts: bool = False) -> LoadSummary:
        """Load every committed landing batch not loaded yet, then rebuild the marts, in one transaction.

        With ``defer_marts`` the batches still load, but the marts are rebuilt only when due: the last
        build ended long enough ago (``MART_BUILD_SHARE``). A deferred build happens at a later call,
        with or without new batches. Pages keep reading the marts of the last build meanwhile.
        """
        started = time.perf_counter()
        with self._write_lock:
            pending = self.pending()
            summary = LoadSummary(batches=len(pending))
            build = bool(pending) or self.marts_behind
            if build and defer_marts and not self._marts_due():
                build = False
            if not pending and not build:
                summary.marts_deferred = self.marts_behind
                return summary
            cursor = self.con.cursor()
            cursor.execute("BEGIN")
            try:
                if pending:
                    summary.rows = self._load(cursor, pending)
                if build:
                    from metrics.build import build_marts

                    build_started = self._clock()
                    build_marts(cursor)
                    build_ended = self._clock()
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            finally:
                cursor.close()
            self._loaded.update(pending)
            if build:
                self._marts_built_at, self._mart_build_seconds = build_ended, build_ended - build_started
            self.marts_behind = summary.marts_deferred = not build
        summary.seconds = time.perf_counter() - started
        return summary

    def _marts_due(self) -> bool:
        if self._marts_built_at is None:
            return True
        waited = self._clock() - self._marts_built_at
        return waited >= self._mart_build_seconds * (1 / MART_BUILD_SHARE - 1)

    def _load(self, cursor: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> dict[str, int]:
        commits = [str(self.landing.commit_path(batch_id)) for batch_id in batch_ids]
        cursor.execute(
            f"CREATE TEMP TABLE new_batches AS {schema.select_canonical(schema.IngestBatch, 'read_parquet($files)')}",
            {"files": commits},
        )
        # Landing order decides which copy of a duplicated key wins, so a rebuild picks the same one.
        batches = cursor.execute("SELECT batch_id, files FROM new_batches ORDER BY landed_at, batch_id").fetchall()
        files_by_table: dict[str, list[tuple[int, str]]] = {}
        for order, (_, files) in enumerate(batches):
            for relative in json.loads(files):
                table = relative.split("/", 1)[0]
                files_by_table.setdefault(table, []).append((order, str(self.landing.root / relative)))
        rows: dict[str, int] = {}
        for model in schema.TABLES:
            if model is schema.IngestBatch or model.table not in files_by_table:
                continue
            rows[model.table] = self._insert_new_keys(cursor, model, files_by_table[model.table])
        if rows.get(schema.Span.table):
            self._inherit_business_keys(cursor)
        cursor.execute("INSERT INTO ingest_batches SELECT * FROM new_batches")
        cursor.execute("DROP TABLE new_batches")
        return rows

    @staticmethod
    def _inherit_business_keys(cursor: duckdb.DuckDBPyConnection) -> None:
        """Give each span of the traces the new batches touched the business keys it lacks from its
        parent, until nothing changes: it ends with its nearest ancestor's value of each.

        This is done here, over every span loaded, because a parent and its child often land in
        different batches: an SDK exports a child before its parent (the child ends first), often
        in an earlier request, and a file is read in chunks. Keys the span or its resource carry
        always win (the collector set them), so the result does not depend on landing order.
        """
        cursor.execute(
            "CREATE TEMP TABLE touched_traces AS SELECT DISTINCT trace_id FROM spans "
            "WHERE batch_id IN (SELECT batch_id FROM new_batches)"
        )
        # Only keys some span of those traces has: each updated column costs about 4 us a row once
        # the span is committed, and a deployment sets a few of the business keys.
        counts = cursor.execute(
            f"SELECT {', '.join(f'count({column})' for column in schema.BUSINESS_COLUMNS)} FROM spans "
            "WHERE trace_id IN (SELECT trace_id FROM touched_traces)"
        ).fetchone()
        business = [column for column, count in zip(schema.BUSINESS_COLUMNS, counts) if count]
        assignments = ", ".join(f"{column} = coalesce(c.{column}, p.{column})" for column in business)
        gains = " OR ".join(f"(c.{column} IS NULL AND p.{column} IS NOT NULL)" for column in business)
        if business:
            for _ in range(256):  # bounded by trace depth; the bound only guards against parent cycles
                (changed,) = cursor.execute(
                    f"UPDATE spans AS c SET {assignments} FROM spans AS p "
                    "WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id "
                    f"AND c.trace_id IN (SELECT trace_id FROM touched_traces) AND ({gains})"
                ).fetchone()
                if not changed:
                    break
        cursor.execute("DROP TABLE touched_traces")

    @staticmethod
    def _insert_new_keys(cursor: duckdb.DuckDBPyConnection, model: type[schema.Record], files: list[tuple[int, str]]) -> int:
        names = schema.column_names(model)
        key = ", ".join(model.key)
        source = schema.select_canonical(
            model,
            "read_parquet($files, filename = true, file_row_number = true, hive_partitioning = false)",
            passthrough=("filename", "file_row_number"),
        )
        join_on = " AND ".join(f"t.{column} IS NOT DISTINCT FROM n.{column}" for column in model.key)
        sql = f"""
            INSERT INTO {model.table}
            WITH incoming AS ({source}),
            ordered AS (
                SELECT incoming.* FROM incoming JOIN file_order USING (filename)
                QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY file_order.ord, file_row_number) = 1
            )
            SELECT {', '.join(names)} FROM ordered n
            WHERE NOT EXISTS (SELECT 1 FROM {model.table} t WHERE {join_on})
        """
        cursor.execute("CREATE OR REPLACE TEMP TABLE file_order (filename VARCHAR, ord BIGINT)")
        cursor.execute(
            "INSERT INTO file_order SELECT unnest($names), unnest($orders)",
            {"names": [path for _, path in files], "orders": [order for order, _ in files]},
        )
        inserted = cursor.execute(sql, {"files": [path for _, path in files]}).fetchone()[0]
        cursor.execute("DROP TABLE file_order")
        return int(inserted)

    def close(self) -> None:
        self.con.close()


def refresh_now(data_dir: Path) -> LoadSummary:
    """Open the warehouse, load new batches, close it. Raises WarehouseBusy when a dashboard holds it."""
    warehouse = Warehouse(data_dir)
    try:
        return warehouse.refresh()
    finally:
        warehouse.close()


def rebuild(data_dir: Path) -> LoadSummary:
    """Recreate the warehouse from the landing zone alone. Raises WarehouseBusy when it is held."""
    path = Path(data_dir) / WAREHOUSE_FILE
    connect(path).close()  # fails with WarehouseBusy before anything is deleted
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    return refresh_now(data_dir)
