"""Tabular transaction exports: the mapping engine on BPI Challenge 2019 and on small exact files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from collectors import transactions
from collectors.mapping import load
from r2p.cli import main
from r2p.errors import UserError
from r2p.landing import LandingZone

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "transactions"
MAPPINGS = ROOT / "examples" / "mappings"
UTC = dt.timezone.utc


def landed(data_dir: Path, table: str = "transaction_events", order: str = "occurred_at, event_id") -> list[dict]:
    """Rows of one landing table, as dicts."""
    files = list((data_dir / "landing" / table).rglob("*.parquet"))
    if not files:
        return []
    relation = duckdb.sql(f"SELECT * EXCLUDE (batch_id) FROM read_parquet({[str(f) for f in files]}) ORDER BY {order}")
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def ingest(data_dir: Path, mapping: str | Path, *paths: Path):
    """Ingest files with a mapping given as a path or as TOML text."""
    if isinstance(mapping, str):
        mapping_path = data_dir.parent / "mapping.toml"
        mapping_path.write_text(mapping)
        mapping = mapping_path
    return transactions.ingest(list(paths), LandingZone(data_dir), load(mapping))


ERP = """
[source]
system = "erp"
format = "csv"
timezone = "America/Chicago"
decimal = ","
delimiter = ";"

[columns]
object_id = "DocNo"
event_type = "Status"
occurred_at = { column = "EventTime", format = "%d.%m.%Y %H:%M" }
recorded_at = { column = "Exported", format = "epoch_ms" }
amount = "Amount"
facility_id = "Plant"
po_number = "DocNo"

[constants]
object_type = "purchase_order"
currency = "USD"

[event_types."PO Created"]
stage = "po_creation"
[event_types."PO Rejected"]
stage = "approval"
outcome = "rejected"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bpic2019_sample_lands_every_event_with_its_stage(data_dir: Path) -> None:
    summary = ingest(data_dir, MAPPINGS / "bpic2019.toml", DATA / "bpic2019_sample_WISE.csv.gz")
    assert (summary.accepted["transaction_events"], summary.rejected) == (6567, 0)
    events = landed(data_dir)
    assert len({e["event_id"] for e in events}) == 6567
    assert len({e["object_id"] for e in events}) == 1000
    assert len({e["po_number"] for e in events}) == 999
    assert len({e["supplier_id"] for e in events}) == 305
    assert len({e["event_type"] for e in events}) == 32
    first = events[0]
    assert first["event_id"] == "sap-bpic2019:536870912000"
    assert first["occurred_at"] == dt.datetime(2017, 1, 31, 23, 59, tzinfo=UTC)
    assert (first["object_type"], first["object_id"], first["po_number"], first["po_line"]) == (
        "purchase_order_item",
        "2000000100_00001",
        "2000000100",
        1,
    )
    assert (first["event_type"], first["stage"], first["outcome"]) == ("Vendor creates invoice", "invoice", "succeeded")
    assert (first["amount"], first["currency"], first["supplier_id"], first["facility_id"]) == (
        Decimal("7815013.0000"),
        "EUR",
        "vendorID_0053",
        "companyID_0000",
    )
    assert first["actor"] is None  # NONE is mapped away
    attributes = json.loads(first["attributes"])
    assert attributes["case_Item_Category"] == "3-way match, invoice after GR"
    assert "@@index" not in attributes and "concept:name" not in attributes
    by_stage: dict[tuple, int] = {}
    for event in events:
        by_stage[(event["stage"], event["outcome"])] = by_stage.get((event["stage"], event["outcome"]), 0) + 1
    assert by_stage[("receipt", "succeeded")] == 1911
    assert by_stage[("payment", "succeeded")] == 799
    assert by_stage[("po_creation", "failed")] == 1  # SRM: Transfer Failed (E.Sys.)
    assert by_stage[("match", "exception")] == 1  # Set Payment Block
    failed = next(e for e in events if e["outcome"] == "failed")
    assert failed["event_type"] == "SRM: Transfer Failed (E.Sys.)"


def test_original_bpic_column_names_map_too(tmp_path: Path, data_dir: Path) -> None:
    renamed = tmp_path / "bpic_spaces.csv"
    with gzip.open(DATA / "bpic2019_sample_WISE.csv.gz", "rt", encoding="utf-8") as source:
        header, *rows = source.read().splitlines()[:4]
    header = (
        header.replace("eventID", "eventID ")
        .replace("case_concept_name", "case concept:name")
        .replace("event_concept_name", "event concept:name")
        .replace("event_time_timestamp", "event time:timestamp")
        .replace("case_Purchasing_Document", "case Purchasing Document")
    )
    write(renamed, "\n".join([header, *rows]) + "\n")
    summary = ingest(data_dir, MAPPINGS / "bpic2019.toml", renamed)
    assert summary.accepted["transaction_events"] == 3
    assert [e["po_number"] for e in landed(data_dir)] == ["2000000100"] * 3


def test_local_times_epoch_ms_and_decimal_comma(tmp_path: Path, data_dir: Path) -> None:
    export = write(
        tmp_path / "erp.csv",
        "DocNo;Status;EventTime;Exported;Amount;Plant\n"
        "PO-1;PO Created;10.03.2024 01:30;1710052200123;1.234,50;NORTH\n"  # before the DST change
        "PO-1;PO Rejected;10.03.2024 03:30;1710059400000;-7,25;NORTH\n",  # after it (CDT)
    )
    source = ERP.replace('decimal = ","', 'decimal = ","\nthousands = "."')
    summary = ingest(data_dir, source, export)
    assert (summary.accepted["transaction_events"], summary.rejected) == (2, 0)
    created, rejected = landed(data_dir)
    assert created["occurred_at"] == dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC)  # CST = UTC-6
    assert rejected["occurred_at"] == dt.datetime(2024, 3, 10, 8, 30, tzinfo=UTC)  # CDT = UTC-5
    assert created["recorded_at"] == dt.datetime(2024, 3, 10, 6, 30, 0, 123000, tzinfo=UTC)
    assert (created["amount"], rejected["amount"]) == (Decimal("1234.5000"), Decimal("-7.2500"))
    assert (rejected["stage"], rejected["outcome"]) == ("approval", "rejected")
    assert created["event_id"].startswith("erp:") and created["event_id"] != rejected["event_id"]


def test_bad_rows_are_rejected_with_line_column_and_reason_and_the_rest_lands(tmp_path: Path, data_dir: Path) -> None:
    export = write(
        tmp_path / "erp.csv",
        "DocNo;Status;EventTime;Exported;Amount;Plant\n"
        "PO-1;PO Created;10.03.2024 01:30;1710052200123;5,00;NORTH\n"
        "PO-2;PO Created;31.02.2024 01:30;1710052200123;5,00;NORTH\n"  # line 3: no such date
        "PO-3;PO Created;10.03.2024 01:30;1710052200123;five;NORTH\n"  # line 4: amount
        "PO-4;PO Created;10.03.2024 01:30\n"  # line 5: too few fields (DuckDB's own reject)
        "PO-5;PO Teleported;10.03.2024 01:30;1710052200123;5,00;NORTH\n"  # line 6: unmapped type
        ";PO Created;10.03.2024 01:30;1710052200123;5,00;NORTH\n"  # line 7: no object id
        "PO-7;PO Created;10.03.2024 01:30;1710052200123;5,00;NORTH\n",
    )
    summary = ingest(data_dir, ERP, export)
    assert (summary.accepted["transaction_events"], summary.rejected) == (2, 5)
    assert [e["object_id"] for e in landed(data_dir, order="object_id")] == ["PO-1", "PO-7"]
    rejects = {r["line"]: r for r in landed(data_dir, "rejects", order="line")}
    assert sorted(rejects) == [3, 4, 5, 6, 7]
    assert rejects[3]["field"] == "EventTime"
    assert rejects[3]["reason"] == "occurred_at: cannot read '31.02.2024 01:30' as %d.%m.%Y %H:%M"
    assert rejects[3]["raw"] == "PO-2;PO Created;31.02.2024 01:30;1710052200123;5,00;NORTH"
    assert (rejects[4]["field"], rejects[4]["reason"]) == ("Amount", "amount: 'five' is not a number")
    assert rejects[5]["reason"].startswith("MISSING COLUMNS")
    assert rejects[5]["raw"] == "PO-4;PO Created;10.03.2024 01:30"
    assert (rejects[6]["field"], rejects[6]["reason"]) == (
        "Status",
        "event_type: 'PO Teleported' is not in the mapping's [event_types]",
    )
    assert (rejects[7]["field"], rejects[7]["reason"]) == ("DocNo", "object_id: object id is empty")
    assert {r["input"] for r in rejects.values()} == {str(export)}


def test_values_padded_with_spaces_land_trimmed_and_spaces_alone_are_empty(tmp_path: Path, data_dir: Path) -> None:
    nbsp, ideographic = "\u00a0", "\u3000"  # as fixed-width and CHAR exports pad, in ASCII or not
    export = write(
        tmp_path / "erp.csv",
        "DocNo;Status;EventTime;Exported;Amount;Plant\n"
        f" PO-1 ;PO Created{nbsp}; 10.03.2024 01:30{ideographic};1710052200123 ;{nbsp}1.234,50 ;  NORTH\n"
        f"PO-2;PO Created;10.03.2024 01:30;   ;{nbsp} ;{nbsp}\n"  # spaces alone: no time, no amount, no plant
        f"PO-3;PO Created;{nbsp} ;1710052200123;5,00;NORTH\n",  # line 4: an occurred time of spaces alone
    )
    source = ERP.replace('decimal = ","', 'decimal = ","\nthousands = "."')
    summary = ingest(data_dir, source, export)
    assert (summary.accepted["transaction_events"], summary.rejected) == (2, 1)
    padded, blank = landed(data_dir, order="object_id")
    assert (padded["object_id"], padded["po_number"], padded["event_type"], padded["facility_id"]) == (
        "PO-1", "PO-1", "PO Created", "NORTH",
    )
    assert (padded["occurred_at"], padded["amount"]) == (dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC), Decimal("1234.5"))
    assert padded["recorded_at"] == dt.datetime(2024, 3, 10, 6, 30, 0, 123000, tzinfo=UTC)
    assert (blank["object_id"], blank["recorded_at"], blank["amount"], blank["facility_id"]) == ("PO-2", None, None, None)
    (reject,) = landed(data_dir, "rejects", order="line")
    assert (reject["line"], reject["field"], reject["reason"]) == (4, "EventTime", "occurred_at: occurred time is empty")


def test_values_padded_with_spaces_land_trimmed_from_an_all_ascii_file(tmp_path: Path, data_dir: Path) -> None:
    """An ASCII file is read with the cheaper test of which values need trimming (FileDigest.ascii)."""
    export = write(
        tmp_path / "erp.csv",
        "DocNo;Status;EventTime;Exported;Amount;Plant\n"
        " PO-1 ;PO Created ; 10.03.2024 01:30;1710052200123 ;5,00; NORTH\n"
        "PO-2;  PO Created;10.03.2024 01:30;1710052200123;5,00;   \n",
    )
    assert export.read_bytes().isascii()
    summary = ingest(data_dir, ERP, export)
    assert (summary.accepted["transaction_events"], summary.rejected) == (2, 0)
    first, second = landed(data_dir, order="object_id")
    assert (first["object_id"], first["event_type"], first["stage"], first["facility_id"]) == (
        "PO-1", "PO Created", "po_creation", "NORTH",
    )
    assert (second["object_id"], second["event_type"], second["facility_id"]) == ("PO-2", "PO Created", None)


def test_an_event_type_mapped_to_nothing_is_rejected_as_unmapped(tmp_path: Path, data_dir: Path) -> None:
    """It once landed with no event type, and the warehouse load then failed on the NOT NULL column."""
    export = write(
        tmp_path / "erp.csv",
        "Doc,Status,At\nPO-1,Created,2024-01-01T00:00:00Z\nPO-2,DROP,2024-01-01T00:00:00Z\n",
    )
    mapping = """
[source]
system = "erp"
format = "csv"
[columns]
object_id = "Doc"
event_type = { column = "Status", map = { DROP = "" } }
occurred_at = { column = "At", format = "iso8601" }
[constants]
object_type = "purchase_order"
[event_types."Created"]
stage = "po_creation"
"""
    summary = ingest(data_dir, mapping, export)
    assert (summary.accepted["transaction_events"], summary.rejected) == (1, 1)
    (reject,) = landed(data_dir, "rejects", order="line")
    assert (reject["line"], reject["field"], reject["reason"]) == (
        3, "Status", "event_type: 'DROP' is not in the mapping's [event_types]",
    )


def test_a_mapping_that_rejects_everything_stops_with_one_message(tmp_path: Path, data_dir: Path) -> None:
    rows = "".join(f"PO-{i};PO Created;2024-03-10 01:30;1710052200123;5,00;NORTH\n" for i in range(500))
    export = write(tmp_path / "erp.csv", "DocNo;Status;EventTime;Exported;Amount;Plant\n" + rows)
    with pytest.raises(UserError) as stopped:
        ingest(data_dir, ERP, export)
    assert str(stopped.value) == (
        f"mapping does not fit {export}: all of its first 200 rows would be rejected, e.g. column 'EventTime': "
        "occurred_at: cannot read '2024-03-10 01:30' as %d.%m.%Y %H:%M"
    )
    assert landed(data_dir) == [] and not list((data_dir / "landing" / "ingest_batches").iterdir())


def test_a_mapped_column_missing_from_the_file_is_one_clear_error(tmp_path: Path, data_dir: Path) -> None:
    export = write(tmp_path / "erp.csv", "Doc;Status;EventTime;Exported;Amount;Plant\nPO-1;PO Created;x;1;2;N\n")
    with pytest.raises(UserError, match=r"mapping names column 'DocNo' for object_id, but .*erp.csv has no such column"):
        ingest(data_dir, ERP, export)


def test_an_empty_file_is_one_clear_error_and_a_header_alone_lands_nothing(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(UserError, match=r"mapping names column 'DocNo' for object_id, but .*empty.csv has no such column"):
        ingest(data_dir, ERP, write(tmp_path / "empty.csv", ""))
    summary = ingest(data_dir, ERP, write(tmp_path / "header.csv", "DocNo;Status;EventTime;Exported;Amount;Plant\n"))
    assert (summary.accepted.get("transaction_events", 0), summary.rejected) == (0, 0)


def test_same_event_twice_in_one_file_or_two_has_one_id_and_order_is_kept(tmp_path: Path, data_dir: Path) -> None:
    header = "DocNo;Status;EventTime;Exported;Amount;Plant\n"
    late = "PO-9;PO Created;10.03.2024 09:00;1710082800000;5,00;NORTH\n"
    early = "PO-8;PO Created;10.03.2024 08:00;1710079200000;5,00;NORTH\n"
    first = write(tmp_path / "a.csv", header + late + early + late)  # out of order, and a duplicate
    second = write(tmp_path / "b.csv", header + early)  # re-delivered in another file
    summary = ingest(data_dir, ERP, first, second)
    assert summary.accepted["transaction_events"] == 4
    events = landed(data_dir, order="event_id")
    assert len({e["event_id"] for e in events}) == 2  # the warehouse keeps one row per event_id
    assert {e["object_id"] for e in events} == {"PO-8", "PO-9"}
    nine = next(e for e in events if e["object_id"] == "PO-9")
    assert nine["occurred_at"] == dt.datetime(2024, 3, 10, 14, 0, tzinfo=UTC)  # CDT, as the ERP wrote it
    assert nine["recorded_at"] == dt.datetime(2024, 3, 10, 15, 0, tzinfo=UTC)  # the export's own clock


def test_source_event_ids_are_kept_and_namespaced_by_system(tmp_path: Path, data_dir: Path) -> None:
    mapping = ERP.replace('object_id = "DocNo"', 'object_id = "DocNo"\nevent_id = "Id"')
    export = write(
        tmp_path / "erp.csv",
        "Id;DocNo;Status;EventTime;Exported;Amount;Plant\n"
        "77;PO-1;PO Created;10.03.2024 01:30;1710052200123;5,00;NORTH\n"
        "77;PO-1;PO Created;10.03.2024 01:30;1710052200999;5,00;NORTH\n",
    )
    ingest(data_dir, mapping, export)
    assert [e["event_id"] for e in landed(data_dir)] == ["erp:77", "erp:77"]


JSONL = """
[source]
system = "procurement"
format = "jsonl"

[columns]
event_id = "id"
object_id = "requisition"
event_type = "type"
occurred_at = { column = "at", format = "iso8601" }
recorded_at = { column = "logged", format = "epoch_s" }
amount = "total"
priority = { column = "urgency", map = { "1" = "stat", "2" = "urgent", "3" = "routine" } }
outcome = { column = "status", map = { OK = "succeeded", DENIED = "rejected" } }
requisition_id = "requisition"

[constants]
object_type = "requisition"
stage = "approval"
"""


def test_json_lines_gzip_with_value_maps(tmp_path: Path, data_dir: Path) -> None:
    lines = [
        {"id": "a1", "requisition": "REQ-1", "type": "approve", "at": "2024-05-01T10:00:00+02:00", "logged": 1714550400.5,
         "total": 99.5, "urgency": 1, "status": "OK", "extra": {"level": 2}},
        "not json",
        {"id": "a2", "requisition": "REQ-2", "type": "approve", "at": "2024-05-01T09:00:00Z", "logged": 1714554000,
         "total": "12", "urgency": 3, "status": "DENIED"},
        {"id": "a3", "requisition": "REQ-3", "type": "approve", "at": "2024-05-01T09:00:00Z", "status": "LOST"},
    ]
    path = tmp_path / "procurement.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    summary = ingest(data_dir, JSONL, path)
    assert (summary.accepted["transaction_events"], summary.rejected) == (2, 2)
    first, second = landed(data_dir)
    assert first["event_id"] == "procurement:a1"
    assert first["occurred_at"] == dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert first["recorded_at"] == dt.datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert (first["priority"], first["outcome"], first["amount"]) == ("stat", "succeeded", Decimal("99.5000"))
    assert json.loads(first["attributes"]) == {"extra": '{"level":2}'}
    assert (second["priority"], second["outcome"]) == ("routine", "rejected")
    rejects = {r["line"]: r for r in landed(data_dir, "rejects", order="line")}
    assert (rejects[2]["raw"], rejects[2]["reason"], rejects[2]["field"]) == ("not json", "not a JSON object", None)
    assert rejects[4]["field"] == "status" and "LOST is not an outcome" in rejects[4]["reason"]


def test_parquet_and_tsv_exports(tmp_path: Path, data_dir: Path) -> None:
    tsv = write(
        tmp_path / "wms.tsv",
        "receipt\tpo\tline\tqty\twhen\n"
        "R-1\tPO-1\t1\t12.5\t2024-06-01 08:00:00\n"
        "R-2\tPO-1\t2\t3\t2024-06-01 09:00:00\n",
    )
    mapping = """
[source]
system = "wms-north"
format = "tsv"
timezone = "America/New_York"
[columns]
object_id = "receipt"
receipt_id = "receipt"
po_number = "po"
po_line = "line"
quantity = "qty"
event_type = "po"
occurred_at = { column = "when", format = "iso8601" }
[constants]
object_type = "receipt"
event_type = "goods received"
stage = "receipt"
"""
    with pytest.raises(UserError, match="given both as column and constant"):
        ingest(data_dir, mapping, tsv)
    mapping = mapping.replace('event_type = "po"\n', "")
    assert ingest(data_dir, mapping, tsv).accepted["transaction_events"] == 2
    from_tsv = landed(data_dir)
    assert from_tsv[0]["occurred_at"] == dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # EDT
    assert (from_tsv[0]["quantity"], from_tsv[0]["po_line"], from_tsv[1]["quantity"]) == (12.5, 1, 3.0)
    parquet = tmp_path / "wms.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{tsv}', delim='\t', all_varchar=true)) TO '{parquet}' (FORMAT parquet)")
    other = tmp_path / "other"
    assert ingest(other, mapping.replace('"tsv"', '"parquet"'), parquet).accepted["transaction_events"] == 2
    assert [e["event_id"] for e in landed(other)] == [e["event_id"] for e in from_tsv]  # same content, same ids


def test_cli_ingest_transactions(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("r2p.cli.refresh_or_defer", lambda context: None)  # the warehouse load is not under test
    data_dir = tmp_path / "data"
    code = main(
        [
            "--data-dir",
            str(data_dir),
            "ingest",
            "transactions",
            "--mapping",
            str(MAPPINGS / "bpic2019.toml"),
            str(DATA / "bpic2019_sample_WISE.csv.gz"),
        ]
    )
    out = capsys.readouterr().out
    assert "1 file(s): accepted 6,567 transaction_events; rejected 0; 0 batch(es) already present" in out
    assert code == 0
    assert main(["--data-dir", str(data_dir), "ingest", "transactions", str(DATA / "bpic2019_sample_WISE.csv.gz")]) == 2
    assert "needs --mapping FILE" in capsys.readouterr().err


def test_several_column_names_take_the_first_non_empty_one(tmp_path: Path, data_dir: Path) -> None:
    mapping = ERP.replace('facility_id = "Plant"', 'facility_id = ["Plant", "Site"]')
    export = write(
        tmp_path / "erp.csv",
        "DocNo;Status;EventTime;Exported;Amount;Plant;Site\n"
        "PO-1;PO Created;10.03.2024 01:30;1710052200123;5,00;NORTH;SOUTH\n"
        "PO-2;PO Created;10.03.2024 01:30;1710052200123;5,00; ;SOUTH\n"
        "PO-3;PO Created;10.03.2024 01:30;1710052200123;5,00;;\n",
    )
    assert ingest(data_dir, mapping, export).accepted["transaction_events"] == 3
    assert [(e["object_id"], e["facility_id"]) for e in landed(data_dir, order="object_id")] == [
        ("PO-1", "NORTH"),
        ("PO-2", "SOUTH"),
        ("PO-3", None),
    ]
