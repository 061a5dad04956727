"""The simulated health system end to end: through the real collectors into the warehouse, onto every page."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted(str(path.relative_to(REPO)) for path in (REPO / "pages").glob("*.py"))


def test_only_the_deliberately_broken_records_are_rejected(simulated: tuple[Path, dict]) -> None:
    data_dir, manifest = simulated
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    rejected = con.execute("SELECT count(*) FROM rejects").fetchone()[0]
    assert rejected == len(manifest["broken_records"]) > 0
    counts = dict(con.execute("SELECT 'events', count(*) FROM transaction_events UNION ALL SELECT 'spans', count(*) FROM spans").fetchall())
    con.close()
    assert counts["events"] > 1000 and counts["spans"] > 1000


@pytest.mark.parametrize("script", ["app.py", *PAGES])
def test_every_page_renders_the_simulated_system_without_an_exception(
    simulated: tuple[Path, dict], script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("R2P_DATA_DIR", str(simulated[0]))
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    if script != "app.py":  # pages are reached from the home page, so their links resolve as in a browser
        app.switch_page(script).run()
        assert not app.exception, app.exception[0].message if app.exception else ""
