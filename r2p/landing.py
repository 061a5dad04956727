"""The landing zone: immutable Parquet batches, written atomically, named by the hash of their input.

Layout under ``<data-dir>/landing``::

    <table>/day=YYYY-MM-DD/<batch_id>-<part>-<n>.parquet   data, partitioned by UTC day
    <table>/<batch_id>-<part>-<n>.parquet                  tables without a time column
    ingest_batches/<batch_id>.parquet                      the commit record, written last

A batch's data files are written under ``.tmp/`` and renamed into place; its commit record is
renamed into place after them. The warehouse loads only committed batches, so a collector that
dies half way leaves nothing a reader can see, and re-running it rewrites the same names.

Collectors never open the warehouse: landing is the only thing they write, which is what lets a
collector run while the dashboard holds ``warehouse.duckdb``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from r2p import schema

COMMIT_TABLE = schema.IngestBatch.table
RAW_TEXT_LIMIT = 64 * 1024


def content_hash(source: str, chunks: Iterable[bytes]) -> str:
    """The batch id of an input: SHA-256 of the collector kind and the input's bytes."""
    digest = hashlib.sha256(source.encode() + b"\0")
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def file_hash(source: str, path: Path, salt: bytes = b"") -> str:
    """The batch id of a whole file, read in 1 MiB chunks; ``salt`` (e.g. a mapping's canonical bytes)
    makes the same file read another way a different batch."""
    with path.open("rb") as handle:
        chunks = iter(lambda: handle.read(1 << 20), b"")
        return content_hash(source, itertools.chain([salt, b"\0"], chunks) if salt else chunks)


class BatchWriter:
    """Collects one batch's tables and rejects; committed by ``LandingZone.batch`` on success.

    ``con`` is the writer's own in-memory DuckDB connection: a collector may build its rows as
    relations on it (the fast path) and hand them to ``add`` without leaving DuckDB.
    """

    def __init__(self, zone: LandingZone, source: str, input_name: str, batch_id: str):
        self.zone = zone
        self.source = source
        self.input_name = input_name
        self.batch_id = batch_id
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.tmp = zone.root / ".tmp" / f"{batch_id}-{uuid.uuid4().hex}"
        self.tmp.mkdir(parents=True)
        self.counts: dict[str, int] = {}
        self.rejected = 0
        self.input_offset: int | None = None
        self.notes: dict[str, Any] = {}
        self.record: schema.IngestBatch | None = None
        self._parts = 0
        self._pending_rejects: list[dict[str, Any]] = []
        self._started = time.perf_counter()

    def add(self, table: str, data: Any) -> int:
        """Land rows for ``table``: a DuckDB relation on ``self.con``, an Arrow table, a pandas
        DataFrame or a list of records of the table's model. Returns the number of rows written.

        Columns are cast to the canonical types; nullable columns the data lacks are NULL; a
        column the contract does not have is a programming error and raises ValueError.
        """
        model = schema.BY_NAME[table]
        if isinstance(data, list):
            if not data:
                return 0
            import pyarrow as pa

            data = pa.Table.from_pylist([record.model_dump(exclude={"batch_id"}) for record in data])
        view = f"_src_{self._parts}"
        if isinstance(data, duckdb.DuckDBPyRelation):
            data.create_view(view)
        else:
            self.con.register(view, data)
        present = [row[0] for row in self.con.execute(f"DESCRIBE {view}").fetchall()]
        wanted = schema.columns(model)
        unknown = set(present) - {name for name, *_ in wanted}
        if unknown:
            raise ValueError(f"{table}: columns outside the schema: {sorted(unknown)}")
        if "batch_id" in present:
            raise ValueError(f"{table}: batch_id is set by the landing writer")
        fills = []
        for name, _, nullable, _ in wanted:
            if name == "batch_id":
                fills.append(f"'{self.batch_id}' AS batch_id")
            elif name in present:
                fills.append(name)
            elif nullable:
                fills.append(f"NULL AS {name}")
            else:
                raise ValueError(f"{table}: required column {name} missing")
        canonical = schema.select_canonical(model, f"(SELECT {', '.join(fills)} FROM {view})")
        written = self._copy(table, canonical, model.partition_by)
        self.con.execute(f"DROP VIEW IF EXISTS {view}")
        if not isinstance(data, duckdb.DuckDBPyRelation):
            self.con.unregister(view)
        if table != schema.Reject.table:  # rejects are counted in `rejected`, not as accepted records
            self.counts[table] = self.counts.get(table, 0) + written
        return written

    def reject(
        self,
        reason: str,
        raw: str,
        *,
        line: int | None = None,
        byte_offset: int | None = None,
        field: str | None = None,
        input_name: str | None = None,
    ) -> None:
        """Record one rejected input record with its reason and raw text (already redacted)."""
        self._pending_rejects.append(
            {
                "reject_index": self.rejected,
                "source": self.source,
                "input": input_name or self.input_name,
                "line": line,
                "byte_offset": byte_offset,
                "field": field,
                "reason": reason,
                "raw": raw[:RAW_TEXT_LIMIT],
            }
        )
        self.rejected += 1

    def add_rejects(self, relation: duckdb.DuckDBPyRelation) -> int:
        """Record many rejects at once from a relation with the columns of ``reject`` (no index)."""
        relation.create_view("_rejects_in")
        numbered = self.con.sql(
            f"SELECT *, {self.rejected} + row_number() OVER (ORDER BY line, byte_offset) - 1 AS reject_index, "
            f"'{self.source}' AS source FROM _rejects_in"
        )
        written = self.add(schema.Reject.table, numbered)
        self.con.execute("DROP VIEW _rejects_in")
        self.rejected += written
        return written

    def _copy(self, table: str, select_sql: str, partition_by: str | None) -> int:
        target = self.tmp / f"{table}-{self._parts}"
        self._parts += 1
        if partition_by:
            sql = (
                f"COPY (SELECT *, CAST({partition_by} AS DATE) AS day FROM ({select_sql})) TO '{target}' "
                "(FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)"
            )
        else:
            target.mkdir()
            sql = f"COPY ({select_sql}) TO '{target / 'data_0.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
        return int(self.con.execute(sql).fetchone()[0])

    def _flush_rejects(self) -> None:
        if self._pending_rejects:
            import pyarrow as pa

            pending, self._pending_rejects = self._pending_rejects, []
            self.add(schema.Reject.table, pa.Table.from_pylist(pending))

    def _commit(self) -> schema.IngestBatch:
        self._flush_rejects()
        files: list[str] = []
        for part_dir in sorted(self.tmp.iterdir(), key=lambda p: int(p.name.rsplit("-", 1)[1])):
            table, part = part_dir.name.rsplit("-", 1)
            for parquet in sorted(part_dir.rglob("*.parquet")):
                relative_dir = parquet.parent.relative_to(part_dir)
                name = f"{self.batch_id}-{part}-{parquet.stem.rsplit('_', 1)[-1]}.parquet"
                destination = self.zone.root / table / relative_dir / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(parquet, destination)
                files.append(str(destination.relative_to(self.zone.root)))
        record = schema.IngestBatch(
            batch_id=self.batch_id,
            source=self.source,
            input=self.input_name,
            landed_at=dt.datetime.now(dt.timezone.utc),
            seconds=round(time.perf_counter() - self._started, 6),
            record_counts=json.dumps(self.counts, sort_keys=True),
            rejected=self.rejected,
            files=json.dumps(files),
            input_offset=self.input_offset,
            notes=json.dumps(self.notes, sort_keys=True) if self.notes else None,
        )
        import pyarrow as pa

        commit_tmp = self.tmp / "commit.parquet"
        self.con.register("_commit", pa.Table.from_pylist([record.model_dump()]))
        self.con.execute(
            f"COPY ({schema.select_canonical(schema.IngestBatch, '_commit')}) TO '{commit_tmp}' (FORMAT parquet)"
        )
        self.con.unregister("_commit")
        os.replace(commit_tmp, self.zone.commit_path(self.batch_id))
        return record


class LandingZone:
    """The landing zone under a data directory; see the module docstring for its layout."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "landing"
        (self.root / COMMIT_TABLE).mkdir(parents=True, exist_ok=True)

    def commit_path(self, batch_id: str) -> Path:
        return self.root / COMMIT_TABLE / f"{batch_id}.parquet"

    def has(self, batch_id: str) -> bool:
        return self.commit_path(batch_id).exists()

    def committed_ids(self) -> list[str]:
        """Ids of every committed batch (cheap: a directory listing)."""
        return [entry.name[: -len(".parquet")] for entry in os.scandir(self.root / COMMIT_TABLE) if entry.name.endswith(".parquet")]

    @contextmanager
    def batch(self, source: str, input_name: str, batch_id: str) -> Iterator[BatchWriter | None]:
        """Write one batch atomically. Yields None when the batch is already landed (nothing to do).

        On normal exit the batch is committed; on an exception its temporary files are removed
        and nothing becomes visible.
        """
        if self.has(batch_id):
            yield None
            return
        writer = BatchWriter(self, source, input_name, batch_id)
        try:
            yield writer
            writer.record = writer._commit()
        finally:
            writer.con.close()
            shutil.rmtree(writer.tmp, ignore_errors=True)
