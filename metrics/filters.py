"""The global filters every page applies, and their translation into a WHERE clause on a mart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive UTC days) and the facility, supplier and stage selections (empty: all)."""

    start: dt.date | None = None
    end: dt.date | None = None
    facilities: tuple[str, ...] = ()
    suppliers: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()

    def where(self, day: str = "day") -> tuple[str, dict[str, object]]:
        """A WHERE clause over columns ``day``, ``facility_id``, ``supplier_id``, ``stage``, with its parameters."""
        clauses, params = ["true"], {}
        if self.start:
            clauses.append(f"{day} >= $start")
            params["start"] = self.start
        if self.end:
            clauses.append(f"{day} <= $end")
            params["end"] = self.end
        for column, values in (("facility_id", self.facilities), ("supplier_id", self.suppliers), ("stage", self.stages)):
            if values:
                clauses.append(f"{column} IN (SELECT unnest(${column}))")
                params[column] = list(values)
        return " AND ".join(clauses), params
