"""Timing page queries: shared by the page benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms_per_page(pages: dict[str, list[Callable[[], object]]], runs: int) -> dict[str, float]:
    """Median milliseconds per page (all its calls together) over ``runs`` warm runs, after one unmeasured run."""
    result = {}
    for name, calls in pages.items():
        samples = []
        for run in range(runs + 1):
            started = time.perf_counter()
            for call in calls:
                call()
            if run:
                samples.append((time.perf_counter() - started) * 1000)
        result[name] = round(statistics.median(samples), 1)
    return result
