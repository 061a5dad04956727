"""A real browser (Debian's Chromium driven by Playwright) against the dashboard served by `r2p serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(data_dir: Path) -> Iterator[str]:
    """`r2p serve` on a free port over a data directory; yields its base URL once healthy."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "r2p", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dashboard did not start:\n{server.stdout.read()}") from None
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def dashboard(landed_sample: Path) -> Iterator[str]:
    """The dashboard over the landed sample."""
    with served(landed_sample) as base:
        yield base


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def wait_for_render(page: Page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def test_overview_draws_its_charts_without_an_exception(dashboard: str, page: Page) -> None:
    page.goto(f"{dashboard}/?facility=NORTH-GENERAL&facility=SOUTH-COMMUNITY")
    wait_for_render(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=30_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 2
    bars = page.locator('[data-testid="stPlotlyChart"]').first.locator("g.point")
    assert bars.count() > 0, "the by-stage chart drew no bars"
    assert page.locator('[data-testid="stException"]').count() == 0
    first_metric = [line for line in page.locator('[data-testid="stMetric"]').first.inner_text().splitlines() if line]
    assert first_metric == ["Business events", "8"], "two facilities of the sample hold 8 events"
    assert "facility=NORTH-GENERAL" in page.url
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)


def test_stopping_r2p_serve_stops_the_dashboard(landed_sample: Path) -> None:
    """``r2p serve`` becomes the Streamlit server: terminating it leaves no server answering."""
    with served(landed_sample) as base:
        pass
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
