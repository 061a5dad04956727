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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from r2p import schema

COMMIT_TABLE = schema.IngestBatch.table
RAW_TEXT_LIMIT = 64 * 1024


def content_hash(source: str, chunks: Iterable[bytes]) -> str:
    """The batch id of an input: SHA-256 of the collector kind and the input's bytes."""
    digest = hashlib.sha256(source.encode() + b"\0")
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


HASH_BLOCK = 16 << 20


@dataclass(frozen=True)
class FileDigest:
    """What one read of a file's bytes tells before it is parsed."""

    batch_id: str
    ascii: bool
    """Every byte is below 128, so the file read as text has no non-ASCII character. (A compressed
    file never is: the magic numbers of gzip and zstd have a byte above 127.)"""


def file_digest(source: str, path: Path, salt: bytes = b"") -> FileDigest:
    """The batch id of a whole file, ``content_hash`` of ``salt`` and of the SHA-256 of each 16 MiB
    block of the file, in order, and whether the file is ASCII. ``salt`` (e.g. a mapping's canonical
    bytes) makes the same file read another way a different batch.

    The blocks are hashed on every core at once (hashlib lets go of the GIL): a large file waits
    for its id, before anything else can start, half as long on two cores as a hash of one stream.
    Testing a block for ASCII while it is in memory costs a fifth of its hash.
    """
    size = path.stat().st_size
    with path.open("rb") as handle, ThreadPoolExecutor(os.cpu_count()) as pool:

        def block_digest(offset: int) -> tuple[bytes, bool]:
            block = os.pread(handle.fileno(), HASH_BLOCK, offset)
            return hashlib.sha256(block).digest(), block.isascii()

        blocks = list(pool.map(block_digest, range(0, size, HASH_BLOCK)))
    digests = (digest for digest, _ in blocks)
    batch_id = content_hash(source, itertools.chain([salt, b"\0"] if salt else [], digests))
    return FileDigest(batch_id, all(ascii for _, ascii in blocks))


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
        self.con.execute(f"SET streaming_buffer_size = '{STREAM_BUFFER}'")
        self.con.execute("SET arrow_large_buffer_size = true")  # a batch may hold more than 2 GB of text
        self.tmp = zone.root / ".tmp" / f"{batch_id}-{uuid.uuid4().hex}"
        self.tmp.mkdir(parents=True)
        self.counts: dict[str, int] = {}
        self.rejected = 0
        self.input_offset: int | None = None
        self.input_ascii = False
        """The input is a file known to be all ASCII (``FileDigest.ascii``)."""
        self.notes: dict[str, Any] = {}
        self.record: schema.IngestBatch | None = None
        self._parts = 0
        self._pending_rejects: list[dict[str, Any]] = []
        self._arrow_schemas: dict[type[schema.Record], pa.Schema] = {}
        self._started = time.perf_counter()

    def add(self, table: str, data: Any) -> int:
        """Land rows for ``table``: a DuckDB relation on ``self.con``, an Arrow table, a pandas
        DataFrame or a list of records of the table's model. Returns the number of rows written.

        Columns are cast to the canonical types; nullable columns the data lacks are NULL; a
        column the contract does not have is a programming error and raises ValueError.
        """
        return self._add(table, data, None)[0]

    def add_holding_back(self, table: str, data: duckdb.DuckDBPyRelation, problem: str) -> pa.Table:
        """Like ``add``, in the same single pass over ``data``, but rows whose column ``problem``
        is not NULL do not land: they come back, in ``data``'s order, with all of ``data``'s
        columns (it may have others outside the schema for them) and ``__position``, the row's
        0-based position in ``data``, for the collector to turn into rejects.
        """
        return self._add(table, data, problem)[1]

    def _add(self, table: str, data: Any, problem: str | None) -> tuple[int, pa.Table | None]:
        model = schema.BY_NAME[table]
        if isinstance(data, list):
            if not data:
                return 0, None
            data = pa.Table.from_pylist([record.model_dump(exclude={"batch_id"}) for record in data])
        view = f"_src_{self._parts}"
        if isinstance(data, duckdb.DuckDBPyRelation):
            data.create_view(view)
        else:
            self.con.register(view, data)
        described = {row[0]: row[1] for row in self.con.execute(f"DESCRIBE {view}").fetchall()}
        present = list(described)
        wanted = schema.columns(model)
        wanted_names = {name for name, *_ in wanted}
        unknown = [name for name in present if name not in wanted_names]
        if unknown and problem is None:
            raise ValueError(f"{table}: columns outside the schema: {sorted(unknown)}")
        if "batch_id" in present:
            raise ValueError(f"{table}: batch_id is set by the landing writer")
        fills, absent = [], []
        for name, _, nullable, _ in wanted:
            if name == "batch_id":
                fills.append(f"'{self.batch_id}' AS batch_id")
            elif name in present:
                fills.append(name)
            elif nullable:
                fills.append(f"NULL AS {name}")
                absent.append(name)
            else:
                raise ValueError(f"{table}: required column {name} missing")
        extras = tuple('"' + name.replace('"', '""') + '"' for name in unknown)  # first, uncast
        # an ENUM lands as text (its Parquet dictionary is the ENUM's), without becoming strings first
        as_is = {name for name, sql_type, *_ in wanted if sql_type == "VARCHAR" and described.get(name, "").startswith("ENUM(")}
        canonical = schema.select_canonical(
            model, f"(SELECT {', '.join([*fills, *extras])} FROM {view})", extras, as_is
        )
        written, held = self._copy(table, canonical, model, problem, unknown, absent)
        self.con.execute(f"DROP VIEW IF EXISTS {view}")
        if not isinstance(data, duckdb.DuckDBPyRelation):
            self.con.unregister(view)
        if table != schema.Reject.table:  # rejects are counted in `rejected`, not as accepted records
            self.counts[table] = self.counts.get(table, 0) + written
        return written, held

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

    def _copy(
        self, table: str, select_sql: str, model: type[schema.Record], problem: str | None, extras: list[str],
        absent: list[str],
    ) -> tuple[int, pa.Table | None]:
        """Write the rows of ``select_sql`` (the model's columns after ``extras``; those in ``absent``
        are NULL in every row), holding back those with a ``problem``; returns the number written
        and the rows held back."""
        target = self.tmp / f"{table}-{self._parts}"
        self._parts += 1
        # Columns the same in every row (the batch id, the absent ones) are added to the Arrow
        # batches, not computed and converted row by row: DuckDB takes about 0.07 CPU-s to hand
        # over 10 M NULLs of one column.
        same = ["batch_id", *absent] if "batch_id" in schema.column_names(model) else absent
        types = self._arrow_types(model) if absent else None
        files = ParquetFiles(target, model, self.batch_id, {name: types.field(name).type for name in absent})
        if same:
            select_sql = f"SELECT * EXCLUDE ({', '.join(same)}) FROM ({select_sql})"
        held: list[pa.RecordBatch] = []
        position = 0  # of the next batch's first row; batches come in the relation's order

        def write(batch: pa.RecordBatch) -> None:
            nonlocal position
            if problem is not None:
                flagged = pc.is_valid(batch.column(problem))
                if pc.any(flagged).as_py():
                    positions = pc.add(pc.indices_nonzero(flagged).cast(pa.int64()), position)
                    held.append(batch.filter(flagged).append_column("__position", positions))
                    batch = batch.filter(pc.invert(flagged))
                position += len(flagged)
            files.write(batch.drop_columns(extras))

        try:
            # One thread writes a batch while DuckDB computes the next (both release the GIL).
            reader = self.con.sql(select_sql).to_arrow_reader(ARROW_BATCH_ROWS)
            with reader, ThreadPoolExecutor(1) as writing:  # leaving waits for the write under way
                written = None
                for batch in reader:
                    if written is not None:
                        written.result()
                    written = writing.submit(write, batch)
                if written is not None:
                    written.result()
        finally:
            files.close()
        if problem is None:
            return files.rows, None
        held_schema = held[0].schema if held else reader.schema.append(pa.field("__position", pa.int64()))
        return files.rows, pa.Table.from_batches(held, held_schema)

    def _arrow_types(self, model: type[schema.Record]) -> pa.Schema:
        """The Arrow types DuckDB gives the table's columns, as the landing query hands them over."""
        if model not in self._arrow_schemas:
            nulls = ", ".join(f"NULL AS {name}" for name in schema.column_names(model))
            query = schema.select_canonical(model, f"(SELECT {nulls})")
            self._arrow_schemas[model] = self.con.sql(query).limit(0).to_arrow_table().schema
        return self._arrow_schemas[model]

    def _flush_rejects(self) -> None:
        if self._pending_rejects:
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
        commit_tmp = self.tmp / "commit.parquet"
        self.con.register("_commit", pa.Table.from_pylist([record.model_dump()]))
        self.con.execute(
            f"COPY ({schema.select_canonical(schema.IngestBatch, '_commit')}) TO '{commit_tmp}' (FORMAT parquet)"
        )
        self.con.unregister("_commit")
        os.replace(commit_tmp, self.zone.commit_path(self.batch_id))
        return record


STREAM_BUFFER = "256MB"
"""What DuckDB may compute ahead of the Parquet writer (its default, 10 MB, keeps it to one thread)."""
ARROW_BATCH_ROWS = 1_000_000
"""Rows DuckDB hands over at a time; the Parquet files are written from these Arrow batches."""
ROW_GROUP_ROWS = 122_880
"""Rows of a Parquet row group (DuckDB's own default): compresses well, and readers split on it."""
MAX_HELD_ROWS = 1_000_000
"""Rows held back for the row groups of all days together; past that they are written, however short."""
MAX_OPEN_FILES = 100
"""Files open at once; past that the least recently written is closed and its day gets a new file."""


NO_DAY = -(2**31)
"""Stands for a NULL partition time, which lands in folder ``day=NULL`` (as DuckDB's own COPY names it)."""


def _utc_days(times: pa.Array) -> np.ndarray:
    """UTC days since 1970 of each of ``times`` (a timestamp column), ``NO_DAY`` where NULL.

    Computed from the timestamps' integers: pyarrow's cast of a zoned timestamp to a date looks the
    zone up value by value (about 0.2 CPU-s per 10 M rows, even for UTC).
    """
    per_day = 86_400 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[times.type.unit]
    days = np.floor_divide(pc.fill_null(times.cast(pa.int64()), 0).to_numpy(), per_day).astype(np.int32)
    if times.null_count:
        days[times.is_null().to_numpy(zero_copy_only=False)] = NO_DAY
    return days


def _day_folder(days_since_1970: int) -> str:
    if days_since_1970 == NO_DAY:
        return "day=NULL"
    return f"day={pa.scalar(days_since_1970, pa.int32()).cast(pa.date32()).cast(pa.string())}"  # any year


def _parquet_writer(path: Path, arrow_schema: pa.Schema) -> pq.ParquetWriter:
    """zstd; columns stored as integers (times, integers, decimals of up to 18 digits) delta-encoded,
    other columns dictionary-encoded with dictionaries kept small (32 KB); min/max statistics only
    where cheap and useful: not on text.

    Delta encoding stores the differences of consecutive values in as few bits as they need: times
    in arrival order take a few bits each, and encoding them so costs a third to a half of a
    dictionary and zstd over 8 bytes a value (bench ingest_transactions: the whole writer 30 %
    cheaper, files a quarter of the size). A small dictionary gives a column of few values (stage,
    supplier) one, which makes it cheap to read, and a column of ids gives up at once instead of
    building a dictionary of everything.
    """
    delta = [
        field.name for field in arrow_schema
        if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type) or pa.types.is_integer(field.type)
        or (pa.types.is_decimal(field.type) and field.type.precision <= 18)  # stored as INT32 / INT64
    ]
    measured = [
        field.name for field in arrow_schema
        if pa.types.is_temporal(field.type) or pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        or pa.types.is_decimal(field.type) or pa.types.is_boolean(field.type)
    ]
    return pq.ParquetWriter(
        path, arrow_schema, compression="zstd", store_decimal_as_integer=True,
        column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
        use_dictionary=[field.name for field in arrow_schema if field.name not in delta],
        dictionary_pagesize_limit=32 << 10, write_statistics=measured,
    )


class _Folder:
    """One folder's open Parquet file, and the rows held back for its next row group."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.writer: pq.ParquetWriter | None = None
        self.files = 0
        self.held: list[pa.RecordBatch] = []
        self.held_rows = 0

    def flush(self) -> None:
        if self.writer is None:
            self.directory.mkdir(exist_ok=True)
            path = self.directory / f"data_{self.files}.parquet"
            self.writer = _parquet_writer(path, self.held[0].schema)
            self.files += 1
        self.writer.write_table(pa.Table.from_batches(self.held), row_group_size=ROW_GROUP_ROWS)
        self.held, self.held_rows = [], 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ParquetFiles:
    """The Parquet files of one table of a batch under ``target``: one file, or one folder per UTC
    day of column ``partition_by`` (``day=YYYY-MM-DD/data_<n>.parquet``), rows in arrival order.

    Written with pyarrow from Arrow batches rather than by DuckDB's partitioned ``COPY``, which
    copies every row into per-partition buffers first and spends more time faulting in fresh
    memory than encoding: this takes about half the CPU for the same rows (bench ingest_transactions).
    """

    def __init__(self, target: Path, model: type[schema.Record], batch_id: str, absent: dict[str, pa.DataType]):
        """Batches come with the columns of ``model`` but its ``batch_id`` and those ``absent`` (NULL in
        every row, of the given types), which are added here."""
        self.target = target
        self.partition_by = model.partition_by
        columns = schema.columns(model)
        self._names = [name for name, *_ in columns]
        # A column that cannot be NULL is REQUIRED in the file, which then stores no definition
        # level per value (a twentieth of the writer's work on bench ingest_transactions); a NULL
        # in one is refused by the Parquet writer.
        self._nullable = {name: nullable for name, _, nullable, _ in columns}
        self._absent = absent
        self._batch_id = pa.array([batch_id])
        self._json = {name for name, sql_type, *_ in columns if sql_type == "JSON"}
        self.rows = 0
        self._folders: dict[str, _Folder] = {}
        self._open: dict[_Folder, None] = {}  # folders with an open file, least recently written first
        self._held_rows = 0
        target.mkdir()

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        batch = self._complete(batch)
        if self.partition_by is None:
            self._hold("", batch)
            return
        days = _utc_days(batch.column(self.partition_by))
        if days.min() == days.max():
            self._hold(_day_folder(int(days[0])), batch)
            return
        if (days[1:] < days[:-1]).any():  # most exports come in time order, and need no reordering
            order = np.argsort(days, kind="stable")  # stable: each day keeps the rows' order
            batch, days = batch.take(order), days[order]
        starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist()]
        for start, end in zip(starts, [*starts[1:], len(days)]):
            self._hold(_day_folder(int(days[start])), batch.slice(start, end - start))

    def _complete(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with the batch id and the absent columns added, in the table's order, as the
        file stores it."""
        rows = batch.num_rows
        columns = [
            pa.DictionaryArray.from_arrays(np.zeros(rows, np.int32), self._batch_id) if name == "batch_id"
            else pa.nulls(rows, self._absent[name]) if name in self._absent
            else batch.column(name)
            for name in self._names
        ]
        # DuckDB hands JSON over as plain text; the files keep it JSON
        columns = [
            pa.ExtensionArray.from_storage(pa.json_(column.type), column) if name in self._json else column
            for name, column in zip(self._names, columns)
        ]
        fields = [pa.field(name, column.type, self._nullable[name]) for name, column in zip(self._names, columns)]
        return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))

    def _hold(self, name: str, batch: pa.RecordBatch) -> None:
        folder = self._folders.get(name) or self._folders.setdefault(name, _Folder(self.target / name))
        folder.held.append(batch)
        folder.held_rows += batch.num_rows
        self._held_rows += batch.num_rows
        if folder.held_rows >= ROW_GROUP_ROWS:
            self._flush([folder])
        elif self._held_rows > MAX_HELD_ROWS:
            self._flush([held for held in self._folders.values() if held.held])

    def _flush(self, folders: list[_Folder]) -> None:
        """Write the rows held for ``folders``, in parallel (pyarrow releases the GIL)."""
        for start in range(0, len(folders), MAX_OPEN_FILES):
            chunk = folders[start : start + MAX_OPEN_FILES]
            for folder in chunk:
                self._open.pop(folder, None)
            while len(self._open) + len(chunk) > MAX_OPEN_FILES:
                oldest = next(iter(self._open))
                del self._open[oldest]
                oldest.close()
            self._held_rows -= sum(folder.held_rows for folder in chunk)
            self._open.update(dict.fromkeys(chunk))
            if len(chunk) == 1:
                chunk[0].flush()
            else:
                with ThreadPoolExecutor(os.cpu_count()) as pool:
                    list(pool.map(_Folder.flush, chunk))

    def close(self) -> None:
        """Write what is held back and close every file (also after an error: the files are discarded)."""
        try:
            self._flush([folder for folder in self._folders.values() if folder.held])
        finally:
            for folder in self._folders.values():
                folder.close()


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
