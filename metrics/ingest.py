"""What the Ingest page shows: the landed batches and the rejected records, newest first."""

from __future__ import annotations

import duckdb
import pandas as pd


def batches(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pd.DataFrame:
    """Loaded batches: source, input, when landed, rows per table, rejects and time taken."""
    return con.execute(
        """
        SELECT landed_at, source, input, record_counts, rejected, round(seconds, 3) AS seconds, batch_id
        FROM ingest_batches ORDER BY landed_at DESC LIMIT $limit
        """,
        {"limit": limit},
    ).df()


def rejects_by_reason(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """How many records each source rejected, for each reason."""
    return con.execute(
        "SELECT source, reason, count(*) AS records FROM rejects GROUP BY ALL ORDER BY records DESC, source, reason"
    ).df()


def rejects(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pd.DataFrame:
    """The rejected records themselves, with where they came from and why."""
    return con.execute(
        """
        SELECT r.source, r.input, r.line, r.byte_offset, r.field, r.reason, r.raw, b.landed_at
        FROM rejects r JOIN ingest_batches b USING (batch_id)
        ORDER BY b.landed_at DESC, r.reject_index LIMIT $limit
        """,
        {"limit": limit},
    ).df()
