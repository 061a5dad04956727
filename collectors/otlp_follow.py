"""``r2p ingest traces --follow``: tail growing, rotating file-exporter output (JSON lines).

Each poll lands the complete lines added since the last landed batch of that path, as one batch
(at most one chunk) whose ``input_offset`` is the byte offset after its last line. On start the
offset is resumed from the newest committed batch of the path (``landing/ingest_batches``), so a
restart neither re-reads nor loses lines. A last line without its newline waits for it. When the
file is smaller than the offset, or its inode changed, it was rotated: the new file is read from
the start (lines appended to the old file after the last poll are not read: poll often enough).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from collectors.files import expand
from collectors.otlp_config import TracesConfig
from collectors.otlp_input import CHUNK_BYTES, json_line_chunks, open_input
from r2p.landing import LandingZone, content_hash


def committed_offset(zone: LandingZone, path: Path) -> int:
    """The input offset of the newest committed traces batch of ``path`` (0 when none)."""
    commits = zone.root / "ingest_batches"
    if not any(commits.glob("*.parquet")):
        return 0
    row = duckdb.sql(
        f"SELECT input_offset FROM read_parquet('{commits}/*.parquet') "
        "WHERE source = 'traces' AND input = $input AND input_offset IS NOT NULL ORDER BY landed_at DESC LIMIT 1",
        params={"input": str(path)},
    ).fetchall()
    return int(row[0][0]) if row else 0


class Follower:
    """Poll state of the followed paths: offset and inode per path."""

    def __init__(self, zone: LandingZone, config: TracesConfig):
        self.zone, self.config = zone, config
        self.offsets: dict[Path, int] = {}
        self.inodes: dict[Path, int] = {}

    def poll(self, path: Path) -> int:
        """Land what is new in ``path``; returns the spans landed."""
        from collectors.traces import SOURCE, land_chunks

        status = path.stat()
        offset = self.offsets[path] if path in self.offsets else committed_offset(self.zone, path)
        if status.st_size < offset or self.inodes.get(path, status.st_ino) != status.st_ino:
            offset = 0  # rotated
        self.inodes[path] = status.st_ino
        with open_input(path) as stream:
            first_line = 1
            if offset:
                first_line += stream.read(offset).count(b"\n")
            chunk = next(json_line_chunks(stream, b"", offset, first_line, CHUNK_BYTES, final=False), None)
        self.offsets[path] = offset
        if chunk is None:
            return 0
        identity = f"{path}\0{offset}\0".encode()
        landed = 0
        with self.zone.batch(SOURCE, str(path), content_hash(SOURCE, [identity, chunk.data])) as writer:
            if writer is not None:
                land_chunks(writer, self.config, [chunk])
                landed = writer.counts.get("spans", 0)
        self.offsets[path] = chunk.end_offset
        return landed


def follow_files(zone: LandingZone, config: TracesConfig, patterns: list[str], interval: float) -> None:
    """Poll the files named by ``patterns`` every ``interval`` seconds until interrupted."""
    import click

    follower = Follower(zone, config)
    click.echo(f"following {', '.join(patterns)} every {interval:g} s (Ctrl-C to stop)")
    try:
        while True:
            for path in expand(patterns):
                if (landed := follower.poll(path)):
                    click.echo(f"{path}: landed {landed:,} spans")
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("stopped")
