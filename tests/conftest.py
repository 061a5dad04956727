"""Shared fixtures: a data directory and a small landed sample built from canonical records."""

from __future__ import annotations

from pathlib import Path

import pytest

from samples import land_records, sample_records


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def landed_sample(data_dir: Path) -> Path:
    land_records(data_dir, sample_records())
    return data_dir
