"""ASC X12 EDI (850, 855, 856, 810, 820) to ``transaction_events``.

Why our own reader: on PyPI, ``badx12`` (last release 0.2.2, December 2018) parses one interchange
per document and fails on a UTF-8 BOM; ``pyx12`` and ``linuxforhealth-x12`` carry only HIPAA
healthcare-claims maps. What this collector needs is the envelope and a handful of segments,
which is splitting on the delimiters that the ISA header declares, plus the control-number checks.

Reading: the element separator is the character after ``ISA``; ISA16 (the character after the
16th element separator) is the component separator and the character after it the segment
terminator, so the fixed-width ISA and the non-fixed-width ones (``ISA*00* *00* *...``) both
work. A UTF-8 BOM, newlines after terminators and indentation are ignored; a file may hold many
interchanges. Envelope checks: ISA13 = IEA02, IEA01 = groups, GS06 = GE02, GE01 = sets,
ST02 = SE02, SE01 = segments. A failed check rejects its interchange, group or transaction set
with the reason; everything else in the file lands.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from r2p import schema
from r2p.landing import RAW_TEXT_LIMIT, BatchWriter

SUPPORTED = {"850": "purchase order", "855": "PO acknowledgment", "856": "ship notice", "810": "invoice", "820": "remittance"}

ACK_TYPE_OUTCOMES = {  # BAK02
    "AC": "exception",  # acknowledge with detail and change
    "AD": "succeeded",  # with detail, no change
    "AE": "exception",  # with exception detail only
    "AH": "pending",  # hold status
    "AK": "succeeded",  # no detail or change
    "AP": "succeeded",  # product replenishment
    "AT": "succeeded",  # accepted
    "NA": "succeeded",  # no acknowledgment needed
    "RD": "rejected",  # reject with detail
    "RF": "rejected",  # reject with exception detail only
    "RJ": "rejected",  # rejected, no detail
    "RO": "rejected",  # rejected with counter offer
}
LINE_ACK_OUTCOMES = {  # ACK01
    "IA": "succeeded",  # item accepted
    "AR": "succeeded",  # accepted and released for shipment
    "IB": "pending",  # backordered
    "BP": "pending",  # partial shipment, balance backordered
    "IW": "pending",  # on hold, waiver required
    "IH": "pending",  # on hold
    "IF": "pending",  # on hold, incomplete description
    "IR": "rejected",  # item rejected
    "R1": "rejected",
    "R2": "rejected",
    "R3": "rejected",
    "R4": "rejected",
    "ID": "cancelled",  # item deleted
    "IC": "exception",  # accepted, changes made
    "IP": "exception",  # accepted, price changed
    "IQ": "exception",  # accepted, quantity changed
    "IS": "exception",  # accepted, substitution made
    "IE": "exception",  # accepted, price pending
    "DR": "exception",  # accepted, date rescheduled
}
"""Unknown codes give ``pending`` with the code kept in attributes: a human must look."""


class EnvelopeError(Exception):
    """A transaction set, group or interchange that breaks the X12 syntax or its control numbers."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass
class Segment:
    """One segment: its id, its elements (``elements[0]`` is the id) and where it starts and ends."""

    elements: list[str]
    offset: int = 0
    end: int = 0

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, position: int) -> str:
        """Element ``position`` (1-based, as X12 numbers them), stripped; '' when absent."""
        return self.elements[position].strip() if position < len(self.elements) else ""


@dataclass
class TransactionSet:
    segments: list[Segment]
    group: Segment
    interchange: Segment
    start: int
    end: int


@dataclass
class Problem:
    reason: str
    field: str | None
    start: int
    end: int


@dataclass
class Parsed:
    """A file's transaction sets that passed every check, and the pieces that did not."""

    sets: list[TransactionSet] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def decode(data: bytes) -> str:
    """X12 text: UTF-8 (BOM dropped), else Latin-1 (X12's basic and extended sets fit in it)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse(text: str) -> Parsed:
    """Split ``text`` into interchanges, check their envelopes and return the good transaction sets."""
    parsed = Parsed()
    position = _next_isa(text, 0)
    if position < 0:
        parsed.problems.append(Problem("no ISA interchange header in the file", "ISA", 0, len(text)))
        return parsed
    while position >= 0:
        position = _interchange(text, position, parsed)
        position = _next_isa(text, position)
    return parsed


def _next_isa(text: str, start: int) -> int:
    while True:
        found = text.find("ISA", start)
        if found < 0 or not text[found - 1 : found].strip() or found == 0:
            return found
        start = found + 3


def _delimiters(text: str, start: int) -> tuple[str, str, str, int]:
    """(element separator, component separator, segment terminator, its position) of the ISA at ``start``."""
    separator = text[start + 3 : start + 4]
    if not separator or separator.isalnum() or separator.isspace():
        raise EnvelopeError(f"ISA: element separator {separator!r} is not a delimiter", "ISA")
    position = start + 3  # the separator before ISA01; ISA16 follows the 16th
    for _ in range(15):
        position = text.find(separator, position + 1)
        if position < 0:
            raise EnvelopeError("ISA: fewer than 16 elements", "ISA")
    component, terminator = text[position + 1 : position + 2], text[position + 2 : position + 3]
    if not component or not terminator or component.isalnum() or component == separator:
        raise EnvelopeError(f"ISA16: {component!r} is not a component separator", "ISA16")
    return separator, component, terminator, position + 2


def _segments(text: str, start: int, separator: str, terminator: str) -> Iterator[Segment | EnvelopeError]:
    """Segments from ``start`` up to and including IEA; an EnvelopeError where a terminator is missing."""
    position = start
    while position < len(text):
        end = text.find(terminator, position)
        end = len(text) if end < 0 else end
        body = text[position:end]
        stripped = body.strip().lstrip("\ufeff").strip()
        offset = position + body.find(stripped[:1]) if stripped else position
        position = end + 1
        if not stripped:
            continue
        if "\n" in stripped or "\r" in stripped:
            head, tail = stripped.splitlines()[0].strip(), stripped.splitlines()[1].strip()
            yield EnvelopeError(
                f"segment terminator {terminator!r} missing after {head!r} (it runs into {tail[:24]!r})",
                head.split(separator)[0],
            )
            stripped = head
        segment = Segment(stripped.split(separator), offset, end)
        yield segment
        if segment.id == "IEA":
            return


def _same_control(header: str, trailer: str) -> bool:
    """Control numbers are numeric: ``000003438`` and ``3438`` are the same number."""
    if header.isdigit() and trailer.isdigit():
        return int(header) == int(trailer)
    return header == trailer


def _interchange(text: str, start: int, parsed: Parsed) -> int:
    """Check one interchange from its ISA at ``start``; keep its good sets; return where it ends."""
    try:
        separator, component, terminator, isa_end = _delimiters(text, start)
    except EnvelopeError as error:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        parsed.problems.append(Problem(error.reason, error.field, start, end))
        return end
    problems: list[str] = []  # interchange-level: reject the whole interchange
    nested: list[str] = []  # control-number mismatches inside it, quoted in that reason
    inner: list[Problem] = []  # group- and set-level rejects
    good: list[TransactionSet] = []
    isa: Segment | None = None
    group: Segment | None = None
    group_sets: list[TransactionSet] = []
    tx: list[Segment] | None = None
    tx_error: EnvelopeError | None = None
    groups = sets_in_group = 0
    end: int | None = None
    for item in _segments(text, start, separator, terminator):
        if isinstance(item, EnvelopeError):
            if tx is not None:
                tx_error = tx_error or item
            else:
                problems.append(item.reason)
            continue
        segment, kind = item, item.id
        if kind == "ISA":
            isa = segment
            if len(segment.elements) != 17:
                problems.append(f"ISA has {len(segment.elements) - 1} elements, not 16")
        elif isa is not None and group is None and kind == "GS" and groups == 0 and segment.elements[-1].endswith(component):
            problems.append(
                f"ISA16 (component separator) missing: the ISA is {isa_end - start} characters including its "
                f"terminator {component!r} (a complete one has 106), so no segment terminator is known"
            )
            break
        elif kind == "GS":
            if group is not None:
                problems.append(f"GS {segment.get(6)} opens before GE closes group {group.get(6)}")
            group, group_sets, sets_in_group = segment, [], 0
            groups += 1
        elif kind == "ST":
            if group is None:
                problems.append("ST outside a functional group (no GS)")
            tx, tx_error = [segment], None
            sets_in_group += 1
        elif kind == "SE" and tx is not None:
            tx.append(segment)
            st, span = tx[0], (tx[0].offset, segment.end)
            reasons = []
            if not _same_control(st.get(2), segment.get(2)):
                reasons.append(f"ST02 {st.get(2)} != SE02 {segment.get(2)}")
                nested.append(reasons[-1])
            if segment.get(1) != str(len(tx)):
                reasons.append(f"SE01 says {segment.get(1)} segments, the set has {len(tx)}")
            if tx_error is not None:
                inner.append(Problem(tx_error.reason, tx_error.field, *span))
            elif reasons:
                inner.append(Problem("; ".join(reasons), "SE", *span))
            elif group is not None and isa is not None:
                group_sets.append(TransactionSet(tx, group, isa, *span))
            tx = None
        elif kind == "GE" and group is not None:
            reasons = []
            if not _same_control(group.get(6), segment.get(2)):
                reasons.append(f"GS06 {group.get(6)} != GE02 {segment.get(2)}")
                nested.append(reasons[-1])
            if segment.get(1) != str(sets_in_group):
                reasons.append(f"GE01 says {segment.get(1)} transaction sets, the group has {sets_in_group}")
            if reasons:  # the whole group goes, with the reasons of its sets
                inner = [p for p in inner if p.start < group.offset]
                inner.append(Problem("; ".join(reasons), "GE", group.offset, segment.end))
            else:
                good.extend(group_sets)
            group = None
        elif kind == "IEA":
            end = segment.end
            if isa is not None and not _same_control(isa.get(13), segment.get(2)):
                problems.insert(0, f"ISA13 {isa.get(13)} != IEA02 {segment.get(2)}")
            if segment.get(1) != str(groups):
                problems.append(f"IEA01 says {segment.get(1)} groups, the interchange has {groups}")
            if group is not None:
                problems.append(f"group {group.get(6)} has no GE")
        elif tx is not None:
            tx.append(segment)
        else:
            problems.append(f"segment {kind} outside a transaction set")
    if end is None:
        if not any("ISA16" in p for p in problems):
            problems.append("no IEA trailer: the interchange is cut short")
        following = _next_isa(text, isa_end)
        end = len(text) if following < 0 else following
    if problems:
        extra = [n for n in nested if n not in problems]
        reason = "; ".join(problems + (["also " + "; ".join(extra)] if extra else []))
        parsed.problems.append(Problem(reason, "ISA16" if reason.startswith("ISA16") else "ISA", start, end))
    else:
        parsed.sets.extend(good)
        parsed.problems.extend(inner)
    return end


# ---------------------------------------------------------------------------------------------
# Business content


def _date(value: str, time: str = "", zone: zoneinfo.ZoneInfo | None = None) -> dt.datetime | None:
    """CCYYMMDD (or YYMMDD) with an optional HHMM[SS[d..]] time, read in ``zone``, as UTC."""
    value, time = value.strip(), time.strip()
    try:
        if len(value) == 6:
            value = "20" + value
        day = dt.datetime.strptime(value, "%Y%m%d")
        if time:
            digits = (time + "00")[:6] if len(time) >= 4 else ""
            if digits:
                day = day.replace(hour=int(digits[:2]), minute=int(digits[2:4]), second=int(digits[4:6]))
    except ValueError:
        return None
    return day.replace(tzinfo=zone or dt.timezone.utc).astimezone(dt.timezone.utc)


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value.strip()) if value.strip() else None
    except InvalidOperation:
        return None


def _line(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _pairs(segment: Segment, first: int) -> dict[str, str]:
    """Qualifier/value pairs from element ``first`` on (PO106/PO107 ..., LIN02/LIN03 ...)."""
    pairs = {}
    for position in range(first, len(segment.elements) - 1, 2):
        qualifier, value = segment.get(position), segment.get(position + 1)
        if qualifier and value:
            pairs.setdefault(qualifier, value)
    return pairs


def _party(segments: list[Segment], codes: tuple[str, ...]) -> str | None:
    """Id (N104) or name (N102) of the first N1 party with an entity code in ``codes``."""
    for segment in segments:
        if segment.id == "N1" and segment.get(1) in codes:
            return segment.get(4) or segment.get(2) or None
    return None


def _currency(segments: list[Segment]) -> str | None:
    """The currency code of the first CUR segment (CUR02), if any."""
    cur = _first(segments, "CUR")
    return (cur.get(2) or None) if cur else None


def _ref(segments: list[Segment], qualifier: str) -> str | None:
    for segment in segments:
        if segment.id == "REF" and segment.get(1) == qualifier:
            return segment.get(2) or None
    return None


def _following(segments: list[Segment], index: int, segment_id: str, position: int) -> str | None:
    """Element ``position`` of the first ``segment_id`` after ``segments[index]``, within its loop."""
    loop = segments[index].id
    for segment in segments[index + 1 :]:
        if segment.id == loop:
            return None
        if segment.id == segment_id:
            return segment.get(position) or None
    return None


def _first(segments: list[Segment], segment_id: str) -> Segment | None:
    return next((segment for segment in segments if segment.id == segment_id), None)


class Events:
    """Builds the canonical rows of one transaction set."""

    def __init__(self, tx: TransactionSet, system: str, zone: zoneinfo.ZoneInfo):
        self.tx = tx
        self.system = system
        self.zone = zone
        self.rows: list[dict[str, Any]] = []
        group = tx.group
        self.recorded_at = _date(group.get(4), group.get(5), zone)
        self.document_time: dt.datetime | None = None
        self.envelope = {
            "sender": tx.interchange.get(6),
            "receiver": tx.interchange.get(8),
            "interchange_control": tx.interchange.get(13),
            "usage": tx.interchange.get(15),
            "group_control": group.get(6),
            "version": group.get(8),
            "set_control": tx.segments[0].get(2),
        }

    def moment(self, date: str, time: str = "") -> dt.datetime | None:
        """When the document's event happened: its own date and time. A date alone is a day, not a moment
        (read as midnight it would put a PO's 850 hours before the requisition was even created), so the
        moment is the envelope's time (GS04/GS05, when the sender created the group) if that falls on the
        document's day, else the start of that day; no date at all: the envelope's time. The document's own
        date, not this moment, goes into the event id (see ``add``)."""
        stated = _date(date, time, self.zone)
        self.document_time = stated
        if stated is None or time.strip() or self.recorded_at is None:
            return stated or self.recorded_at
        return self.recorded_at if stated <= self.recorded_at < stated + dt.timedelta(days=1) else stated

    def add(self, **row: Any) -> None:
        """Add one event; its id hashes its business content and the document's own date, not the
        envelope's control numbers or times, so a retransmission of the same document (new ISA13, new GS
        time) is the same event."""
        business = {k: v for k, v in row.pop("attributes", {}).items() if v not in (None, "", {}, [])}
        row.setdefault("system", self.system)
        row.setdefault("recorded_at", self.recorded_at)
        stated = {**row, "occurred_at": self.document_time}
        identity = [stated.get(name) for name in IDENTITY] + [json.dumps(business, sort_keys=True, default=str)]
        digest = hashlib.md5("\x1f".join("" if v is None else str(v) for v in identity).encode()).hexdigest()
        row["event_id"] = f"{self.system}:{digest}"
        row["attributes"] = json.dumps({**self.envelope, **business}, sort_keys=True, default=str)
        self.rows.append(row)


IDENTITY = (
    "object_type", "object_id", "event_type", "occurred_at", "stage", "outcome", "amount", "quantity",
    "unit_price", "po_number", "po_line", "invoice_id", "supplier_id", "facility_id",
)


def _purchase_order(events: Events, segments: list[Segment]) -> None:
    beg = _first(segments, "BEG")
    po = beg.get(3) if beg else ""
    if not po:
        raise EnvelopeError("850 without a PO number (BEG03)", "BEG03")
    occurred = events.moment(beg.get(5))
    currency = _currency(segments)
    common = dict(
        object_type="purchase_order",
        object_id=po,
        stage="po_transmission",
        po_number=po,
        occurred_at=occurred,
        currency=currency,
        supplier_id=_party(segments, ("VN", "SU", "SE")) or events.envelope["receiver"],
        facility_id=_party(segments, ("ST",)),
        department=_ref(segments, "DP"),
    )
    outcome = "cancelled" if beg.get(1) == "01" else "succeeded"
    lines, total = [], Decimal(0)
    for index, segment in enumerate(segments):
        if segment.id != "PO1":
            continue
        quantity, price = _decimal(segment.get(2)), _decimal(segment.get(4))
        description = _following(segments, index, "PID", 5)
        extended = quantity * price if quantity is not None and price is not None else None
        total += extended or 0
        lines.append(
            dict(
                common,
                event_type="850 PO1",
                outcome=outcome,
                po_line=_line(segment.get(1)) if segment.get(1) else len(lines) + 1,
                quantity=float(quantity) if quantity is not None else None,
                unit_price=price,
                amount=extended,
                attributes={"line": segment.get(1), "uom": segment.get(3), "items": _pairs(segment, 6), "description": description},
            )
        )
    amt = next((s for s in segments if s.id == "AMT" and s.get(1) in ("TT", "1", "GV")), None)
    amount = _decimal(amt.get(2)) if amt else (total if lines else None)
    events.add(
        **common,
        event_type="850",
        outcome=outcome,
        amount=amount,
        attributes={
            "purpose": beg.get(1),
            "order_type": beg.get(2),
            "po_date": beg.get(5),
            "lines": len(lines),
            "amount_source": "AMT" if amt else "sum of PO1",
            "requested_delivery": next((s.get(2) for s in segments if s.id == "DTM" and s.get(1) == "002"), None),
        },
    )
    for line in lines:
        events.add(**line)


def _acknowledgment(events: Events, segments: list[Segment]) -> None:
    bak = _first(segments, "BAK")
    po = bak.get(3) if bak else ""
    if not po:
        raise EnvelopeError("855 without a PO number (BAK03)", "BAK03")
    occurred = events.moment(bak.get(9))  # BAK04 is the PO's date, not the acknowledgment's
    ack_type = bak.get(2)
    currency = _currency(segments)
    header_outcome = ACK_TYPE_OUTCOMES.get(ack_type, "pending")
    common = dict(
        object_type="po_ack",
        object_id=po,
        stage="supplier_ack",
        po_number=po,
        occurred_at=occurred,
        currency=currency,
        supplier_id=_party(segments, ("SU", "SE", "VN")) or events.envelope["sender"],
        facility_id=_party(segments, ("ST",)),
    )
    events.add(
        **common,
        event_type="855",
        outcome=header_outcome,
        attributes={"purpose": bak.get(1), "ack_type": ack_type, "po_date": bak.get(4), "seller_order": bak.get(8)},
    )
    po1: Segment | None = None
    acked = True
    for segment in [*segments, Segment(["PO1"], -1)]:
        if segment.id == "PO1":
            if po1 is not None and not acked:
                _ack_line(events, common, po1, None, header_outcome, len(events.rows))
            po1, acked = (segment if segment.offset >= 0 else None), False
        elif segment.id == "ACK" and po1 is not None:
            _ack_line(events, common, po1, segment, header_outcome, len(events.rows))
            acked = True


def _ack_line(events: Events, common: dict, po1: Segment, ack: Segment | None, header_outcome: str, ordinal: int) -> None:
    status = ack.get(1) if ack else ""
    quantity = _decimal(ack.get(2)) if ack else _decimal(po1.get(2))
    events.add(
        **common,
        event_type="855 ACK" if ack else "855 PO1",
        outcome=LINE_ACK_OUTCOMES.get(status, "pending") if ack else header_outcome,
        po_line=_line(po1.get(1)) if po1.get(1) else ordinal,
        quantity=float(quantity) if quantity is not None else None,
        unit_price=_decimal(po1.get(4)),
        attributes={
            "line": po1.get(1),
            "ack_status": status,
            "ordered_quantity": po1.get(2),
            "uom": (ack.get(3) if ack else "") or po1.get(3),
            "items": _pairs(po1, 6),
            "ack": "*".join(ack.elements[1:]).rstrip("*") if ack else None,
        },
    )


def _ship_notice(events: Events, segments: list[Segment]) -> None:
    bsn = _first(segments, "BSN")
    shipment = bsn.get(2) if bsn else ""
    if not shipment:
        raise EnvelopeError("856 without a shipment id (BSN02)", "BSN02")
    occurred = events.moment(bsn.get(3), bsn.get(4))
    common = dict(
        object_type="asn",
        object_id=shipment,
        stage="shipment",
        occurred_at=occurred,
        supplier_id=_party(segments, ("SU", "SF", "SH", "VN")) or events.envelope["sender"],
        facility_id=_party(segments, ("ST",)),
    )
    outcome = "cancelled" if bsn.get(1) == "01" else "succeeded"
    order: str | None = None
    sscc: str | None = None
    lin: Segment | None = None
    lines, orders, shipped = [], [], Decimal(0)
    for segment in segments:
        if segment.id == "HL" and segment.get(3) in ("S", "O"):
            sscc = None
        if segment.id == "PRF":
            order = segment.get(1) or None
            if order and order not in orders:
                orders.append(order)
        elif segment.id == "MAN" and segment.get(1) == "GM":
            sscc = segment.get(2)
        elif segment.id == "LIN":
            lin = segment
        elif segment.id == "SN1":
            quantity = _decimal(segment.get(2))
            shipped += quantity or 0
            line_id = segment.get(1) or (lin.get(1) if lin else "")
            lines.append(
                dict(
                    common,
                    event_type="856 SN1",
                    outcome=outcome,
                    po_number=order,
                    po_line=_line(line_id),
                    quantity=float(quantity) if quantity is not None else None,
                    attributes={"line": line_id, "uom": segment.get(3), "items": _pairs(lin, 2) if lin else {}, "sscc": sscc},
                )
            )
            lin = None
    events.add(
        **common,
        event_type="856",
        outcome=outcome,
        po_number=orders[0] if len(orders) == 1 else None,
        quantity=float(shipped) if lines else None,
        attributes={
            "purpose": bsn.get(1),
            "po_numbers": orders,
            "bill_of_lading": _ref(segments, "BM"),
            "carrier": next((s.get(5) or s.get(3) for s in segments if s.id == "TD5"), None),
            "ship_date": bsn.get(3),
        },
    )
    for line in lines:
        events.add(**line)


def _invoice(events: Events, segments: list[Segment]) -> None:
    big = _first(segments, "BIG")
    invoice = big.get(2) if big else ""
    if not invoice:
        raise EnvelopeError("810 without an invoice number (BIG02)", "BIG02")
    po = big.get(4) or _ref(segments, "PO")
    occurred = events.moment(big.get(1))
    currency = _currency(segments)
    tds = _first(segments, "TDS")
    total = _decimal(tds.get(1)) / 100 if tds and _decimal(tds.get(1)) is not None else None  # TDS01 has 2 implied decimals
    common = dict(
        object_type="invoice",
        object_id=invoice,
        stage="invoice",
        invoice_id=invoice,
        occurred_at=occurred,
        currency=currency,
        supplier_id=_party(segments, ("SU", "SE", "VN")) or events.envelope["sender"],
        facility_id=_party(segments, ("ST",)),
    )
    lines = []
    for segment in segments:
        if segment.id != "IT1":
            continue
        quantity, price = _decimal(segment.get(2)), _decimal(segment.get(4))
        items = _pairs(segment, 6)
        lines.append(
            dict(
                common,
                event_type="810 IT1",
                outcome="succeeded",
                po_number=items.get("PO") or po,
                po_line=_line(segment.get(1)) if segment.get(1) else len(lines) + 1,
                quantity=float(quantity) if quantity is not None else None,
                unit_price=price,
                amount=quantity * price if quantity is not None and price is not None else None,
                attributes={"line": segment.get(1), "uom": segment.get(3), "items": items},
            )
        )
    events.add(
        **common,
        event_type="810",
        outcome="succeeded",
        po_number=po or None,
        amount=total,
        attributes={"invoice_date": big.get(1), "po_date": big.get(3), "transaction_type": big.get(7), "lines": len(lines)},
    )
    for line in lines:
        events.add(**line)


def _remittance(events: Events, segments: list[Segment]) -> None:
    bpr = _first(segments, "BPR")
    if bpr is None or _decimal(bpr.get(2)) is None:
        raise EnvelopeError("820 without a payment amount (BPR02)", "BPR02")
    trn = _first(segments, "TRN")
    payment = (trn.get(2) if trn else "") or events.envelope["set_control"]
    currency = _currency(segments)
    occurred = events.moment(bpr.get(16))
    common = dict(
        object_type="payment",
        object_id=payment,
        stage="payment",
        occurred_at=occurred,
        currency=currency,
        supplier_id=_party(segments, ("PE",)) or events.envelope["receiver"],
    )
    events.add(
        **common,
        event_type="820",
        outcome="succeeded",
        amount=_decimal(bpr.get(2)),
        attributes={"handling": bpr.get(1), "credit_debit": bpr.get(3), "method": bpr.get(4), "payer": _party(segments, ("PR",))},
    )
    remittances: list[list[Segment]] = []
    for segment in segments:
        if segment.id == "RMR":
            remittances.append([segment])
        elif remittances and segment.id in ("REF", "DTM", "ADX"):
            remittances[-1].append(segment)
    for rmr, *details in remittances:
        adjustments = [{"amount": s.get(1), "reason": s.get(2)} for s in details if s.id == "ADX"]
        events.add(
            **common,
            event_type="820 RMR",
            outcome="succeeded",
            invoice_id=rmr.get(2) if rmr.get(1) in ("IV", "") else None,
            po_number=_ref(details, "PO"),
            amount=_decimal(rmr.get(4)),
            attributes={
                "reference_qualifier": rmr.get(1),
                "reference": rmr.get(2),
                "invoice_amount": rmr.get(5),
                "discount": rmr.get(6),
                "invoice_date": next((s.get(2) for s in details if s.id == "DTM"), None),
                "adjustments": adjustments,
            },
        )


READERS = {"850": _purchase_order, "855": _acknowledgment, "856": _ship_notice, "810": _invoice, "820": _remittance}


def events_of(tx: TransactionSet, system: str, zone: zoneinfo.ZoneInfo) -> list[dict[str, Any]]:
    """The canonical rows of one checked transaction set (EnvelopeError when it lacks a key field)."""
    kind = tx.segments[0].get(1)
    reader = READERS.get(kind)
    if reader is None:
        raise EnvelopeError(
            f"transaction set {kind} is not read by this collector (it reads {', '.join(SUPPORTED)})", "ST01"
        )
    events = Events(tx, system, zone)
    reader(events, tx.segments[1:-1])
    return events.rows


def looks_like_x12(path: Path) -> bool:
    """True when the file starts (after a BOM and whitespace) with an ISA segment."""
    with path.open("rb") as handle:
        head = handle.read(64)
    return head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"ISA")


def collect(path: Path, writer: BatchWriter, system: str = "edi", timezone: str = "UTC") -> None:
    """Land one X12 file: its events, and a reject per failed interchange, group or transaction set."""
    text = decode(path.read_bytes())
    zone = zoneinfo.ZoneInfo(timezone)
    newlines = [index for index, char in enumerate(text) if char == "\n"]
    parsed = parse(text)

    def reject(problem: Problem) -> None:
        writer.reject(
            problem.reason,
            text[problem.start : problem.end][:RAW_TEXT_LIMIT],
            line=bisect.bisect_right(newlines, problem.start - 1) + 1,
            byte_offset=len(text[: problem.start].encode()),
            field=problem.field,
        )

    for problem in parsed.problems:
        reject(problem)
    rows: list[dict[str, Any]] = []
    for tx in parsed.sets:
        try:
            rows.extend(events_of(tx, system, zone))
        except EnvelopeError as error:
            reject(Problem(error.reason, error.field, tx.start, tx.end))
    writer.notes["x12_transaction_sets"] = len(parsed.sets)
    if rows:
        writer.add(schema.TransactionEvent.table, _arrow(rows))


def _arrow(rows: list[dict[str, Any]]):
    """The rows as an Arrow table with every canonical column (rows leave out what they lack)."""
    import pyarrow as pa

    types = {"TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "DOUBLE": pa.float64(), "BIGINT": pa.int64(),
             "DECIMAL(18,4)": pa.decimal128(18, 4)}
    fields = [
        pa.field(name, types.get(sql_type, pa.string()))
        for name, sql_type, _, _ in schema.columns(schema.TransactionEvent)
        if name != "batch_id"
    ]
    quantum = Decimal("0.0001")
    columns = {
        field.name: [
            row.get(field.name).quantize(quantum)
            if isinstance(row.get(field.name), Decimal) else row.get(field.name)
            for row in rows
        ]
        for field in fields
    }
    return pa.table(columns, schema=pa.schema(fields))
