"""Running a collector over files: path expansion, one landing batch per file, the run summary."""

from __future__ import annotations

import glob
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import click

from r2p.errors import UserError
from r2p.landing import BatchWriter, LandingZone, file_digest

CollectFile = Callable[[Path, BatchWriter], None]
"""Parses one file into the writer: ``writer.add(table, rows)`` and ``writer.reject(...)``."""


@dataclass
class IngestSummary:
    """What one run did: the summary line of every ingest command."""

    files: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    already_present: int = 0

    def line(self) -> str:
        accepted = ", ".join(f"{count:,} {table}" for table, count in sorted(self.accepted.items())) or "0 records"
        return (
            f"{self.files} file(s): accepted {accepted}; rejected {self.rejected:,}; "
            f"{self.already_present} batch(es) already present"
        )


def expand(patterns: Iterable[str]) -> list[Path]:
    """Files named by paths, folders (every file below, recursively) and globs, sorted, each once.

    A name that matches nothing is a user error: a typo must not pass as an empty input.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"no input file at {pattern}")
        found.update(dict.fromkeys(matches))
    return list(found)


def ingest_files(
    source: str,
    paths: list[Path],
    zone: LandingZone,
    collect: CollectFile,
    salt: Callable[[Path], bytes] = lambda path: b"",
) -> IngestSummary:
    """Land each file as one batch named by its content hash (and ``salt(path)``, for collectors whose
    reading depends on configuration); a file landed before is skipped.

    A progress bar on stderr, weighted by file size, shows how far a long run has come.
    """
    summary = IngestSummary()
    sizes = [path.stat().st_size for path in paths]
    with click.progressbar(length=sum(sizes), label=f"ingest {source}", file=sys.stderr) as progress:
        for path, size in zip(paths, sizes):
            summary.files += 1
            digest = file_digest(source, path, salt(path))
            with zone.batch(source, str(path), digest.batch_id) as writer:
                if writer is None:
                    summary.already_present += 1
                else:
                    writer.input_ascii = digest.ascii
                    collect(path, writer)
                    summary.accepted.update(writer.counts)
                    summary.rejected += writer.rejected
            progress.update(size)
    return summary
