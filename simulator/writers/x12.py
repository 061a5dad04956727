"""The supplier network's documents as X12 004010 interchanges: 850, 855, 856, 810.

One interchange (ISA/GS/ST ... SE/GE/IEA) per document, element separator ``*``, component
separator ``>``, segment terminator ``~`` followed by a newline. Control numbers count up per
sender across the run; SE01 counts the segments from ST to SE; GE01 and IEA01 count one set and
one group. A resent interchange repeats its control number (the receiver must deduplicate).
"""

from __future__ import annotations

from pathlib import Path

from simulator.model import from_us
from simulator.spool import EdiDoc

BUYER_ID = "R2PHEALTH"
FUNCTIONAL_ID = {"850": "PO", "855": "PR", "856": "SH", "810": "IN"}


class X12Writer:
    """Writes ``edi/x12-YYYY-MM-DD.edi``; one instance per run (it owns the control number counters)."""

    def __init__(self, out_dir: Path, supplier_ids: dict[str, str]):
        self.directory = out_dir / "edi"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.supplier_ids = supplier_ids
        self.control: dict[str, int] = {}
        self.counts = {"interchanges": 0, "resent": 0, **{f"x12_{t}": 0 for t in FUNCTIONAL_ID}}

    def next_control(self, sender: str) -> int:
        self.control[sender] = self.control.get(sender, 0) + 1
        return self.control[sender]

    def write_day(self, path_date: str, docs: list[EdiDoc], break_one: bool) -> dict | None:
        docs.sort(key=lambda d: d.time)
        path = self.directory / f"x12-{path_date}.edi"
        broken = None
        line = 1
        with open(path, "w", encoding="ascii", newline="\n") as out:
            for doc in docs:
                inbound = doc.doc_type != "850"
                supplier_id = self.supplier_ids[doc.supplier]
                sender, receiver = (supplier_id, BUYER_ID) if inbound else (BUYER_ID, supplier_id)
                segments = interchange(doc, sender, receiver, self.next_control(sender))
                if break_one and broken is None and doc.doc_type == "810":
                    # The partner's translator sent a bad trailer, then the corrected interchange.
                    bad = segments[:-1] + [f"IEA*1*{int(segments[-1].split('*')[2]) + 1:09d}"]
                    broken = {"file": f"edi/{path.name}", "line": line, "locator": f"ISA13 {segments[0].split('*')[13]}",
                              "why": "IEA02 does not match ISA13 (control number mismatch)"}
                    line += self.put(out, bad)
                    segments = interchange(doc, sender, receiver, self.next_control(sender))
                line += self.put(out, segments)
                self.counts[f"x12_{doc.doc_type}"] += 1
                if doc.resend:
                    line += self.put(out, segments)
                    self.counts["resent"] += 1
        return broken

    def put(self, out, segments: list[str]) -> int:
        out.write("".join(f"{segment}~\n" for segment in segments))
        self.counts["interchanges"] += 1
        return len(segments)


def interchange(doc: EdiDoc, sender: str, receiver: str, control: int) -> list[str]:
    """The segments of one interchange carrying one transaction set."""
    moment = from_us(doc.time)
    yymmdd, ccyymmdd, hhmm = moment.strftime("%y%m%d"), moment.strftime("%Y%m%d"), moment.strftime("%H%M")
    st = f"{control % 10000:04d}"
    body = transaction_set(doc, ccyymmdd, hhmm)
    # GS05 takes seconds (ISA10 cannot): the 850, 855 and 810 carry a date alone, so the group's time is
    # their moment, and a PO sent seconds after its creation must not read as sent the minute before.
    return [
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{sender:<15}*ZZ*{receiver:<15}*{yymmdd}*{hhmm}*U*00401*{control:09d}*0*P*>",
        f"GS*{FUNCTIONAL_ID[doc.doc_type]}*{sender}*{receiver}*{ccyymmdd}*{moment.strftime('%H%M%S')}*{control}*X*004010",
        f"ST*{doc.doc_type}*{st}",
        *body,
        f"SE*{len(body) + 2}*{st}",
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]


def transaction_set(doc: EdiDoc, date: str, time: str) -> list[str]:
    ship_to = f"N1*ST*{doc.facility}*92*{doc.facility}"
    if doc.doc_type == "850":
        lines = [s for line, item, desc, qty, price in doc.lines
                 for s in (f"PO1*{line}*{qty}*EA*{price:.2f}**VP*{item}", f"PID*F****{desc}")]
        return [f"BEG*00*SA*{doc.po_number}**{date}", "CUR*BY*USD", ship_to, *lines, f"CTT*{len(doc.lines)}"]
    if doc.doc_type == "855":
        lines = [s for line, item, qty, code in doc.lines
                 for s in (f"PO1*{line}*{qty}*EA***VP*{item}", f"ACK*{code}*{0 if code == 'IR' else qty}*EA")]
        return [f"BAK*00*{doc.code}*{doc.po_number}*{date}", *lines, f"CTT*{len(doc.lines)}"]
    if doc.doc_type == "856":
        items = []
        for n, (line, item, qty) in enumerate(doc.lines, 3):
            items += [f"HL*{n}*2*I", f"LIN*{line}*VP*{item}", f"SN1*{line}*{qty}*EA"]
        return [f"BSN*00*{doc.number}*{date}*{time}", "HL*1**S", f"TD1*CTN*{len(doc.lines)}", f"DTM*011*{date}",
                ship_to, "HL*2*1*O", f"PRF*{doc.po_number}", *items, f"CTT*{len(doc.lines) + 2}"]
    lines = [s for line, item, desc, qty, price in doc.lines
             for s in (f"IT1*{line}*{qty}*EA*{price:.2f}**VP*{item}", f"PID*F****{desc}")]
    total = round(sum(qty * price for _, _, _, qty, price in doc.lines) * 100)
    return [f"BIG*{date}*{doc.number}**{doc.po_number}", "CUR*SE*USD", ship_to, *lines, f"TDS*{total}",
            f"CTT*{len(doc.lines)}"]
