"""The r2p command line: summary lines, refresh and rebuild, and one clear line with exit 2 for each user error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from r2p.cli import main
from samples import land_records, sample_records
from test_storage import HOLDER

REPO = Path(__file__).resolve().parents[1]


def r2p(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "r2p", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r2p: error: "), result.stderr
    assert expected in lines[0]


def test_refresh_loads_new_batches_then_reports_up_to_date(landed_sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(landed_sample), "refresh"]) == 0
    assert "loaded 1 batch(es): 12 spans, 12 transaction_events" in capsys.readouterr().out
    assert main(["--data-dir", str(landed_sample), "refresh"]) == 0
    assert capsys.readouterr().out.strip() == "warehouse up to date: no new batches"


def test_rebuild_reloads_everything(landed_sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--data-dir", str(landed_sample), "refresh"])
    capsys.readouterr()
    assert main(["--data-dir", str(landed_sample), "rebuild"]) == 0
    assert "loaded 1 batch(es)" in capsys.readouterr().out


def test_data_dir_from_the_environment(landed_sample: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("R2P_DATA_DIR", str(landed_sample))
    assert main(["refresh"]) == 0
    assert "loaded 1 batch(es)" in capsys.readouterr().out


def test_refresh_and_rebuild_while_the_dashboard_holds_the_warehouse(data_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "holding"
        land_records(data_dir, sample_records())
        refreshed = r2p("--data-dir", str(data_dir), "refresh")
        assert refreshed.returncode == 0
        assert refreshed.stdout.strip() == (
            f"warehouse held by process {holder.pid}: it loads new batches by itself within a few seconds"
        )
        assert_one_line_error(r2p("--data-dir", str(data_dir), "rebuild"), f"held by process {holder.pid}: stop the dashboard")
    finally:
        holder.kill()
        holder.wait()


def test_missing_input_file(tmp_path: Path) -> None:
    assert_one_line_error(r2p("--data-dir", str(tmp_path), "ingest", "traces", str(tmp_path / "nope.jsonl")), "no input file at")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert_one_line_error(r2p("--data-dir", str(not_a_dir), "refresh"), "is a file")


def test_unknown_command_and_option(tmp_path: Path) -> None:
    assert_one_line_error(r2p("--data-dir", str(tmp_path), "frobnicate"), "No such command 'frobnicate'")
    assert_one_line_error(r2p("refresh", "--bogus"), "No such option '--bogus'")
