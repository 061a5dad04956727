"""A real browser on the triage page: select two groups, acknowledge them in bulk, reload, see the state and history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import Page

from samples import land_records
from test_browser import ARTIFACTS, dashboard, page, wait_for_render  # noqa: F401 (fixtures)
from test_triage import DEADLOCK, T0, deadlock_span, receipt_failure, stat_requisition


@pytest.fixture
def landed_sample(data_dir: Path) -> Path:
    """Overrides conftest's sample for `dashboard`: two exception groups, the stat deadlock one first."""
    land_records(data_dir, {
        "spans": [deadlock_span(n, T0 + dt.timedelta(hours=n)) for n in range(2)],
        "transaction_events": [stat_requisition(), *(receipt_failure(n, T0 + dt.timedelta(minutes=n)) for n in range(3))],
    })
    return data_dir


def test_bulk_acknowledge_two_groups_then_reload(dashboard: str, page: Page) -> None:
    page.goto(f"{dashboard}/Triage")
    wait_for_render(page)
    page.get_by_label("Your name, for the triage history").fill("playwright")
    page.keyboard.press("Enter")
    wait_for_render(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    box = grid.bounding_box()
    for row in range(2):  # the row markers (selection checkboxes) sit in the grid's first column
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
        wait_for_render(page)
    page.get_by_text("Decide on the 2 selected group(s)").wait_for()
    page.get_by_role("button", name="Apply to 2 groups").click()
    wait_for_render(page)
    page.get_by_text(f"{DEADLOCK}: acknowledge").wait_for()  # Markdown shows -> as an arrow
    page.goto(f"{dashboard}/Triage?group={DEADLOCK}")
    wait_for_render(page)
    detail = page.locator('[data-testid="stMain"]')
    detail.get_by_text("Status acknowledged").wait_for()
    detail.get_by_text("Last decision: acknowledge by playwright at").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "triage.png"), full_page=True)
