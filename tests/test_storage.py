"""The schema, the landing zone and the warehouse: round trips, atomicity, idempotency, rebuild, locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from metrics.build import models
from r2p import landing, schema
from r2p.landing import LandingZone
from r2p.warehouse import Warehouse, WarehouseBusy, rebuild, refresh_now
from samples import land_records, sample_records, warehouse_rows

REPO = Path(__file__).resolve().parents[1]


def test_records_round_trip_through_landing_and_warehouse(landed_sample: Path) -> None:
    warehouse = Warehouse(landed_sample)
    warehouse.refresh()
    for table, records in sample_records().items():
        model = schema.BY_NAME[table]
        names = schema.column_names(model)
        rows = warehouse.reader().execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY {', '.join(model.key)}").fetchall()
        loaded = [model.model_validate(dict(zip(names, row))) for row in rows]
        expected = sorted(records, key=lambda r: tuple(getattr(r, k) for k in model.key))
        assert [r.model_copy(update={"batch_id": ""}) for r in loaded] == expected
        assert {r.batch_id for r in loaded} != {""}, "every row names its landing batch"
    warehouse.close()


def test_ddl_matches_the_documented_contract() -> None:
    from r2p.contract import markdown

    assert (REPO / "docs" / "schema.md").read_text() == markdown(), "regenerate with: python -m r2p.contract > docs/schema.md"
    con = duckdb.connect()
    for model in schema.TABLES:
        con.execute(schema.ddl(model))
        described = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {model.table}").fetchall()]
        expected = [(name, "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t) for name, t, *_ in schema.columns(model)]
        assert described == expected


def test_landing_the_same_input_twice_adds_nothing(data_dir: Path) -> None:
    first = land_records(data_dir, sample_records())
    files = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*.parquet"))
    assert land_records(data_dir, sample_records()) == first
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*.parquet")) == files
    assert LandingZone(data_dir).committed_ids() == [first]


def test_a_batch_that_fails_half_way_leaves_nothing_visible(data_dir: Path) -> None:
    zone = LandingZone(data_dir)
    with pytest.raises(RuntimeError):
        with zone.batch("tests", "broken", "deadbeef") as writer:
            writer.add("transaction_events", sample_records()["transaction_events"])
            raise RuntimeError("collector died")
    assert list(data_dir.rglob("*.parquet")) == []
    assert not zone.has("deadbeef")


def test_landing_rejects_columns_outside_the_contract(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="outside the schema"):
        with LandingZone(data_dir).batch("tests", "x", "cafe") as writer:
            writer.add("transaction_events", writer.con.sql("SELECT 'e' AS event_id, 1 AS surprise"))


def test_duplicate_keys_across_batches_keep_the_first_landed(data_dir: Path) -> None:
    records = sample_records()
    land_records(data_dir, records, name="first")
    again = {"transaction_events": [r.model_copy(update={"event_type": "redelivered"}) for r in records["transaction_events"]]}
    land_records(data_dir, again, name="second")
    summary = refresh_now(data_dir)
    assert summary.batches == 2
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT event_type) FROM transaction_events").fetchone() == (12, 4)


def _snapshot(data_dir: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    tables = [model.name for model in models() if model.materialised] + [m.table for m in schema.TABLES if m is not schema.IngestBatch]
    snapshot = {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}
    con.close()
    return snapshot


def test_rebuild_gives_identical_tables_and_marts(landed_sample: Path) -> None:
    refresh_now(landed_sample)
    before = _snapshot(landed_sample)
    assert before["fct_daily_activity"], "the sample must reach the marts"
    summary = rebuild(landed_sample)
    assert summary.batches == 1
    assert _snapshot(landed_sample) == before


def test_a_warehouse_made_by_an_older_contract_reloads_from_the_landing_zone(landed_sample: Path) -> None:
    refresh_now(landed_sample)
    before = _snapshot(landed_sample)
    con = duckdb.connect(str(landed_sample / "warehouse.duckdb"))
    con.execute("ALTER TABLE triage_events DROP COLUMN based_on_event_id")  # as a file from before that column
    con.close()
    warehouse = Warehouse(landed_sample)
    assert warehouse.pending(), "the old file's loads are forgotten"
    warehouse.refresh()
    warehouse.close()
    assert _snapshot(landed_sample) == before


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from r2p.warehouse import Warehouse
    warehouse = Warehouse(Path(sys.argv[1]))
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_collectors_land_while_another_process_holds_the_warehouse(data_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "holding"
        land_records(data_dir, sample_records())  # a collector only writes the landing zone
        with pytest.raises(WarehouseBusy) as busy:
            refresh_now(data_dir)
        assert busy.value.holder == f"process {holder.pid}"
    finally:
        holder.kill()
        holder.wait()
    assert refresh_now(data_dir).rows["transaction_events"] == 12


def test_the_dashboard_loop_loads_batches_at_once_and_defers_mart_builds(data_dir: Path, monkeypatch) -> None:
    """After a mart build of 10 s (on a test clock), a deferred build waits until it is due; an
    explicit refresh builds at once."""
    import metrics.build
    from r2p.warehouse import MART_BUILD_SHARE

    due_after = 10 * (1 / MART_BUILD_SHARE - 1)  # 40 s
    now = [1000.0]
    build_marts = metrics.build.build_marts

    def ten_second_build(cursor) -> None:
        build_marts(cursor)
        now[0] += 10

    monkeypatch.setattr(metrics.build, "build_marts", ten_second_build)
    events = sample_records()["transaction_events"]
    warehouse = Warehouse(data_dir, clock=lambda: now[0])

    def counts() -> tuple[int, int]:
        """(events loaded, events the marts count)."""
        return warehouse.reader().execute(
            "SELECT (SELECT count(*) FROM transaction_events), "
            "(SELECT coalesce(sum(records), 0) FROM fct_daily_activity WHERE input = 'transactions')"
        ).fetchone()

    land_records(data_dir, {"transaction_events": events[:4]}, name="first")
    assert not warehouse.refresh(defer_marts=True).marts_deferred, "the first build is always due"
    assert counts() == (4, 4)

    now[0] += due_after - 1
    land_records(data_dir, {"transaction_events": events[4:8]}, name="second")
    summary = warehouse.refresh(defer_marts=True)
    assert (summary.rows["transaction_events"], summary.marts_deferred, warehouse.marts_behind) == (4, True, True)
    assert summary.line().endswith("; marts not rebuilt yet")
    assert counts() == (8, 4), "the batch is loaded, the marts are the last build's"

    now[0] += 1  # due now, with no new batch to load
    summary = warehouse.refresh(defer_marts=True)
    assert (summary.batches, summary.marts_deferred, warehouse.marts_behind) == (0, False, False)
    assert counts() == (8, 8)

    land_records(data_dir, {"transaction_events": events[8:]}, name="third")
    assert warehouse.refresh(defer_marts=True).marts_deferred
    assert counts() == (12, 8)
    assert not warehouse.refresh().marts_deferred, "an explicit refresh builds at once"
    assert counts() == (12, 12)
    warehouse.close()


def test_columns_a_collector_leaves_out_land_null_with_the_same_file_schema(data_dir: Path) -> None:
    """Absent nullable columns are added by the landing writer (not computed by DuckDB row by row):
    a file that lacks them has the same Parquet schema as one whose rows fill every column."""
    import pyarrow.parquet as pq

    full = sample_records()["transaction_events"][0].model_copy(update={"quantity": 2.5, "po_line": 3, "department": "ICU"})
    land_records(data_dir, {"transaction_events": [full]}, name="full")
    with LandingZone(data_dir).batch("tests", "sparse", "sparse-batch") as writer:
        writer.add("transaction_events", writer.con.sql(
            "SELECT 'erp:1' AS event_id, 'erp' AS system, TIMESTAMPTZ '2026-03-02 09:00:00+00' AS occurred_at, "
            "'po' AS object_type, 'PO-1' AS object_id, 'created' AS event_type, 'succeeded' AS outcome, '{}' AS attributes"
        ))
    files = {path.name.split("-")[0]: path for path in (data_dir / "landing" / "transaction_events").rglob("*.parquet")}
    sparse = pq.read_table(files["sparse"])
    assert sparse.schema == pq.read_table(next(p for name, p in files.items() if name != "sparse")).schema
    assert sparse.column_names == schema.column_names(schema.TransactionEvent)
    nullable = [name for name, _, is_nullable, _ in schema.columns(schema.TransactionEvent) if is_nullable]
    assert {name: sparse.column(name).null_count for name in nullable} == {name: 1 for name in nullable}
    assert sparse.column("batch_id").to_pylist() == ["sparse-batch"]
    assert warehouse_rows(data_dir, "SELECT quantity, po_line, department FROM transaction_events ORDER BY event_id") == [
        (None, None, None), (2.5, 3, "ICU"),
    ]


def test_landed_files_store_required_columns_and_delta_encode_integers_and_refuse_a_null_in_a_required_one(
    data_dir: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    land_records(data_dir, {"transaction_events": sample_records()["transaction_events"][:1]}, name="one")
    (path,) = (data_dir / "landing" / "transaction_events").rglob("*.parquet")
    file_schema = pq.ParquetFile(path).schema_arrow
    assert {field.name: field.nullable for field in file_schema} == {
        name: nullable for name, _, nullable, _ in schema.columns(schema.TransactionEvent)
    }
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {chunks.column(i).path_in_schema: chunks.column(i).encodings for i in range(chunks.num_columns)}
    assert {name for name, used in encodings.items() if "DELTA_BINARY_PACKED" in used} == {
        "occurred_at", "recorded_at", "amount", "unit_price", "po_line",
    }
    assert "RLE_DICTIONARY" in encodings["supplier_id"]
    with pytest.raises(pa.ArrowInvalid, match="object_id.*non-nullable but contains nulls"):
        with LandingZone(data_dir).batch("tests", "null-id", "null-id-batch") as writer:
            writer.add("transaction_events", writer.con.sql(
                "SELECT 'erp:1' AS event_id, 'erp' AS system, TIMESTAMPTZ '2026-03-02 09:00:00+00' AS occurred_at, "
                "'po' AS object_type, NULL AS object_id, 'created' AS event_type, 'succeeded' AS outcome, '{}' AS attributes"
            ))
    assert not LandingZone(data_dir).has("null-id-batch")


@pytest.mark.parametrize("non_ascii_at", [None, 0, 5, 11])
def test_a_file_digest_says_whether_every_block_is_ascii(tmp_path: Path, monkeypatch, non_ascii_at: int | None) -> None:
    monkeypatch.setattr(landing, "HASH_BLOCK", 4)  # three blocks: the flag must cover each of them
    text = bytearray(b"PO-1;ok;yes\n")
    if non_ascii_at is not None:
        text[non_ascii_at] = 0xA0
    path = tmp_path / "export.csv"
    path.write_bytes(bytes(text))
    digest = landing.file_digest("transactions", path)
    assert digest.ascii is (non_ascii_at is None)
    assert digest.batch_id == landing.file_digest("transactions", path).batch_id != landing.file_digest("traces", path).batch_id


def test_rows_land_in_the_folder_of_their_utc_day_in_arrival_order(data_dir: Path) -> None:
    """Day folders from the UTC day of the partition time, any year, rows out of order regrouped stably."""
    times = ["2024-02-29 23:59:59.999999+00", "1969-12-31 23:59:59+00", "2024-02-29 00:00:00+00",
             "2024-03-01 00:00:00+00", "1969-12-31 00:00:00+00", "2024-02-29 20:00:00-05"]  # the last is March 1 UTC
    rows = ", ".join(f"('erp:{n}', TIMESTAMPTZ '{time}')" for n, time in enumerate(times))
    with LandingZone(data_dir).batch("tests", "days", "days-batch") as writer:
        writer.add("transaction_events", writer.con.sql(
            "SELECT event_id, 'erp' AS system, occurred_at, 'po' AS object_type, 'PO-1' AS object_id, 'x' AS event_type, "
            f"'succeeded' AS outcome, '{{}}' AS attributes FROM (VALUES {rows}) AS t(event_id, occurred_at)"
        ))
    con = duckdb.connect()
    landed = con.execute(
        f"SELECT regexp_extract(filename, 'day=([^/]+)', 1), list(event_id ORDER BY file_row_number) FROM read_parquet("
        f"'{data_dir}/landing/transaction_events/*/*.parquet', filename = true, file_row_number = true) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert landed == [
        ("1969-12-31", ["erp:1", "erp:4"]),
        ("2024-02-29", ["erp:0", "erp:2"]),
        ("2024-03-01", ["erp:3", "erp:5"]),
    ]
