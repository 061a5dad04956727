"""The injected faults of DOMAIN.md section 5: their schedule, the questions the flow asks, and the manifest.

Windows are placed as fractions of the run (so a 21-day demo and a 60-day run both show every
incident) and quantised to whole UTC days. Each incident carries ``expected``: the measurable effect
a correct pipeline must find, with its threshold; and ``observed``: the ground truth the simulator
counted while it generated the data (filled in as the run goes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from simulator.model import (
    APPROVAL_SLA_H,
    US_PER_DAY,
    US_PER_H,
    US_PER_MIN,
    HealthSystem,
    SimulationConfig,
    iso_utc,
    local,
)

THROTTLE_RATE = 0.2
"""Share of first attempts at the ERP API answered 429 in the throttling window."""
THROTTLE_RETRY_RATE = 0.5
"""Share of retries answered 429 there: the rate limit persists, so retries often fail too."""
LEGACY_FAILURE_RATE = 0.35
"""Share of legacy ERP adapter calls that fail during its outage."""
LATE_RECEIPT_PEAK_H = 8.0
"""Peak extra delay of the late facility's receipt sync."""
EAST_WMS_SKEW_MIN = 4
LEGACY_SKEW_MIN = -3


@dataclasses.dataclass
class Incident:
    id: str
    kind: str
    start_us: int
    end_us: int
    where: dict
    expected: dict
    observed: dict = dataclasses.field(default_factory=dict)

    def covers(self, us: int) -> bool:
        return self.start_us <= us < self.end_us

    def count(self, name: str, amount: int = 1) -> None:
        self.observed[name] = self.observed.get(name, 0) + amount

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "start": iso_utc(self.start_us),
            "end": iso_utc(self.end_us),
            **self.where,
            "expected": self.expected,
            "observed": self.observed,
        }


class Faults:
    """The incident schedule of one run, and the fault questions the requisition walk asks."""

    def __init__(self, config: SimulationConfig, system: HealthSystem):
        self.config = config
        self.incidents: list[Incident] = []
        days = config.days
        origin = config.start_us

        def window(first_fraction: float, length_days: int) -> tuple[int, int]:
            first = min(max(round(first_fraction * days), 0), max(days - length_days, 0))
            # Start on a weekday: most of the flow is human, and a weekend window would show little.
            while first > 0 and local(origin + first * US_PER_DAY + 12 * US_PER_H).weekday() >= 5:
                first -= 1
            return origin + first * US_PER_DAY, origin + min(first + length_days, days) * US_PER_DAY

        facilities = system.facilities
        cloud = [f for f in facilities if not f.legacy]
        legacy = next((f for f in facilities if f.legacy), None)
        supplier_codes = [s.code for s in system.suppliers]
        self.late_facility = cloud[1 % len(cloud)] if cloud else None
        self.ack_supplier = supplier_codes[6 % len(supplier_codes)]
        self.blocked_supplier = supplier_codes[11 % len(supplier_codes)]
        self.skewed_wms = cloud[2 % len(cloud)].wms if cloud else None
        self.legacy_facility = legacy
        self.budget_race = self.late_receipts = self.throttle = self.ack_outage = None
        self.legacy_outage = self.supplier_drift = self.duplicates = self.out_of_order = None
        self.stalls: list[Incident] = []
        self.skews: dict[str, int] = {}
        if not config.faults:
            return
        n = 0

        def add(kind: str, span: tuple[int, int], where: dict, expected: dict) -> Incident:
            nonlocal n
            n += 1
            incident = Incident(f"INC-{n:02d}", kind, span[0], span[1], where, expected)
            self.incidents.append(incident)
            return incident

        length = max(1, round(days / 20))
        if self.late_facility:
            f = self.late_facility
            self.late_receipts = add("late_receipts", window(1 / 3, length + 2), {
                "facility": f.code, "stage": "receipt", "flow": "receipt-sync", "system": "erp",
                "source_system": f.wms, "target_system": "erp", "queue": f.receipts_queue,
            }, {
                "measure": "receipt lag: erp.csv RECEIPT_SYNCED entry_ts minus the WMS RECEIPT_POSTED time, "
                           "receipts dock-posted in the window",
                "p95_lag_hours_over": 4.0, "p95_lag_hours_outside_under": 1.0,
                "queue_depth": f"{f.receipts_queue} depth grows during the window, drains by its end",
                "match": "invoices of those receipts fail three-way match as missing_receipt; payment later",
            })
            self.budget_race = add("approval_before_budget_check", window(0.25, length), {
                "facilities": [c.code for c in cloud], "stage": "budget_check", "flow": "budget-check",
                "source_system": "procurement", "target_system": "erp",
            }, {
                "measure": "requisitions whose procurement REQUISITION_APPROVED occurred before erp BUDGET_CHECK_* ",
                "count_over": 0, "count_outside": 0,
                "detail": "budget-check client spans time out (error.type TimeoutError); some checks fail after approval",
            })
        self.throttle = add("erp_throttling", window(0.15, max(3, round(days * 0.3))), {
            "system": "erp", "service": "erp-api", "hours_local": "09:00-10:00 on weekdays",
            "flow": "erp-api", "dead_letter_queue": "erp.integration.dlq",
        }, {
            "measure": "share of erp-api server spans with http.response.status_code 429, weekdays 09:00-10:00 local",
            "rate_429_first_attempt": THROTTLE_RATE, "rate_429_retry": THROTTLE_RETRY_RATE, "rate_429_over": 0.15,
            "rate_429_outside": 0.0,
            "dlq": "erp.integration.dlq depth rises on throttled days, drained by the 14:00 local replay",
        })
        self.ack_outage = add("missing_acks", window(0.52, 3), {
            "supplier": self.ack_supplier, "stage": "supplier_ack", "flow": "po-ack",
            "source_system": "supplier-network", "target_system": "erp",
        }, {
            "measure": f"EDI 855 from {self.ack_supplier} (GS02 SUP{self.ack_supplier[1:]}EDI) in the window",
            "count_855": 0, "count_850_over": 0,
            "detail": "POs sent in the window (850) get no acknowledgment; shipments still follow",
        })
        if legacy:
            self.legacy_outage = add("legacy_adapter_failure", window(0.7, 2), {
                "facility": legacy.code, "system": "legacy-erp", "service": "legacy-erp-adapter",
                "flow": "legacy-erp-adapter", "dead_letter_queue": "legacy-erp.adapter.dlq",
            }, {
                "measure": "error rate of legacy-erp-adapter client spans",
                "error_rate_over": 0.25, "error_rate_outside_under": 0.03,
                "error_types": ["SoapFaultException", "ConnectException"],
            })
        drift = window(0.4, 3)
        self.supplier_drift = add("supplier_status_drift", drift, {
            "supplier": self.blocked_supplier, "object_type": "supplier", "flow": "supplier-master",
            "source_system": "erp", "target_system": "procurement", "consumer_group": "procurement-supplier-sync",
            "topic": "supplier.master",
        }, {
            "measure": f"{self.blocked_supplier} status: erp.csv says blocked from the window start plus 10 h; "
                       "procurement.csv says active until the window end",
            "erp_status": "blocked", "procurement_status_in_window": "active",
            "kafka_lag": "procurement-supplier-sync lag on supplier.master grows in the window, 0 after",
            "po_creation_failed_over": 0,
        })
        self.supplier_drift_change_us = drift[0] + 10 * US_PER_H
        self.duplicates = add("duplicate_delivery", window(0.55, 2), {
            "flow": "receipt-sync", "system": "erp",
        }, {
            "measure": "rows with the same event id in erp.csv RECEIPT_SYNCED; repeated OTLP lines; resent 810 "
                       "interchanges (same ISA13); each must land once",
            "duplicate_rows_over": 0,
        })
        self.out_of_order = add("out_of_order", window(0.8, 1), {
            "system": "procurement", "flow": "requisition-approval",
        }, {
            "measure": "requisitions whose REQUISITION_APPROVED row is recorded before their last LEVEL_APPROVED row",
            "count_over": 0,
        })
        if self.skewed_wms:
            self.skews[self.skewed_wms] = EAST_WMS_SKEW_MIN * US_PER_MIN
            add("clock_skew", (origin, config.end_us), {"system": self.skewed_wms}, {
                "measure": f"{self.skewed_wms} clock runs {EAST_WMS_SKEW_MIN} min fast: its times are late by that much",
                "skew_minutes": EAST_WMS_SKEW_MIN,
                "detail": "median erp RECEIPT_SYNCED entry_ts minus its RECEIPT_POSTED time is negative for that facility",
            })
        if legacy:
            self.skews["legacy-erp"] = LEGACY_SKEW_MIN * US_PER_MIN
            add("clock_skew", (origin, config.end_us), {"system": "legacy-erp"}, {
                "measure": f"legacy-erp clock runs {-LEGACY_SKEW_MIN} min slow", "skew_minutes": LEGACY_SKEW_MIN,
            })
        # Stalled approvals: one resolved earlier in the run, one still open at its end.
        stall_sites = [(facilities[0], 1, window(0.2, max(2, length + 1))),
                       (facilities[2 % len(facilities)], 1, (origin + max(days - 3, 0) * US_PER_DAY, config.end_us))]
        for facility, level, span in stall_sites:
            self.stalls.append(add("stalled_approvals", span, {
                "facility": facility.code, "stage": "approval", "approval_level": level,
                "waiting_on": approver(facility.code, level),
            }, {
                "measure": "requisitions waiting at that level past their priority SLA",
                "sla_hours": APPROVAL_SLA_H, "count_over": 0,
            }))

    # Questions the walk asks.

    def skew_us(self, system: str) -> int:
        return self.skews.get(system, 0)

    def receipt_delay_us(self, facility_code: str, us: int) -> int:
        """Extra sync delay of a receipt posted at ``us``: ramps to the peak, holds, then drains FIFO."""
        incident = self.late_receipts
        if incident is None or facility_code != incident.where["facility"] or not incident.covers(us):
            return 0
        peak = LATE_RECEIPT_PEAK_H * US_PER_H
        rising = (us - incident.start_us) // 2
        falling = int((incident.end_us - us) * 0.9)
        return int(min(peak, rising, falling))

    def throttled(self, us: int) -> bool:
        if self.throttle is None or not self.throttle.covers(us):
            return False
        moment = local(us)
        return moment.weekday() < 5 and moment.hour == 9

    def ack_missing(self, supplier_code: str, us: int) -> bool:
        return self.ack_outage is not None and supplier_code == self.ack_supplier and self.ack_outage.covers(us)

    def legacy_failure_rate(self, us: int) -> float:
        return LEGACY_FAILURE_RATE if self.legacy_outage is not None and self.legacy_outage.covers(us) else 0.01

    def budget_race_at(self, facility_code: str, us: int) -> bool:
        return (self.budget_race is not None and self.budget_race.covers(us)
                and facility_code in self.budget_race.where["facilities"])

    def supplier_blocked_in_erp(self, supplier_code: str, us: int) -> bool:
        return (self.supplier_drift is not None and supplier_code == self.blocked_supplier
                and us >= self.supplier_drift_change_us)

    def supplier_sync_down(self, us: int) -> bool:
        return self.supplier_drift is not None and self.supplier_drift.covers(us)

    def approver_back_us(self, facility_code: str, level: int, us: int) -> tuple[Incident, int] | None:
        """The stall incident and the moment the absent approver returns, if one is absent at ``us``."""
        for incident in self.stalls:
            if (incident.where["facility"] == facility_code and incident.where["approval_level"] == level
                    and incident.covers(us)):
                return incident, incident.end_us + 2 * US_PER_H
        return None

    def duplicated(self, us: int) -> bool:
        return self.duplicates is not None and self.duplicates.covers(us)

    def reordered(self, us: int) -> bool:
        return self.out_of_order is not None and self.out_of_order.covers(us)


def approver(facility_code: str, level: int) -> str:
    """The approver role a facility's approval level waits on."""
    return f"{facility_code}/APPROVER-L{level}"


def day_of(config: SimulationConfig, us: int) -> int:
    return (us - config.start_us) // US_PER_DAY


def date_of(config: SimulationConfig, day: int) -> dt.date:
    return config.start + dt.timedelta(days=day)
