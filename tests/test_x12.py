"""X12 EDI: envelopes, delimiters, control numbers and the business events of 850/855/856/810/820."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from collectors import transactions, x12
from r2p.landing import LandingZone
from test_transactions import landed

SAMPLES = Path(__file__).resolve().parent / "data" / "x12"
UTC = dt.timezone.utc


def ingest(data_dir: Path, *names_or_paths) -> tuple[list[dict], list[dict]]:
    paths = [p if isinstance(p, Path) else SAMPLES / p for p in names_or_paths]
    transactions.ingest(paths, LandingZone(data_dir), None)
    return landed(data_dir, order="event_type, po_line NULLS FIRST, event_id"), landed(data_dir, "rejects", order="input, line")


def test_850_purchase_order_header_and_lines(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "node-x12_850.edi")
    assert rejects == []
    header, *lines = events
    assert (header["event_type"], header["object_type"], header["object_id"], header["po_number"]) == (
        "850",
        "purchase_order",
        "08292233294",
        "08292233294",
    )
    assert (header["stage"], header["outcome"], header["amount"]) == ("po_transmission", "succeeded", Decimal("13045.94"))
    # BEG05 is a date alone (2010-11-27): the moment is the envelope's GS04/GS05, which falls on that day
    assert header["occurred_at"] == dt.datetime(2010, 11, 27, 17, 19, tzinfo=UTC)
    assert header["recorded_at"] == dt.datetime(2010, 11, 27, 17, 19, tzinfo=UTC)  # GS04/GS05
    assert (header["supplier_id"], header["facility_id"], header["department"]) == ("999999999", "0003947268292", "038")
    assert [(e["po_line"], e["quantity"], e["unit_price"]) for e in lines] == [
        (1, 120.0, Decimal("9.25")),
        (2, 220.0, Decimal("13.79")),
        (3, 126.0, Decimal("10.99")),
        (4, 76.0, Decimal("4.35")),
        (5, 72.0, Decimal("7.5")),
        (6, 696.0, Decimal("9.55")),
    ]
    first = json.loads(lines[0]["attributes"])
    assert first["items"] == {"CB": "065322-117", "PR": "RO", "VN": "AB3542"}
    assert (first["description"], first["uom"], first["interchange_control"], first["sender"]) == (
        "SMALL WIDGET",
        "EA",
        "000003438",
        "4405197800",
    )


def test_newline_terminators_give_the_same_events_and_duplicates_collapse(data_dir: Path, tmp_path: Path) -> None:
    tilde, _ = ingest(data_dir, "node-x12_850.edi")
    newline, _ = ingest(tmp_path / "b", "node-x12_850_2.edi")
    assert [e["event_id"] for e in newline] == [e["event_id"] for e in tilde]
    doubled, rejects = ingest(tmp_path / "c", "node-x12_850_fat.edi")  # the same interchange twice in one file
    assert rejects == [] and len(doubled) == 14
    assert {e["event_id"] for e in doubled} == {e["event_id"] for e in tilde}


def test_retransmission_with_new_control_numbers_is_the_same_event(tmp_path: Path) -> None:
    original = (SAMPLES / "node-x12_855.edi").read_text()
    resent = original.replace("000000005", "000000006").replace("*5*X*", "*6*X*").replace("GE*1*5", "GE*1*6")
    resent = resent.replace("*201015*1534*", "*201016*0900*")
    path = tmp_path / "resent.edi"
    path.write_text(resent)
    first, _ = ingest(tmp_path / "a", "node-x12_855.edi")
    second, rejects = ingest(tmp_path / "b", path)
    assert rejects == []
    assert [e["event_id"] for e in second] == [e["event_id"] for e in first]
    assert json.loads(second[0]["attributes"])["interchange_control"] == "000000006"


def test_855_acknowledgment_outcomes_per_line(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "node-x12_855.edi")
    assert rejects == []
    header, *lines = events
    assert (header["event_type"], header["object_type"], header["po_number"], header["stage"], header["outcome"]) == (
        "855",
        "po_ack",
        "POTEST1112",
        "supplier_ack",
        "succeeded",  # BAK02 = AD
    )
    assert header["currency"] == "USD"
    assert header["occurred_at"] == dt.datetime(2020, 10, 15, 15, 34, tzinfo=UTC)  # BAK09's day, at GS04/GS05
    assert [(e["po_line"], e["outcome"], e["quantity"]) for e in lines] == [
        (1, "succeeded", 3.0),
        (2, "rejected", 0.0),
        (3, "rejected", 0.0),
        (4, "succeeded", 2.0),
    ]
    assert json.loads(lines[1]["attributes"])["ack"] == "IR*0*UN************************BI*ACK*CW"


def test_856_ship_notices_with_order_and_pack_levels(data_dir: Path, tmp_path: Path) -> None:
    events, rejects = ingest(data_dir, "node-x12_856.edi")
    assert rejects == []
    header, *lines = events
    assert (header["object_type"], header["object_id"], header["po_number"], header["quantity"]) == (
        "asn",
        "829716",
        "99999817",
        30.0,
    )
    assert header["occurred_at"] == dt.datetime(2011, 12, 6, 14, 24, 28, tzinfo=UTC)  # BSN03/BSN04
    assert [(e["po_number"], e["po_line"], e["quantity"]) for e in lines] == [("99999817", 1, 24.0), ("99999817", 2, 6.0)]
    crossdock, rejects = ingest(tmp_path / "x", "ediengine_856.Crossdock.OK.edi")
    assert rejects == []
    header, *lines = crossdock
    assert header["po_number"] is None  # two orders in one shipment
    assert json.loads(header["attributes"])["po_numbers"] == ["POREF00", "POREF01"]
    assert sorted(e["po_number"] for e in lines) == ["POREF00"] * 4 + ["POREF01"]
    assert all(len(json.loads(e["attributes"])["sscc"]) == 20 for e in lines)  # MAN*GM of the enclosing pack


def test_810_invoices_header_and_lines(data_dir: Path, tmp_path: Path) -> None:
    events, rejects = ingest(data_dir, "edinet_x12.810a.edi")  # BOM, tabs, a non-fixed-width ISA
    assert rejects == []
    header, *lines = events
    assert (header["object_type"], header["invoice_id"], header["po_number"], header["amount"], header["currency"]) == (
        "invoice",
        "DO091003TESTINV01",
        "DO091003",
        Decimal("365.96"),  # TDS*36596, two implied decimals
        "USD",
    )
    assert header["supplier_id"] == "ABCMUSICSUPPLY"
    assert [(e["po_line"], e["quantity"], e["unit_price"], e["amount"]) for e in lines] == [
        (1, 2.0, Decimal("99.99"), Decimal("199.98")),
        (2, 2.0, Decimal("79.99"), Decimal("159.98")),
    ]
    header_level, _ = ingest(tmp_path / "d", "edinet_x12.810d.edi")
    header, *lines = header_level
    assert header["po_number"] is None and header["amount"] == Decimal("646.92")
    assert [(e["po_number"], e["unit_price"]) for e in lines] == [("DO091003", Decimal("359.96")), ("DO091004", Decimal("200"))]


def test_820_remittance_lines_carry_invoice_and_po(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "edinet_x12.820.issue140.edi")
    assert rejects == []
    header = next(e for e in events if e["event_type"] == "820")
    lines = sorted((e for e in events if e["event_type"] == "820 RMR"), key=lambda e: e["invoice_id"])
    assert (header["object_type"], header["object_id"], header["amount"], header["stage"]) == (
        "payment",
        "4529952",
        Decimal("21298.97"),
        "payment",
    )
    assert len(lines) == 7
    assert (lines[0]["invoice_id"], lines[0]["po_number"], lines[0]["amount"]) == ("26801", "1016071221", Decimal("4408.75"))
    assert json.loads(lines[0]["attributes"])["adjustments"] == [{"amount": "-143.76", "reason": "59"}]
    assert sum(e["amount"] for e in lines) == Decimal("21298.97")


def test_control_number_mismatch_rejects_the_interchange_with_the_reason(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "ediengine_ControlNumbersMismatch.edi")
    assert events == []
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        (1, "ISA", "ISA13 000003438 != IEA02 000003439; also ST02 0001 != SE02 0002; GS06 3314 != GE02 3315")
    ]
    assert rejects[0]["raw"].startswith("ISA*01*0000000000") and rejects[0]["raw"].endswith("IEA*1*000003439")


def test_missing_isa16_is_named(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "edinet_x12.850.issue135.edi")
    assert events == []
    assert [(r["line"], r["field"]) for r in rejects] == [(1, "ISA16")]
    assert rejects[0]["reason"].startswith("ISA16 (component separator) missing: the ISA is 105 characters")


def test_missing_segment_terminator_rejects_only_its_transaction_set(tmp_path: Path) -> None:
    fixed = (SAMPLES / "edinet_x12.850.issue135.edi").read_text().replace("*0*T*~", "*0*T*>~", 1)
    path = tmp_path / "issue135_isa16.edi"
    path.write_text(fixed)
    events, rejects = ingest(tmp_path / "data", path)
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        (3, "DTM", "segment terminator '~' missing after 'DTM*038*20190309' (it runs into 'PO1*30*13892*SF***ST*F07')")
    ]
    assert {e["po_number"] for e in events} == {"740151"}  # the second 850 of the group lands
    assert len([e for e in events if e["event_type"] == "850 PO1"]) == 11


def test_segment_count_and_group_errors(tmp_path: Path) -> None:
    text = (SAMPLES / "node-x12_855.edi").read_text()
    bad_count = tmp_path / "count.edi"
    bad_count.write_text(text.replace("SE*26*0005", "SE*25*0005"))
    events, rejects = ingest(tmp_path / "a", bad_count)
    assert events == [] and [(r["field"], r["reason"]) for r in rejects] == [("SE", "SE01 says 25 segments, the set has 26")]
    bad_group = tmp_path / "group.edi"
    bad_group.write_text(text.replace("GE*1*5", "GE*2*5"))
    events, rejects = ingest(tmp_path / "b", bad_group)
    assert events == [] and [(r["field"], r["reason"]) for r in rejects] == [
        ("GE", "GE01 says 2 transaction sets, the group has 1")
    ]


def test_real_world_envelope_defects_and_unsupported_sets(data_dir: Path) -> None:
    events, rejects = ingest(data_dir, "edinet_x12.850.edi", "ediengine_MultipleInterchangesAndGroups.edi")
    assert events == []
    by_input = {}
    for reject in rejects:
        by_input.setdefault(Path(reject["input"]).name, []).append(reject)
    assert [r["reason"] for r in by_input["edinet_x12.850.edi"]] == ["ISA13 000000055 != IEA02 000000001"]
    warehouse_orders = by_input["ediengine_MultipleInterchangesAndGroups.edi"]  # IEA02 3438 = ISA13 000003438
    assert len(warehouse_orders) == 6
    assert {(r["field"], r["reason"]) for r in warehouse_orders} == {
        ("ST01", "transaction set 940 is not read by this collector (it reads 850, 855, 856, 810, 820)")
    }
    assert [r["line"] for r in warehouse_orders] == [3, 8, 15, 24, 29, 36]


def test_every_sample_file_lands_or_rejects_as_expected(data_dir: Path) -> None:
    names = sorted(p.name for p in SAMPLES.glob("*.edi"))
    events, rejects = ingest(data_dir, *names)
    counts: dict[str, int] = {}
    for event in events:
        counts[event["event_type"]] = counts.get(event["event_type"], 0) + 1
    assert counts == {
        "810": 4,
        "810 IT1": 7,
        "820": 1,
        "820 RMR": 7,
        "850": 5,
        "850 PO1": 25,
        "855": 1,
        "855 ACK": 4,
        "856": 2,
        "856 SN1": 7,
    }
    assert len(rejects) == 10  # 1 mismatch + 1 ISA16 + 2 ISA13/IEA02 (edinet 850, 850a) + 6 x 940


@pytest.mark.parametrize("text", ["", "hello", "ISA*00*short~"])
def test_garbage_is_a_reject_not_a_crash(text: str) -> None:
    parsed = x12.parse(text)
    assert parsed.sets == [] and len(parsed.problems) == 1
