"""Chromium through the drill-down: executive facility bar -> its cycle times -> a stage -> one requisition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from samples import land_records
from test_browser import ARTIFACTS, page, served, wait_for_render  # noqa: F401 (page is a fixture)
from test_cycle_times import procurement_log


@pytest.fixture
def procurement_dashboard(data_dir: Path) -> Iterator[str]:
    """`r2p serve` over the hand-made procurement log; yields its base URL once healthy."""
    land_records(data_dir, procurement_log(), name="procurement-log")
    with served(data_dir) as base:
        yield base


def click_bar(page: Page, bar) -> None:
    """Click the middle of a Plotly bar: Plotly's drag layer lies over it and takes the real mouse click."""
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_facility_bar_to_cycle_times_to_one_requisition(procurement_dashboard: str, page: Page) -> None:  # noqa: F811
    page.goto(f"{procurement_dashboard}/Executive")
    wait_for_render(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(1).locator("g.point path").first.wait_for(timeout=30_000)
    # The facility chart's only bar: NORTH-GENERAL (the other facilities have no PO yet).
    click_bar(page, charts.nth(1).locator("g.point path").first)
    page.wait_for_url("**/Cycle_times?**", timeout=30_000)
    wait_for_render(page)
    assert "facility=NORTH-GENERAL" in page.url
    assert page.locator("h1").first.inner_text() == "Cycle times"
    stages = page.locator('[data-testid="stPlotlyChart"]').first
    stages.locator("g.point path").nth(1).wait_for(timeout=30_000)
    click_bar(page, stages.locator("g.point path").nth(1))  # approval, the second stage
    page.get_by_text("Slowest in approval").wait_for(timeout=30_000)
    assert "focus=approval" in page.url
    page.get_by_role("link", name="Open REQ-B").click()  # returned and re-approved: 4 h 1 min in approval
    page.wait_for_url("**/Requisition?requisition=REQ-B**", timeout=30_000)
    wait_for_render(page)
    page.get_by_text("Spans of its traces").wait_for(timeout=30_000)
    assert page.locator("h3").filter(has_text="REQ-B").count() == 1
    status = [line for line in page.locator('[data-testid="stMetric"]').first.inner_text().splitlines() if line]
    assert status == ["Status", "paid"]
    assert page.get_by_text("known from spans only: receipt").count() == 1
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 3
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "requisition.png"), full_page=True)
