"""The simulated health system: configuration, facilities, suppliers, clocks and calendars.

Times inside the simulator are integers: microseconds since the Unix epoch, UTC (``us``). The
health system sits in one region, so every facility's business hours are in ``LOCAL_ZONE``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("America/Chicago")
"""The health system's time zone: business hours, and the cloud ERP's zone-less local timestamps."""

US_PER_S = 1_000_000
US_PER_MIN = 60 * US_PER_S
US_PER_H = 60 * US_PER_MIN
US_PER_DAY = 24 * US_PER_H

DEFAULT_START = dt.date(2025, 1, 6)
"""A Monday; fixed so that output is reproducible."""

BASE_REQUISITIONS_PER_FACILITY_DAY = 300
"""Requisitions per facility per day at ``scale`` 1 ("a few hundred")."""

FACILITY_NAMES = ("NORTH-GENERAL", "SOUTH-COMMUNITY", "EAST-CHILDRENS", "WEST-CLINIC", "LAKESIDE-MEMORIAL")
ACQUIRED_FACILITY = "LAKESIDE-MEMORIAL"
"""The acquired hospital: legacy on-premises ERP reached through a middleware adapter."""

DEPARTMENTS = ("SURGERY", "ICU", "PHARMACY", "LABORATORY", "EMERGENCY", "RADIOLOGY", "CARDIOLOGY", "FACILITIES")
PRIORITY_WEIGHTS = (("stat", 0.05), ("urgent", 0.2), ("routine", 0.75))
APPROVAL_SLA_H = {"stat": 2, "urgent": 8, "routine": 48}
"""Hours a requisition may wait in approval before it counts as stalled (DOMAIN.md section 3)."""

APPROVAL_LIMITS = (1_000, 10_000, 50_000)
"""Requisition values at or above each limit need one more approval level (1 to 4 levels)."""

ITEM_WORDS = (
    ("GLOVE NITRILE", 0.12), ("SUTURE 3-0", 4.8), ("CATHETER IV 20G", 1.9), ("SYRINGE 10ML", 0.35),
    ("GAUZE 4X4", 0.08), ("MASK N95", 1.25), ("GOWN ISOLATION", 2.1), ("STENT CORONARY", 950.0),
    ("TROCAR 12MM", 85.0), ("ELECTRODE ECG", 0.45), ("SALINE 1L", 1.6), ("INFUSION SET", 6.5),
    ("BANDAGE ELASTIC", 1.1), ("TUBE ENDOTRACHEAL", 3.9), ("REAGENT PANEL", 210.0), ("IMPLANT HIP", 2400.0),
)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulation's output; the same config gives the same bytes."""

    seed: int = 1
    days: int = 60
    start: dt.date = DEFAULT_START
    scale: float = 1.0
    facilities: int = 5
    suppliers: int = 40
    snapshot_interval_s: int = 60
    faults: bool = True

    @property
    def requisitions_per_facility_day(self) -> float:
        return BASE_REQUISITIONS_PER_FACILITY_DAY * self.scale

    @property
    def start_us(self) -> int:
        return to_us(dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.timezone.utc))

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * US_PER_DAY

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "days": self.days,
            "start": self.start.isoformat(),
            "scale": self.scale,
            "facilities": self.facilities,
            "suppliers": self.suppliers,
            "snapshot_interval_s": self.snapshot_interval_s,
            "faults": self.faults,
            "requisitions_per_facility_day": self.requisitions_per_facility_day,
            "local_zone": LOCAL_ZONE.key,
        }


@dataclasses.dataclass(frozen=True)
class Facility:
    code: str
    slug: str
    index: int
    legacy: bool
    weight: float
    """Relative requisition volume."""

    @property
    def erp(self) -> str:
        """The system of record for budget, PO, receipt sync and payment."""
        return "legacy-erp" if self.legacy else "erp"

    @property
    def wms(self) -> str:
        return f"wms-{self.slug}"

    @property
    def receipts_queue(self) -> str:
        return f"wms.{self.slug}.receipts"


@dataclasses.dataclass(frozen=True)
class Item:
    number: str
    description: str
    unit_price: float


@dataclasses.dataclass(frozen=True)
class Supplier:
    code: str
    name: str
    isa_id: str
    weight: float
    lead_days: float
    """Median days from PO to shipment."""
    backorder_rate: float
    price_variance_rate: float
    terms_days: int
    items: tuple[Item, ...]


@dataclasses.dataclass(frozen=True)
class HealthSystem:
    """The facilities and suppliers a config describes, drawn from the seed."""

    facilities: tuple[Facility, ...]
    suppliers: tuple[Supplier, ...]

    @classmethod
    def build(cls, config: SimulationConfig) -> "HealthSystem":
        rng = random.Random(f"{config.seed}/health-system")
        names = list(FACILITY_NAMES[:-1])[: max(config.facilities - 1, 0)]
        names += [f"FACILITY-{n:02d}" for n in range(len(names) + 1, config.facilities)]
        if config.facilities >= 1:
            names.append(ACQUIRED_FACILITY)
        facilities = tuple(
            Facility(code=name, slug=name.lower(), index=i, legacy=name == ACQUIRED_FACILITY,
                     weight=round(rng.uniform(0.6, 1.4), 3))
            for i, name in enumerate(names)
        )
        suppliers = []
        for n in range(1, config.suppliers + 1):
            code = f"S{n:02d}"
            items = tuple(
                Item(number=f"{code}-{rng.randrange(10000, 99999)}", description=word,
                     unit_price=round(base * rng.uniform(0.8, 1.3), 2))
                for word, base in rng.sample(ITEM_WORDS, 4)
            )
            suppliers.append(Supplier(
                code=code, name=f"SUPPLIER {code} MEDICAL", isa_id=f"SUP{n:02d}EDI",
                weight=1.0 / n ** 0.8, lead_days=round(rng.uniform(1.0, 4.0), 2),
                backorder_rate=round(rng.uniform(0.02, 0.12), 3), price_variance_rate=round(rng.uniform(0.01, 0.06), 3),
                terms_days=rng.choice((10, 15, 30)), items=items,
            ))
        return cls(facilities=facilities, suppliers=tuple(suppliers))

    def facility(self, code: str) -> Facility:
        return next(f for f in self.facilities if f.code == code)

    def supplier(self, code: str) -> Supplier:
        return next(s for s in self.suppliers if s.code == code)


def to_us(moment: dt.datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * US_PER_S + delta.microseconds


def from_us(us: int) -> dt.datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)


def local(us: int) -> dt.datetime:
    """The health system's local wall-clock time of an instant (aware)."""
    return from_us(us).astimezone(LOCAL_ZONE)


def local_to_us(naive: dt.datetime) -> int:
    return to_us(naive.replace(tzinfo=LOCAL_ZONE))


def iso_utc(us: int) -> str:
    """ISO 8601 UTC with a Z, millisecond precision (manifest and snapshot times)."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def add_business_time(us: int, seconds: float, open_hour: int = 7, close_hour: int = 17) -> int:
    """The instant ``seconds`` of working time after ``us``, counting only weekday business hours."""
    moment = local(us).replace(tzinfo=None)
    remaining = dt.timedelta(seconds=seconds)
    while True:
        opening = moment.replace(hour=open_hour, minute=0, second=0, microsecond=0)
        closing = moment.replace(hour=close_hour, minute=0, second=0, microsecond=0)
        if moment.weekday() >= 5 or moment >= closing:
            moment = opening + dt.timedelta(days=1)
            continue
        moment = max(moment, opening)
        if moment + remaining <= closing:
            return local_to_us(moment + remaining)
        remaining -= closing - moment
        moment = opening + dt.timedelta(days=1)


def is_weekday(us: int) -> bool:
    return local(us).weekday() < 5
