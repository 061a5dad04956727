"""XES event logs (IEEE 1849) to ``transaction_events`` through the tabular mapping engine.

Each ``<event>`` becomes one row of text columns: its attributes under their keys
(``concept:name``, ``time:timestamp``, ``org:resource`` ...) and its trace's attributes prefixed
``case:`` (``case:concept:name`` is the case id), as pm4py names them. Nested attributes (lists,
containers) are skipped. Read with ``iterparse``, so a large log is not held as a tree.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from collectors import tabular
from collectors.mapping import Mapping
from r2p.errors import UserError
from r2p.landing import BatchWriter

SCALARS = {"string", "date", "int", "float", "boolean", "id"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def flatten(path: Path):
    """The log's events as an Arrow table of text columns, with ``__row`` the event's position."""
    import pyarrow as pa

    rows: list[dict[str, str]] = []
    trace: dict[str, str] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    depth_in_event = 0
    event: dict[str, str] | None = None
    try:
        with opener(path, "rb") as handle:
            for action, element in ElementTree.iterparse(handle, events=("start", "end")):
                tag = _local(element.tag)
                if action == "start":
                    if tag == "trace":
                        trace = {}
                    elif tag == "event":
                        event, depth_in_event = {}, 0
                    elif tag in SCALARS or tag in ("list", "container"):
                        depth_in_event += 1
                    continue
                if tag in SCALARS or tag in ("list", "container"):
                    depth_in_event -= 1
                    if tag in SCALARS and depth_in_event == 0 and element.get("key") is not None:
                        if event is not None:
                            event[element.get("key")] = element.get("value")
                        elif trace is not None:
                            trace["case:" + element.get("key")] = element.get("value")
                elif tag == "event" and event is not None:
                    rows.append({**trace, **event})
                    event = None
                    element.clear()
                elif tag == "trace":
                    trace = {}
                    element.clear()
    except ElementTree.ParseError as error:
        raise UserError(f"{path} is not a readable XES log: {error}") from None
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = {tabular.ROW: pa.array(range(1, len(rows) + 1), pa.int64())}
    columns.update({name: pa.array([row.get(name) for row in rows], pa.string()) for name in names})
    return pa.table(columns)


def collect(path: Path, writer: BatchWriter, mapping: Mapping) -> None:
    """Land one XES log through the mapping."""
    tabular.collect_arrow(flatten(path), str(path), writer, mapping)
