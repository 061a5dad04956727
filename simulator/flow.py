"""The requisition walk: one requisition through every stage of DOMAIN.md section 1.

Each requisition's life is drawn at creation from its facility-day's random streams and emitted
as business events (one per system that records it), spans of the integration services, X12
documents and broker messages. Faults are asked of ``Faults`` at the moment each step happens.
Human steps keep business hours (weekdays 07:00-17:00 local; STAT approvals round the clock);
docks receive 06:00-22:00 every day; durations are log-normal.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid

from simulator.faults import THROTTLE_RATE, THROTTLE_RETRY_RATE, Faults, approver, day_of
from simulator.model import (
    APPROVAL_LIMITS,
    APPROVAL_SLA_H,
    DEPARTMENTS,
    PRIORITY_WEIGHTS,
    US_PER_DAY,
    US_PER_H,
    US_PER_MIN,
    US_PER_S,
    Facility,
    HealthSystem,
    SimulationConfig,
    Supplier,
    add_business_time,
    local,
    local_to_us,
)
from simulator.spool import DaySpool, EdiDoc, KafkaRecord, Message, SpanSpec, Txn

KAFKA_PARTITIONS = 3
ERP_HOST = "erp-api.cloud.example-health.org"
LEGACY_HOST = "lakeside-erp01.corp.example-health.org"
DLQ_REPLAY_HOUR = 14
"""Local hour at which operations replay the ERP integration dead-letter queue each day."""

STACKTRACES = {
    "429": "org.springframework.web.client.HttpClientErrorException$TooManyRequests: 429 Too Many Requests\n"
           "\tat org.springframework.web.client.HttpClientErrorException.create(HttpClientErrorException.java:137)\n"
           "\tat com.examplehealth.integration.erp.ErpClient.post(ErpClient.java:88)\n",
    "TimeoutError": "Traceback (most recent call last):\n  File \"procurement/budget.py\", line 41, in check\n"
                    "    response = session.post(url, json=body, timeout=30)\nTimeoutError: budget check timed out after 30 s\n",
    "SoapFaultException": "com.examplehealth.adapter.SoapFaultException: Server was unable to process request."
                          " ---> ORA-00060: deadlock detected while waiting for resource\n"
                          "\tat com.examplehealth.adapter.LegacyErpClient.invoke(LegacyErpClient.java:212)\n",
    "ConnectException": "java.net.ConnectException: Connection refused: lakeside-erp01:8443\n"
                        "\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)\n"
                        "\tat com.examplehealth.adapter.LegacyErpClient.invoke(LegacyErpClient.java:198)\n",
    "VendorBlockedException": "com.examplehealth.erp.VendorBlockedException: vendor is blocked for posting\n"
                              "\tat com.examplehealth.erp.po.PurchaseOrderService.create(PurchaseOrderService.java:64)\n",
}


def lognormal(rng: random.Random, median_s: float, sigma: float = 0.8) -> float:
    return rng.lognormvariate(math.log(median_s), sigma)


class Trace:
    """Span ids for one trace, drawn from the facility-day's id stream."""

    def __init__(self, walk: "Walk"):
        self.walk = walk
        self.trace_id = walk.ids.getrandbits(128) | 1
        self.hex = f"{self.trace_id:032x}"

    def span(self, service: str, name: str, kind: str, start: int, end: int, attributes: dict,
             parent: int | None = None, remote: bool = False, error: str | None = None, message: str = "",
             links: tuple = ()) -> int:
        span_id = self.walk.ids.getrandbits(64) | 1
        failure = (error, message, STACKTRACES.get(error, f"{error}: {message}\n")) if error else None
        skew = self.walk.faults.skew_us(self.walk.service_system.get(service, service))
        self.walk.emit_span(SpanSpec(service, name, kind, self.trace_id, span_id, parent, remote,
                                     start + skew, max(end, start + 1) + skew, attributes, failure, links))
        return span_id


class Walk:
    """Walks every requisition of a run, one facility-day at a time, emitting into the spool."""

    def __init__(self, config: SimulationConfig, system: HealthSystem, faults: Faults, spool: DaySpool):
        self.config = config
        self.system = system
        self.faults = faults
        self.spool = spool
        self.end = config.end_us
        self.supplier_weights = [s.weight for s in system.suppliers]
        self.service_system = {f.wms: f.wms for f in system.facilities}
        self.service_system["legacy-erp-adapter"] = "legacy-erp"
        self.counts: dict[str, int] = {}
        self.rng = random.Random()
        self.ids = random.Random()
        self.seq = 0

    # Emission.

    def bucket(self, us: int) -> int:
        return day_of(self.config, us)

    def emit_txn(self, txn: Txn) -> None:
        if txn.recorded < self.end and txn.occurred < self.end:
            self.spool.add(self.bucket(txn.recorded), ("txn", txn))

    def emit_span(self, spec: SpanSpec) -> None:
        if spec.end < self.end:
            self.spool.add(self.bucket(spec.end), ("span", spec))

    def emit_edi(self, doc: EdiDoc) -> None:
        if doc.time < self.end:
            self.spool.add(self.bucket(doc.time), ("edi", doc))

    def emit_message(self, message: Message) -> None:
        if message.published < self.end:
            self.spool.add(self.bucket(message.published), ("msg", message))

    def emit_kafka(self, topic: str, key: str, produced: int, consumed: int) -> None:
        if produced < self.end:
            partition = sum(key.encode()) % KAFKA_PARTITIONS
            self.spool.add(self.bucket(produced), ("kafka", KafkaRecord(topic, partition, produced, consumed)))

    def event_id(self, system: str) -> str:
        """A source-native event id: each system has its own style."""
        self.seq += 1
        if system == "procurement":
            return f"PRC-{self.day_key}{self.seq:07d}"
        if system == "erp":
            return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))
        if system == "legacy-erp":
            return f"{self.day_key}{self.seq:08d}"
        if system == "ap":
            return f"ape_{self.ids.getrandbits(64):016x}"
        return f"W{self.day_key}-{self.seq:07d}"

    def txn(self, system: str, event_type: str, object_type: str, object_id: str, status: str, occurred: int,
            recorded: int | None = None, **fields) -> Txn:
        skew = self.faults.skew_us(system)
        recorded = occurred + int(lognormal(self.rng, 2 * US_PER_S, 0.6)) if recorded is None else recorded
        event = Txn(system, self.event_id(system), event_type, object_type, object_id, status,
                    occurred + skew, recorded + skew, **fields)
        self.emit_txn(event)
        return event

    # One day.

    def day(self, day: int) -> int:
        """Walk every requisition created on ``day`` and the day's supplier master changes; returns how many."""
        walked = 0
        day_start = self.config.start_us + day * US_PER_DAY
        for facility in self.system.facilities:
            self.rng = random.Random(f"{self.config.seed}/walk/{facility.code}/{day}")
            self.ids = random.Random(f"{self.config.seed}/ids/{facility.code}/{day}")
            self.day_key = f"{facility.index + 1}{day:03d}"
            self.seq = 0
            weekend = local(day_start + 12 * US_PER_H).weekday() >= 5
            rate = self.config.requisitions_per_facility_day * facility.weight * (0.35 if weekend else 1.0)
            count = max(0, round(rate * self.rng.uniform(0.9, 1.1)))
            created = sorted(self.creation_time(day_start) for _ in range(count))
            for n, moment in enumerate(created, 1):
                self.requisition(facility, day, n, moment)
            walked += count
        self.rng = random.Random(f"{self.config.seed}/master/{day}")
        self.ids = random.Random(f"{self.config.seed}/master-ids/{day}")
        self.day_key = f"0{day:03d}"
        self.seq = 0
        self.supplier_master(day, day_start)
        return walked

    def creation_time(self, day_start: int) -> int:
        # Requisitions follow the working day: a peak mid-morning, some after hours.
        hour = min(max(self.rng.gauss(11.0 + 6.0, 3.0), 0.0), 23.99) if self.rng.random() < 0.85 else self.rng.uniform(0, 24)
        return day_start + int(hour * US_PER_H)

    # Master data beside the flow.

    def supplier_master(self, day: int, day_start: int) -> None:
        changes = [(day_start + int(self.rng.uniform(13, 23) * US_PER_H), self.rng.choice(self.system.suppliers).code,
                    "active", "SUPPLIER_UPDATED") for _ in range(max(4, round(20 * self.config.scale)))]
        drift = self.faults.supplier_drift
        if drift is not None and day == self.bucket(self.faults.supplier_drift_change_us):
            changes.append((self.faults.supplier_drift_change_us, self.faults.blocked_supplier, "blocked",
                            "SUPPLIER_STATUS_CHANGED"))
        if day == 0:
            changes += [(day_start + US_PER_MIN * (n + 1), s.code, "active", "SUPPLIER_STATUS_CHANGED")
                        for n, s in enumerate(self.system.suppliers)]
        for moment, code, status, event_type in sorted(changes):
            self.txn("erp", event_type, "supplier", code, status, moment, supplier=code, detail=status,
                     actor="MDM_STEWARD")
            consumed = moment + int(lognormal(self.rng, 20 * US_PER_S))
            if drift is not None and (drift.covers(consumed) or drift.covers(moment)):
                consumed = max(consumed, drift.end_us + int(lognormal(self.rng, 60 * US_PER_S)))
                if code == self.faults.blocked_supplier and status == "blocked":
                    drift.observed["procurement_updated_at"] = consumed
            self.emit_kafka("supplier.master", code, moment, consumed)
            self.txn("procurement", event_type, "supplier", code, status, consumed, supplier=code, detail=status,
                     actor="supplier-sync")

    # The requisition.

    def requisition(self, facility: Facility, day: int, n: int, created: int) -> None:
        rng = self.rng
        supplier = rng.choices(self.system.suppliers, self.supplier_weights)[0]
        priority = rng.choices([p for p, _ in PRIORITY_WEIGHTS], [w for _, w in PRIORITY_WEIGHTS])[0]
        department = rng.choice(DEPARTMENTS)
        lines = []
        for line in range(1, rng.choice((1, 1, 2, 2, 3, 4)) + 1):
            item = rng.choice(supplier.items)
            quantity = max(1, round(lognormal(rng, 40 if item.unit_price < 10 else 2, 1.0)))
            lines.append((line, item.number, item.description, quantity, item.unit_price))
        value = round(sum(q * p for _, _, _, q, p in lines), 2)
        initials = "".join(part[0] for part in facility.code.split("-"))
        rid = f"REQ-{initials}{facility.index + 1}-{day:03d}-{n:05d}"
        context = {"procurement.facility.id": facility.code, "procurement.supplier.id": supplier.code,
                   "procurement.priority": priority, "procurement.requisition.id": rid}
        common = dict(facility=facility.code, supplier=supplier.code, department=f"{department}", priority=priority,
                      requisition_id=rid)

        # requisition
        trace = Trace(self)
        self.txn("procurement", "REQUISITION_CREATED", "requisition", rid, "draft", created, amount=value,
                 trace_id=trace.hex, actor=f"{facility.code}/{department}/REQUESTER", **common)
        submitted = created + int(lognormal(rng, 6 * 60 * US_PER_S, 0.7))
        self.submit_spans(trace, submitted, context, rid)
        self.txn("procurement", "REQUISITION_SUBMITTED", "requisition", rid, "pending_approval", submitted,
                 amount=value, trace_id=trace.hex, **common)

        # approval
        levels = 1 + sum(value >= limit for limit in APPROVAL_LIMITS)
        moment, level, reworks = submitted, 1, 0
        last_level_event = None
        while level <= levels:
            self.txn("procurement", "APPROVAL_REQUESTED", "requisition", rid, "pending_approval", moment,
                     amount=value, actor=approver(facility.code, level), detail=f"level {level}", **common)
            median = {"stat": 900, "urgent": 3600, "routine": 4 * 3600}[priority]
            wait = lognormal(rng, median, 1.0)
            decided = moment + int(wait * US_PER_S) if priority == "stat" else add_business_time(moment, wait)
            absence = self.faults.approver_back_us(facility.code, level, moment)
            if absence is not None:
                incident, back = absence
                decided = max(decided, add_business_time(back, lognormal(rng, 1800, 0.5)))
                sla_end = moment + APPROVAL_SLA_H[priority] * US_PER_H
                if min(decided, self.end) > sla_end:
                    incident.count("count_over")
                    if decided >= self.end:
                        incident.count("still_waiting_at_end")
                    sample = incident.observed.setdefault("sample_requisitions", [])
                    if len(sample) < 20:
                        sample.append(rid)
            if decided >= self.end:
                return
            roll = rng.random()
            outcome = "REJECTED" if roll < 0.015 else "RETURNED" if roll < 0.045 and reworks < 2 else "LEVEL_APPROVED"
            approval_trace = Trace(self)
            approval_trace.span("procurement-suite", "POST /api/approvals/{id}/decision", "server", decided,
                                decided + int(lognormal(rng, 120_000)), {
                                    **context, "procurement.stage": "approval", "procurement.object.type": "requisition",
                                    "procurement.object.id": rid, "http.request.method": "POST",
                                    "http.response.status_code": 200, "procurement.approval.level": level})
            status = {"REJECTED": "rejected", "RETURNED": "returned", "LEVEL_APPROVED": "pending_approval"}[outcome]
            last_level_event = self.txn("procurement", outcome, "requisition", rid, status, decided, amount=value,
                                        actor=approver(facility.code, level), detail=f"level {level}",
                                        trace_id=approval_trace.hex, **common)
            if outcome == "REJECTED":
                return
            if outcome == "RETURNED":
                reworks += 1
                moment = add_business_time(decided, lognormal(rng, 3 * 3600))
                self.txn("procurement", "REQUISITION_RESUBMITTED", "requisition", rid, "pending_approval", moment,
                         amount=value, **common)
                level = 1
                continue
            moment, level = decided, level + 1

        # budget check, then final approval (or, in the race, approval first)
        approved, budget_ok = self.budget_check(facility, trace, moment, context, rid, value, common, last_level_event)
        if approved is None or approved >= self.end:
            return
        if not budget_ok:
            return

        # po_creation
        po = self.create_po(facility, supplier, day, n, approved, context, rid, value, common)
        if po is None:
            return
        po_number, po_created, erp_trace = po
        context = {**context, "procurement.po.number": po_number}
        common = {**common, "po_number": po_number}
        self.txn("procurement", "PO_NUMBER_RECEIVED", "requisition", rid, "ordered", po_created + int(
            lognormal(rng, 30 * US_PER_S)), amount=value, **common)

        # po_transmission
        sent = self.transmit_po(facility, supplier, po_number, po_created, erp_trace, context, lines, common)

        # supplier_ack
        acked = sent + int(add_business_time(sent, lognormal(rng, 2 * 3600)) - sent)
        backordered = {line for line, *_ in lines if rng.random() < supplier.backorder_rate}
        if rng.random() < 0.015:
            self.acknowledge(facility, supplier, po_number, acked, lines, backordered, "RJ", context, common)
            return
        self.acknowledge(facility, supplier, po_number, acked, lines, backordered,
                         "AC" if backordered else "AD", context, common)

        # shipment, receipt, invoice, match, payment: one shipment for lines in stock, one later for backorders
        shipments = [[ln for ln in lines if ln[0] not in backordered], [ln for ln in lines if ln[0] in backordered]]
        ship_time = sent + int(lognormal(rng, supplier.lead_days * 86400, 0.5) * US_PER_S)
        for index, shipped_lines in enumerate(shipments, 1):
            if not shipped_lines:
                continue
            if index == 2:
                ship_time += int(rng.uniform(5, 12) * US_PER_DAY)
            if ship_time >= self.end:
                return
            self.fulfil(facility, supplier, po_number, f"{po_number}-{index}", ship_time, shipped_lines, context,
                        common)

    # Stage helpers.

    def submit_spans(self, trace: Trace, at: int, context: dict, rid: str) -> None:
        attributes = {**context, "procurement.stage": "requisition", "procurement.object.type": "requisition",
                      "procurement.object.id": rid, "http.request.method": "POST", "http.response.status_code": 201}
        trace.span("procurement-suite", "POST /api/requisitions/{id}/submit", "server", at,
                   at + int(lognormal(self.rng, 180_000)), attributes)

    def erp_call(self, trace: Trace, client: str, parent: int | None, start: int, method: str, route: str,
                 attributes: dict, attempts: int) -> tuple[int, bool]:
        """An HTTP call to the cloud ERP with retries on 429; returns (end, succeeded)."""
        rng = self.rng
        moment = start
        throttle = self.faults.throttle
        for attempt in range(1, attempts + 1):
            server_time = int(lognormal(rng, 250_000, 0.6))
            end = moment + server_time + 30_000
            limited = self.faults.throttled(moment) and rng.random() < (THROTTLE_RATE if attempt == 1 else THROTTLE_RETRY_RATE)
            if throttle is not None and self.faults.throttled(moment):
                throttle.count("erp_calls_in_window")
                throttle.count("erp_429_in_window", int(limited))
            status = 429 if limited else 200
            call = {**attributes, "http.request.method": method, "http.response.status_code": status,
                    "server.address": ERP_HOST, "http.request.resend_count": attempt - 1}
            if limited:
                call["error.type"] = "429"
            client_id = trace.span(client, f"{method} {route}", "client", moment, end, call, parent=parent,
                                   error="429" if limited else None, message="429 Too Many Requests")
            server = {k: v for k, v in call.items() if k not in ("server.address", "http.request.resend_count")}
            trace.span("erp-api", f"{method} {route}", "server", moment + 15_000, moment + 15_000 + server_time,
                       server, parent=client_id, remote=True)
            if not limited:
                return end, True
            moment = end + int((2 ** attempt) * US_PER_S * rng.uniform(0.8, 1.2))
        return moment, False

    def legacy_call(self, trace: Trace, parent: int | None, start: int, operation: str,
                    attributes: dict) -> tuple[int, bool]:
        """One SOAP call from the middleware adapter to the legacy ERP."""
        rng = self.rng
        rate = self.faults.legacy_failure_rate(start)
        failed = rng.random() < rate
        outage = self.faults.legacy_outage
        if outage is not None:
            key = "in_window" if outage.covers(start) else "outside"
            outage.count(f"calls_{key}")
            outage.count(f"errors_{key}", int(failed))
        error = (rng.choice(("SoapFaultException", "ConnectException")) if failed else None)
        end = start + int(lognormal(rng, 900_000 if not failed else 5_000_000, 0.6))
        call = {**attributes, "http.request.method": "POST", "server.address": LEGACY_HOST, "rpc.system": "soap",
                "rpc.method": operation, "http.response.status_code": 500 if error == "SoapFaultException" else 200}
        if error == "ConnectException":
            del call["http.response.status_code"]
        if error:
            call["error.type"] = error
        trace.span("legacy-erp-adapter", f"SOAP {operation}", "client", start, end, call, parent=parent, error=error,
                   message="ORA-00060: deadlock detected" if error == "SoapFaultException" else "Connection refused")
        return end, not failed

    def adapter_delivery(self, queue: str, published: int, operation: str, trace_link: tuple, attributes: dict,
                         ) -> int:
        """The legacy adapter consumes one message and calls the legacy ERP, retrying, dead-lettering; returns done."""
        rng = self.rng
        moment = published + int(lognormal(rng, 2 * US_PER_S))
        for backoff_min in (1, 5, 15, 0):
            trace = Trace(self)
            consumer = trace.span("legacy-erp-adapter", f"process {queue}", "consumer", moment,
                                  moment + 1_500_000, {**attributes, **rabbit(queue, "process")}, links=(trace_link,))
            end, ok = self.legacy_call(trace, consumer, moment + 10_000, operation, attributes)
            if ok:
                self.emit_message(Message(queue, published, moment, end))
                return end
            if backoff_min:
                moment = end + backoff_min * US_PER_MIN
        # Four failures: dead-lettered; operations replay the DLQ the next weekday at 08:00.
        self.emit_message(Message(queue, published, moment, end))
        replay = next_local_hour(end, 8, weekdays=True)
        self.emit_message(Message("legacy-erp.adapter.dlq", end, replay, replay))
        trace = Trace(self)
        done, _ = replay + 20_000_000, True
        trace.span("legacy-erp-adapter", f"SOAP {operation}", "client", replay, done,
                   {**attributes, "http.request.method": "POST", "server.address": LEGACY_HOST, "rpc.system": "soap",
                    "rpc.method": operation, "http.response.status_code": 200, "procurement.replayed": True})
        return done

    def budget_check(self, facility: Facility, trace: Trace, moment: int, context: dict, rid: str, value: float,
                     common: dict, last_level_event) -> tuple[int | None, bool]:
        """Budget check in the ERP and the final approval; returns (approved at, budget passed)."""
        rng = self.rng
        attributes = {**context, "procurement.stage": "budget_check", "procurement.object.type": "requisition",
                      "procurement.object.id": rid, "procurement.source.system": "procurement",
                      "procurement.target.system": facility.erp}
        fails = rng.random() < 0.02
        check_trace = Trace(self)
        start = moment + int(lognormal(rng, 3 * US_PER_S))
        race = self.faults.budget_race_at(facility.code, start)
        if race:
            # The ERP is slow; the suite's 30 s timeout fires and it approves without the result.
            timeout = start + 30 * US_PER_S
            check_trace.span("procurement-suite", "POST /erp/budget-checks", "client", start, timeout,
                             {**attributes, "http.request.method": "POST", "server.address": ERP_HOST,
                              "error.type": "TimeoutError"}, error="TimeoutError",
                             message="budget check timed out after 30 s")
            done = timeout + int(lognormal(rng, 45 * 60 * US_PER_S, 0.9))
            fails = rng.random() < 0.15
            check_trace.span("erp-api", "POST /api/v1/budget-checks", "server", start + 20_000, done,
                             {**attributes, "http.request.method": "POST", "http.response.status_code": 200},
                             remote=True)
            approved = timeout + US_PER_S
            incident = self.faults.budget_race
            incident.count("count_over")
            incident.count("failed_after_approval", int(fails))
        else:
            parent = None
            if facility.legacy:
                server = {**attributes, "http.request.method": "POST", "http.response.status_code": 200}
                parent = check_trace.span("legacy-erp-adapter", "POST /budget-checks", "server", start,
                                          start + 2 * US_PER_S, server, remote=True)
                done, ok = start, False
                while not ok:
                    done, ok = self.legacy_call(check_trace, parent, done + 50_000, "CheckBudget", attributes)
                    if not ok:
                        done += US_PER_MIN
            else:
                done, ok = start, False
                while not ok:
                    done, ok = self.erp_call(check_trace, "procurement-suite", None, done, "POST",
                                             "/api/v1/budget-checks", attributes, attempts=3)
                    if not ok:
                        done += 15 * US_PER_MIN
            approved = done + US_PER_S
        self.txn(facility.erp, "BUDGET_CHECK_FAILED" if fails else "BUDGET_CHECK_PASSED", "requisition", rid,
                 "failed" if fails else "passed", done, amount=value, trace_id=check_trace.hex,
                 actor="BUDGET_ENGINE", **common)
        if fails and not race:
            self.txn("procurement", "REQUISITION_REJECTED", "requisition", rid, "rejected", approved, amount=value,
                     detail="budget check failed", **common)
            return approved, False
        # The suite logs its own events in order, unless they were delivered out of order.
        recorded = approved + int(lognormal(rng, 2 * US_PER_S, 0.6))
        if last_level_event is not None:
            if self.faults.reordered(approved):
                recorded = last_level_event.recorded - 30 * US_PER_S
                self.faults.out_of_order.count("count_over")
            else:
                recorded = max(recorded, last_level_event.recorded + 1000)
        self.txn("procurement", "REQUISITION_APPROVED", "requisition", rid, "approved", approved, recorded,
                 amount=value, trace_id=check_trace.hex, **common)
        if fails:
            self.txn(facility.erp, "REQUISITION_CANCELLED", "requisition", rid, "cancelled", done + US_PER_MIN,
                     amount=value, detail="budget check failed after approval", **common)
            return approved, False
        return approved, True

    def create_po(self, facility: Facility, supplier: Supplier, day: int, n: int, approved: int, context: dict,
                  rid: str, value: float, common: dict) -> tuple[str, int, tuple] | None:
        rng = self.rng
        produced = approved + int(lognormal(rng, 2 * US_PER_S))
        trace = Trace(self)
        producer = trace.span("procurement-integration", "send procurement.requisitions", "producer", produced,
                              produced + 8_000, {**context, "procurement.stage": "po_creation",
                                                 **kafka("procurement.requisitions", "send")})
        consumed = produced + int(lognormal(rng, 4 * US_PER_S))
        self.emit_kafka("procurement.requisitions", rid, produced, consumed)
        consumer_trace = Trace(self)
        attributes = {**context, "procurement.stage": "po_creation", "procurement.object.type": "purchase_order",
                      "procurement.source.system": "procurement", "procurement.target.system": facility.erp}
        consumer = consumer_trace.span("erp-integration", "process procurement.requisitions", "consumer", consumed,
                                       consumed + 400_000, {**attributes, **kafka("procurement.requisitions", "process")},
                                       links=((trace.trace_id, producer),))
        if facility.legacy:
            po_number = f"L{facility.index + 1}-{day:03d}{n:05d}"
            attributes["procurement.po.number"] = po_number
            attributes["procurement.object.id"] = po_number
            queue = "legacy-erp.adapter.requests"
            publish = consumer_trace.span("erp-integration", f"send {queue}", "producer", consumed + 300_000,
                                          consumed + 310_000, {**attributes, **rabbit(queue, "send")}, parent=consumer)
            done = self.adapter_delivery(queue, consumed + 310_000, "CreatePurchaseOrder",
                                         (consumer_trace.trace_id, publish), attributes)
            created = done + US_PER_S
            self.txn("legacy-erp", "PO_CREATED", "purchase_order", po_number, "open", created, amount=value,
                     actor="ADAPTER", **common, po_number=po_number)
            return po_number, created, (consumer_trace.trace_id, publish)
        po_number = f"45{facility.index + 1}{day:03d}{n:04d}"
        attributes["procurement.po.number"] = po_number
        attributes["procurement.object.id"] = po_number
        if self.faults.supplier_blocked_in_erp(supplier.code, consumed):
            end = consumed + 200_000
            consumer_trace.span("erp-api", "POST /api/v1/purchase-orders", "server", consumed + 50_000, end,
                                {**attributes, "http.request.method": "POST", "http.response.status_code": 422,
                                 "error.type": "VendorBlockedException"}, parent=consumer, remote=True,
                                error="VendorBlockedException", message=f"vendor {supplier.code} is blocked for posting")
            self.txn("erp", "PO_CREATION_FAILED", "purchase_order", rid, "failed", end, amount=value,
                     trace_id=consumer_trace.hex, detail=f"vendor {supplier.code} blocked for posting", **common)
            drift = self.faults.supplier_drift
            if drift.covers(consumed):
                drift.count("po_creation_failed_over")
            return None
        done, ok = consumed + 20_000, False
        while not ok:
            done, ok = self.erp_call(consumer_trace, "erp-integration", consumer, done, "POST",
                                     "/api/v1/purchase-orders", attributes, attempts=3)
            if not ok:
                done += US_PER_MIN
        self.txn("erp", "PO_CREATED", "purchase_order", po_number, "open", done, amount=value,
                 trace_id=consumer_trace.hex, actor="erp-integration", **common, po_number=po_number)
        return po_number, done, (consumer_trace.trace_id, consumer)

    def transmit_po(self, facility: Facility, supplier: Supplier, po_number: str, created: int, erp_trace: tuple,
                    context: dict, lines: list, common: dict) -> int:
        rng = self.rng
        queue = "erp.po.outbound"
        published = created + int(lognormal(rng, 5 * US_PER_S))
        trace = Trace(self)
        attributes = {**context, "procurement.stage": "po_transmission", "procurement.object.type": "purchase_order",
                      "procurement.object.id": po_number, "procurement.source.system": facility.erp,
                      "procurement.target.system": "supplier-network"}
        producer = trace.span("erp-integration", f"send {queue}", "producer", published, published + 5_000,
                              {**attributes, **rabbit(queue, "send")})
        delivered = published + int(lognormal(rng, 1 * US_PER_S))
        gateway = Trace(self)
        consumer = gateway.span("edi-gateway", f"process {queue}", "consumer", delivered, delivered + 2_000_000,
                                {**attributes, **rabbit(queue, "process")}, links=((trace.trace_id, producer),))
        sent = delivered + int(lognormal(rng, 1_200_000))
        gateway.span("edi-gateway", "AS2 send 850", "client", delivered + 100_000, sent,
                     {**attributes, "edi.transaction_set": "850", "server.address": f"as2.{supplier.code.lower()}.example"},
                     parent=consumer)
        self.emit_message(Message(queue, published, delivered, sent))
        self.emit_edi(EdiDoc("850", sent, supplier.code, facility.code, po_number, po_number, tuple(lines)))
        if self.faults.ack_outage is not None and self.faults.ack_outage.covers(sent) \
                and supplier.code == self.faults.ack_supplier:
            self.faults.ack_outage.count("count_850_over")
        self.txn(facility.erp, "PO_TRANSMITTED", "purchase_order", po_number, "transmitted", sent,
                 amount=common_amount(lines), trace_id=gateway.hex if not facility.legacy else None, **common)
        return sent

    def acknowledge(self, facility: Facility, supplier: Supplier, po_number: str, at: int, lines: list,
                    backordered: set, code: str, context: dict, common: dict) -> None:
        if at >= self.end:
            return
        if self.faults.ack_missing(supplier.code, at):
            self.faults.ack_outage.count("acks_not_sent")
            return
        rng = self.rng
        ack_lines = tuple((line, item, qty, "IR" if code == "RJ" else "IB" if line in backordered else "IA")
                          for line, item, _, qty, _ in lines)
        self.emit_edi(EdiDoc("855", at, supplier.code, facility.code, f"ACK{po_number}", po_number, ack_lines, code))
        attributes = {**context, "procurement.stage": "supplier_ack", "procurement.object.type": "po_ack",
                      "procurement.object.id": po_number, "procurement.source.system": "supplier-network",
                      "procurement.target.system": facility.erp}
        trace = Trace(self)
        received = trace.span("edi-gateway", "AS2 receive 855", "server", at, at + 300_000,
                              {**attributes, "edi.transaction_set": "855"})
        queue = "edi.inbound.acks"
        producer = trace.span("edi-gateway", f"send {queue}", "producer", at + 300_000, at + 305_000,
                              {**attributes, **rabbit(queue, "send")}, parent=received)
        delivered = at + 305_000 + int(lognormal(rng, US_PER_S))
        status = {"RJ": "rejected", "AC": "backordered", "AD": "accepted"}[code]
        done = self.apply_to_erp(facility, queue, at + 305_000, delivered, (trace.trace_id, producer), attributes,
                                 "PATCH", "/api/v1/purchase-orders/{po}/acknowledgement", "UpdatePurchaseOrderAck")
        self.txn(facility.erp, "PO_ACKNOWLEDGED" if code != "RJ" else "PO_REJECTED_BY_SUPPLIER", "purchase_order",
                 po_number, status, done, **common)
        if code == "RJ":
            self.txn("procurement", "PO_CANCELLED", "requisition", common["requisition_id"], "cancelled",
                     done + int(lognormal(self.rng, 60 * US_PER_S)), detail="rejected by supplier", **common)

    def apply_to_erp(self, facility: Facility, queue: str, published: int, delivered: int, link: tuple,
                     attributes: dict, method: str, route: str, operation: str) -> int:
        """A queued message applied to the facility's ERP: consumer span, API call, retries, DLQ; returns done."""
        if facility.legacy:
            return self.adapter_delivery(queue, published, operation, link, attributes)
        trace = Trace(self)
        consumer = trace.span("erp-integration", f"process {queue}", "consumer", delivered, delivered + 500_000,
                              {**attributes, **rabbit(queue, "process")}, links=(link,))
        done, ok = self.erp_call(trace, "erp-integration", consumer, delivered + 20_000, method, route, attributes,
                                 attempts=2)
        self.emit_message(Message(queue, published, delivered, done))
        if ok:
            return done
        # Still throttled after a retry: dead-lettered, replayed by operations at 14:00 local.
        replay = next_local_hour(done, DLQ_REPLAY_HOUR, weekdays=False)
        self.emit_message(Message("erp.integration.dlq", done, replay, replay + US_PER_S))
        self.faults.throttle.count("dead_lettered")
        replay_trace = Trace(self)
        consumer = replay_trace.span("erp-integration", "process erp.integration.dlq", "consumer", replay,
                                     replay + 500_000, {**attributes, **rabbit("erp.integration.dlq", "process")},
                                     links=((trace.trace_id, consumer),))
        done, ok = replay + 20_000, False
        while not ok:
            done, ok = self.erp_call(replay_trace, "erp-integration", consumer, done, method, route, attributes,
                                     attempts=3)
        return done

    def fulfil(self, facility: Facility, supplier: Supplier, po_number: str, shipment: str, shipped: int,
               lines: list, context: dict, common: dict) -> None:
        """Shipment (856), dock receipt, sync to ERP, invoice (810), three-way match and payment."""
        rng = self.rng
        asn_lines = tuple((line, item, qty) for line, item, _, qty, _ in lines)
        self.emit_edi(EdiDoc("856", shipped, supplier.code, facility.code, f"ASN{shipment}", po_number, asn_lines))
        base = {**context, "procurement.object.type": "asn", "procurement.object.id": f"ASN{shipment}",
                "procurement.source.system": "supplier-network", "procurement.target.system": facility.wms}
        trace = Trace(self)
        received = trace.span("edi-gateway", "AS2 receive 856", "server", shipped, shipped + 250_000,
                              {**base, "procurement.stage": "shipment", "edi.transaction_set": "856"})
        queue = "edi.inbound.asn"
        producer = trace.span("edi-gateway", f"send {queue}", "producer", shipped + 250_000, shipped + 255_000,
                              {**base, "procurement.stage": "shipment", **rabbit(queue, "send")}, parent=received)
        asn_in = shipped + 255_000 + int(lognormal(rng, 2 * US_PER_S))
        self.emit_message(Message(queue, shipped + 255_000, asn_in, asn_in + 300_000))
        wms_trace = Trace(self)
        wms_trace.span(facility.wms, f"process {queue}", "consumer", asn_in, asn_in + 300_000,
                       {**base, "procurement.stage": "shipment", **rabbit(queue, "process")},
                       links=((trace.trace_id, producer),))
        self.txn(facility.wms, "ASN_RECEIVED", "asn", f"ASN{shipment}", "expected", asn_in + 300_000,
                 quantity=sum(q for _, _, q in asn_lines), trace_id=wms_trace.hex, **common)

        # receipt at the dock (06:00-22:00 local), with an occasional short delivery
        arrival = shipped + int(lognormal(rng, 86400 * US_PER_S, 0.5))
        docked = dock_time(arrival) + int(rng.uniform(0, 40) * US_PER_MIN)
        if docked >= self.end:
            return
        receipt_id = f"GR-{shipment}"
        received_lines = [(line, item, qty - (rng.randint(1, max(1, qty // 4)) if rng.random() < 0.02 and qty > 1 else 0))
                          for line, item, qty in asn_lines]
        received_qty = sum(q for _, _, q in received_lines)
        attributes = {**context, "procurement.stage": "receipt", "procurement.object.type": "receipt",
                      "procurement.object.id": receipt_id, "procurement.receipt.id": receipt_id,
                      "procurement.source.system": facility.wms, "procurement.target.system": facility.erp}
        receipt_trace = Trace(self)
        post = receipt_trace.span(facility.wms, "POST /receipts", "server", docked, docked + 400_000,
                                  {**attributes, "http.request.method": "POST", "http.response.status_code": 201})
        for line, item, qty in received_lines:
            self.txn(facility.wms, "RECEIPT_POSTED", "receipt", receipt_id, "received", docked, quantity=qty,
                     po_line=line, receipt_id=receipt_id, trace_id=receipt_trace.hex,
                     actor=f"{facility.code}/DOCK", detail=item, **common)
        queue = facility.receipts_queue
        published = docked + 450_000
        producer = receipt_trace.span(facility.wms, f"send {queue}", "producer", published, published + 5_000,
                                      {**attributes, **rabbit(queue, "send")}, parent=post)
        delay = self.faults.receipt_delay_us(facility.code, docked)
        delivered = published + int(lognormal(rng, 20 * US_PER_S, 0.7)) + delay
        synced = self.apply_to_erp(facility, queue, published, delivered, (receipt_trace.trace_id, producer),
                                   attributes, "POST", "/api/v1/goods-receipts", "PostGoodsReceipt")
        sync = self.txn(facility.erp, "RECEIPT_SYNCED", "receipt", receipt_id, "posted", synced,
                        synced + int(lognormal(rng, US_PER_S)), quantity=received_qty, receipt_id=receipt_id,
                        actor="erp-integration", **common)
        if self.faults.duplicated(synced) and not facility.legacy and rng.random() < 0.15:
            # The consumer died before its ack: the broker redelivers and the export repeats the row.
            self.emit_message(Message(queue, published, synced, synced + 2 * US_PER_S, redelivered=True))
            self.emit_txn(sync)
            self.faults.duplicates.count("duplicate_rows_over")
        late = self.faults.late_receipts
        if late is not None and facility.code == late.where["facility"]:
            lag_h = (synced - docked) / US_PER_H
            lags = late.observed.setdefault("_lags", {"in": [], "out": []})
            lags["in" if late.covers(docked) else "out"].append(lag_h)
        erp_known = sync.recorded - self.faults.skew_us(facility.erp)

        # invoice: usually days after shipment; sometimes sent with the goods, before the receipt
        sent = shipped + int((lognormal(rng, 3 * 3600, 0.6) if rng.random() < 0.15
                              else lognormal(rng, 2 * 86400, 0.6)) * US_PER_S)
        if sent >= self.end:
            return
        variance = rng.random() < supplier.price_variance_rate
        invoice_lines = tuple((line, item, desc, qty, round(price * (rng.uniform(1.03, 1.08) if variance and k == 0
                                                                      else 1.0), 2))
                              for k, (line, item, desc, qty, price) in enumerate(lines))
        total = common_amount(invoice_lines)
        invoice_id = f"INV-{supplier.code}-{shipment}"
        resend = self.faults.duplicated(sent) and rng.random() < 0.1
        self.emit_edi(EdiDoc("810", sent, supplier.code, facility.code, invoice_id, po_number, invoice_lines,
                             resend=resend))
        if resend:
            self.faults.duplicates.count("resent_810")
        inv_attributes = {**context, "procurement.stage": "invoice", "procurement.object.type": "invoice",
                          "procurement.object.id": invoice_id, "procurement.invoice.id": invoice_id,
                          "procurement.source.system": "supplier-network", "procurement.target.system": "ap"}
        trace = Trace(self)
        received = trace.span("edi-gateway", "AS2 receive 810", "server", sent, sent + 300_000,
                              {**inv_attributes, "edi.transaction_set": "810"})
        producer = trace.span("edi-gateway", "send ap.invoices", "producer", sent + 300_000, sent + 305_000,
                              {**inv_attributes, **kafka("ap.invoices", "send")}, parent=received)
        arrived = sent + 305_000 + int(lognormal(rng, 3 * US_PER_S))
        self.emit_kafka("ap.invoices", invoice_id, sent + 305_000, arrived)
        ap_trace = Trace(self)
        ap_trace.span("ap-platform", "process ap.invoices", "consumer", arrived, arrived + 800_000,
                      {**inv_attributes, **kafka("ap.invoices", "process")}, links=((trace.trace_id, producer),))
        inv_common = {**common, "invoice_id": invoice_id, "receipt_id": receipt_id}
        self.txn("ap", "INVOICE_RECEIVED", "invoice", invoice_id, "received", arrived + 800_000, amount=total,
                 quantity=sum(q for *_, q, _ in invoice_lines), trace_id=ap_trace.hex, **inv_common)

        # three-way match: needs the receipt in the ERP; re-run nightly at 02:00 local until it is
        attempt = arrived + int(lognormal(rng, 10 * 60 * US_PER_S))
        outcome = None
        while attempt < self.end:
            match_trace = Trace(self)
            match_attributes = {**inv_attributes, "procurement.stage": "match", "procurement.source.system": "ap",
                                "procurement.target.system": facility.erp, "procurement.receipt.id": receipt_id}
            root = match_trace.span("ap-platform", "three-way-match", "internal", attempt, attempt + 2_000_000,
                                    match_attributes)
            if not facility.legacy:
                self.erp_call(match_trace, "ap-platform", root, attempt + 10_000, "GET", "/api/v1/goods-receipts",
                              match_attributes, attempts=3)
            if erp_known > attempt:
                outcome = "missing_receipt"
            elif received_qty != sum(q for *_, q, _ in invoice_lines):
                outcome = "quantity_variance"
            elif variance:
                outcome = "price_variance"
            else:
                outcome = "matched"
            if outcome == "matched":
                self.txn("ap", "MATCHED", "invoice", invoice_id, "matched", attempt + 2_000_000, amount=total,
                         trace_id=match_trace.hex, **inv_common)
                break
            self.txn("ap", "MATCH_EXCEPTION", "invoice", invoice_id, "exception", attempt + 2_000_000, amount=total,
                     trace_id=match_trace.hex, detail=outcome, **inv_common)
            if late is not None and outcome == "missing_receipt" and facility.code == late.where["facility"] \
                    and late.covers(docked):
                late.count("missing_receipt_exceptions")
            if outcome == "missing_receipt":
                attempt = next_local_hour(attempt, 2, weekdays=False) + int(rng.uniform(0, 30) * US_PER_MIN)
                continue
            # A clerk resolves the variance (approves it, or takes a credit for the short delivery).
            resolved = add_business_time(attempt, lognormal(rng, 5 * 3600, 0.9))
            if resolved >= self.end:
                return
            self.txn("ap", "EXCEPTION_RESOLVED", "invoice", invoice_id, "resolved", resolved, amount=total,
                     actor="AP_CLERK", detail=outcome, **inv_common)
            self.txn("ap", "MATCHED", "invoice", invoice_id, "matched", resolved + US_PER_MIN, amount=total,
                     detail=f"after {outcome}", **inv_common)
            attempt = resolved + US_PER_MIN
            break
        if outcome is None or attempt >= self.end:
            return

        # payment: scheduled for the due date, paid at the next Tuesday or Friday 18:00 run on or after it
        scheduled = attempt + int(lognormal(rng, 20 * 60 * US_PER_S))
        self.txn(facility.erp, "PAYMENT_SCHEDULED", "payment", f"PAY-{invoice_id}", "scheduled", scheduled,
                 amount=total, **inv_common)
        due = max(scheduled, sent + supplier.terms_days * US_PER_DAY)
        paid = payment_run(due)
        pay_trace = Trace(self)
        pay_trace.span("erp-api" if not facility.legacy else "legacy-erp-adapter", "payment-run", "internal", paid,
                       paid + 3_000_000, {**inv_attributes, "procurement.stage": "payment",
                                          "procurement.object.type": "payment",
                                          "procurement.object.id": f"PAY-{invoice_id}",
                                          "procurement.source.system": facility.erp, "procurement.target.system": "bank"})
        self.txn(facility.erp, "PAYMENT_SENT", "payment", f"PAY-{invoice_id}", "paid", paid + 3_000_000, amount=total,
                 trace_id=pay_trace.hex if not facility.legacy else None, **inv_common)


def rabbit(queue: str, operation: str) -> dict:
    return {"messaging.system": "rabbitmq", "messaging.destination.name": queue, "messaging.operation.type": operation}


def kafka(topic: str, operation: str) -> dict:
    return {"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.operation.type": operation}


def common_amount(lines) -> float:
    return round(sum(qty * price for _, _, _, qty, price in lines), 2)


def next_local_hour(us: int, hour: int, weekdays: bool) -> int:
    """The next instant strictly after ``us`` that is ``hour``:00 local (on a weekday if asked)."""
    moment = local(us).replace(tzinfo=None)
    candidate = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
    while candidate <= moment or (weekdays and candidate.weekday() >= 5):
        candidate = candidate + dt.timedelta(days=1)
    return local_to_us(candidate)


def dock_time(us: int) -> int:
    """Docks receive 06:00-22:00 local every day."""
    hour = local(us).hour
    return us if 6 <= hour < 22 else next_local_hour(us, 6, weekdays=False)


def payment_run(us: int) -> int:
    """The first Tuesday or Friday 18:00 local payment run at or after ``us``."""
    moment = us
    while True:
        run = next_local_hour(moment - 1, 18, weekdays=True)
        if local(run).weekday() in (1, 4):
            return run
        moment = run + 1
