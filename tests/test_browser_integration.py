"""A real browser on the integration pages: click the hottest heatmap cell of Integration health, open one
failed PO from its failure list, and see that PO's trace waterfall with the failing span marked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from samples import land_records
from test_browser import ARTIFACTS, page, served, wait_for_render  # noqa: F401 (page is a fixture)
from test_drift import drift_records
from test_pages_integration import po_trace


@pytest.fixture
def integration_dashboard(data_dir: Path) -> Iterator[str]:
    """`r2p serve` over the drift system plus a PO whose ERP call failed; yields its base URL once healthy."""
    records = drift_records()
    records["spans"] = records["spans"] + po_trace()
    land_records(data_dir, records)
    with served(data_dir) as base:
        yield base


HOTTEST_POINT = """
chart => {
    // Plotly 6 ships numeric arrays as base64 typed-array payloads ({dtype: 'f8', bdata}).
    const decode = value => value && value.bdata
        ? Array.from(new Float64Array(Uint8Array.from(atob(value.bdata), c => c.charCodeAt(0)).buffer))
        : Array.from(value);
    const trace = chart.data && chart.data[0];
    if (!trace || !trace.marker || !trace.marker.color) return null;  // drawn, but not with its rates yet
    const rates = decode(trace.marker.color);
    const hottest = rates.indexOf(Math.max(...rates));
    return {index: hottest, cell: trace.customdata[hottest][0]};
}
"""


def test_hottest_cell_to_failed_po_to_its_waterfall(integration_dashboard: str, page: Page) -> None:  # noqa: F811
    page.goto(f"{integration_dashboard}/Integration_health")
    wait_for_render(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".main-svg").first.wait_for(timeout=30_000)
    hottest = None
    for _ in range(150):  # a rerun can redraw the chart after the first render: up to 30 s for its rates
        hottest = chart.locator(".js-plotly-plot").evaluate(HOTTEST_POINT)
        if hottest is not None:
            break
        page.wait_for_timeout(200)
    assert hottest is not None, "the heatmap never showed its failure rates"
    assert hottest["cell"] == "NORTH-GENERAL|po_transmission"
    box = chart.locator("g.points path.point").nth(hottest["index"]).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Latest failures in NORTH-GENERAL · po_transmission").wait_for(timeout=30_000)
    assert "cell=NORTH-GENERAL%7Cpo_transmission" in page.url or "cell=NORTH-GENERAL|po_transmission" in page.url

    page.get_by_role("link", name="PO PO-77 · erp-integration · 429").click()
    page.get_by_text("Failing span: erp-integration · POST /api/v1/purchase-orders — 429").wait_for(timeout=30_000)
    wait_for_render(page)
    assert "po=PO-77" in page.url
    waterfall = page.locator('[data-testid="stPlotlyChart"]').first
    waterfall.locator(".main-svg").first.wait_for(timeout=30_000)
    ticks = waterfall.locator(".ytick text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert [tick.strip() for tick in ticks if "✖" in tick] == ["✖ erp-integration · POST /api/v1/purchase-orders"], ticks
    bar_colours = waterfall.locator("g.point path").evaluate_all("bars => bars.map(b => b.style.fill)")
    assert bar_colours.count("rgb(214, 39, 40)") == 1, bar_colours
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trace_waterfall.png"), full_page=True)
