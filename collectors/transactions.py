"""The transaction-log collector: ERP, procurement, warehouse and AP exports, event logs and X12 EDI.

``r2p ingest transactions --mapping FILE PATH...`` lands each file as one batch of
``transaction_events`` (and ``rejects``). The mapping file (``examples/mappings/README.md``) says
how a source's columns become canonical ones; its ``source.format`` picks the reader:

* csv, tsv, jsonl, parquet (gzip by ``.gz``): ``collectors.tabular``, one DuckDB query;
* ocel (OCEL 2.0 JSON, XML or SQLite): ``collectors.ocel``; xes: ``collectors.xes``; both flatten
  their events and go through the same tabular mapping;
* X12 EDI is recognised by its content (a file starting with ``ISA``) and needs no mapping
  (``collectors.x12``); a mapping with ``format = "x12"`` sets its system name and time zone.

A batch's id hashes the mapping with the file, so a file re-ingested with a corrected mapping
lands again (event ids do not depend on the batch, so the warehouse still keeps each event once).
"""

from __future__ import annotations

from pathlib import Path

import click

from collectors import tabular, x12
from collectors.files import IngestSummary, expand, ingest_files
from collectors.mapping import TABULAR_FORMATS, Mapping, load
from r2p.cli import pass_context, report_ingest
from r2p.errors import UserError
from r2p.landing import BatchWriter, LandingZone

SOURCE = "transactions"


def collect_file(path: Path, writer: BatchWriter, mapping: Mapping | None) -> None:
    """Land one file with its mapping (None: X12 with the default system name ``edi``)."""
    fmt = mapping.source.format if mapping else "x12"
    if fmt == "x12":
        x12.collect(path, writer, system=(mapping.system if mapping else "") or "edi",
                    timezone=mapping.source.timezone if mapping else "UTC")
    elif fmt in TABULAR_FORMATS:
        tabular.collect(path, writer, mapping)
    elif fmt == "ocel":
        from collectors import ocel

        ocel.collect(path, writer, mapping)
    elif fmt == "xes":
        from collectors import xes

        xes.collect(path, writer, mapping)
    else:
        raise UserError(f"unknown format {fmt!r}")


def mapping_for(path: Path, mapping: Mapping | None) -> Mapping | None:
    """The mapping a file is read with: X12 needs none (or an x12 one); anything else needs a tabular one."""
    if x12.looks_like_x12(path):
        return mapping if mapping is not None and mapping.source.format == "x12" else None
    if mapping is None:
        raise UserError(f"{path} is not X12 EDI, so it needs --mapping FILE (see examples/mappings/)")
    if mapping.source.format == "x12":
        raise UserError(f"{path} is not X12 EDI (no ISA header), but the mapping's format is x12")
    return mapping


def ingest(paths: list[Path], zone: LandingZone, mapping: Mapping | None) -> IngestSummary:
    """Land each file as one batch named by the hash of the mapping and the file's bytes.

    Every file's mapping is checked before any lands, so a wrong mapping stops the run at once.
    """
    used = {path: mapping_for(path, mapping) for path in paths}
    return ingest_files(
        SOURCE, paths, zone,
        lambda path, writer: collect_file(path, writer, used[path]),
        salt=lambda path: used[path].fingerprint() if used[path] else b"x12",
    )


@click.command(name=SOURCE)
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Mapping file (TOML) of the source system; required except for X12 EDI. See examples/mappings/.",
)
@click.argument("paths", nargs=-1, required=True)
@pass_context
def ingest_command(context, mapping_path: Path | None, paths: tuple[str, ...]) -> None:
    """Land business events: CSV/TSV/JSON lines/Parquet exports, OCEL 2.0, XES, X12 EDI."""
    mapping = load(mapping_path) if mapping_path else None
    summary = ingest(expand(paths), context.landing(), mapping)
    report_ingest(context, summary)


COMMANDS = [ingest_command]
