"""OCEL 2.0 object-centric event logs (JSON, XML, SQLite encodings) to ``transaction_events``.

Each encoding is read into the same four relations of the standard (events with their
attributes, event-to-object links, object types, object-to-object links); the events are then
flattened into one text table and go through the tabular mapping engine, so stages, outcomes
and object types are configured in the mapping file like any other source.

Flattened columns: ``ocel:eid``, ``ocel:activity``, ``ocel:timestamp``, ``ocel:oid`` and
``ocel:type`` (the event's object: its related object of the latest type in the mapping's
``[ocel] object_types`` flow order, or the type ``[ocel] event_objects`` names for its event type), one ``ocel:<type>`` column per configured type holding the
correlated object, ``ocel:objects`` (every related object by type, JSON) and one column per
event attribute. Correlation follows object-to-object links from the event's own objects
towards EARLIER types only (an invoice reaches its goods receipt, PO and requisition; a PO
creation does not pick up a receipt that happens later). Where several objects of a type are
equally near, the smallest id is the column and ``ocel:objects`` lists them all.
"""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from collectors import tabular
from collectors.mapping import Mapping
from r2p.errors import UserError
from r2p.landing import BatchWriter


@dataclass
class Log:
    """The parts of an OCEL 2.0 log this collector uses, whatever the encoding."""

    events: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    """(id, type, time as written, attributes)."""
    event_objects: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    object_types: dict[str, str] = field(default_factory=dict)
    links: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Object-to-object links, both directions."""

    def link(self, source: str, target: str) -> None:
        self.links[source].add(target)
        self.links[target].add(source)


def _text(value) -> str:
    return "" if value is None else str(value)


def read_json(path: Path) -> Log:
    """The OCEL 2.0 JSON encoding."""
    data = json.loads(path.read_text(encoding="utf-8"))
    log = Log()
    for obj in data.get("objects", []):
        log.object_types[obj["id"]] = obj["type"]
        for relation in obj.get("relationships") or []:
            log.link(obj["id"], relation["objectId"])
    for event in data.get("events", []):
        attributes = {a["name"]: _text(a.get("value")) for a in event.get("attributes") or []}
        log.events.append((event["id"], event["type"], event["time"], attributes))
        log.event_objects[event["id"]] = [r["objectId"] for r in event.get("relationships") or []]
    return log


def read_xml(path: Path) -> Log:
    """The OCEL 2.0 XML encoding (``<log>`` with ``<objects>`` and ``<events>``)."""
    root = ElementTree.parse(path).getroot()
    log = Log()
    for obj in root.iterfind("objects/object"):
        log.object_types[obj.get("id")] = obj.get("type")
        for relation in obj.iterfind("objects/relationship"):
            log.link(obj.get("id"), relation.get("object-id"))
    for event in root.iterfind("events/event"):
        attributes = {a.get("name"): _text(a.text) for a in event.iterfind("attributes/attribute")}
        log.events.append((event.get("id"), event.get("type"), event.get("time"), attributes))
        log.event_objects[event.get("id")] = [r.get("object-id") for r in event.iterfind("objects/relationship")]
    return log


def read_sqlite(path: Path) -> Log:
    """The OCEL 2.0 SQLite encoding (``event``, ``event_<Type>``, ``event_object``, ``object``, ``object_object``)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        log = Log()
        log.object_types = dict(con.execute("SELECT ocel_id, ocel_type FROM object"))
        for source, target in con.execute("SELECT ocel_source_id, ocel_target_id FROM object_object"):
            log.link(source, target)
        for event_id, object_id in con.execute("SELECT ocel_event_id, ocel_object_id FROM event_object ORDER BY rowid"):
            log.event_objects[event_id].append(object_id)
        details: dict[str, tuple[str, dict[str, str]]] = {}
        for type_name, table_suffix in con.execute("SELECT ocel_type, ocel_type_map FROM event_map_type"):
            cursor = con.execute(f'SELECT * FROM "event_{table_suffix}"')
            names = [column[0] for column in cursor.description]
            for row in cursor:
                values = dict(zip(names, row))
                event_id, time = _text(values.pop("ocel_id")), _text(values.pop("ocel_time"))
                details[event_id] = (time, {k: _text(v) for k, v in values.items()})
        for event_id, event_type in con.execute("SELECT ocel_id, ocel_type FROM event ORDER BY rowid"):
            time, attributes = details.get(event_id, ("", {}))
            log.events.append((event_id, event_type, time, attributes))
        return log
    except sqlite3.DatabaseError as error:
        raise UserError(f"{path} is not an OCEL 2.0 SQLite log: {error}") from None
    finally:
        con.close()


def read(path: Path) -> Log:
    """Read an OCEL 2.0 log in the encoding its content shows (JSON, XML or SQLite)."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"SQLite format 3"):
        return read_sqlite(path)
    start = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if start.startswith(b"{"):
        return read_json(path)
    if start.startswith(b"<"):
        return read_xml(path)
    raise UserError(f"{path} is not an OCEL 2.0 log (JSON, XML or SQLite)")


def flatten(log: Log, flow: list[str], event_objects: dict[str, str] | None = None):
    """One row of text columns per event (see the module docstring), as an Arrow table.

    ``event_objects`` names, per event type, the object type of the event's object where the
    latest related type is not it (an OCEL "Create Purchase Order" may also relate an invoice).
    """
    import pyarrow as pa

    rank = {object_type: position for position, object_type in enumerate(flow)}
    event_objects = event_objects or {}
    attribute_names = sorted({name for *_, attributes in log.events for name in attributes})
    upstream = _Upstream(log, rank)
    columns: dict[str, list] = defaultdict(list)
    for ordinal, (event_id, event_type, time, attributes) in enumerate(log.events, start=1):
        related = log.event_objects.get(event_id, [])
        ranked = [o for o in related if log.object_types.get(o) in rank]
        wanted = [o for o in related if log.object_types.get(o) == event_objects.get(event_type)]
        if wanted:
            primary = min(wanted)
        elif ranked:
            primary = max(ranked, key=lambda o: (rank[log.object_types[o]], o))
        else:
            primary = related[0] if related else None
        correlated = upstream.of(ranked)
        by_type: dict[str, list[str]] = defaultdict(list)
        for obj in related:
            by_type[log.object_types.get(obj, "")].append(obj)
        columns[tabular.ROW].append(ordinal)
        columns["ocel:eid"].append(event_id)
        columns["ocel:activity"].append(event_type)
        columns["ocel:timestamp"].append(time)
        columns["ocel:oid"].append(primary)
        columns["ocel:type"].append(log.object_types.get(primary) if primary else None)
        for object_type in flow:
            found = correlated.get(object_type)
            columns[f"ocel:{object_type}"].append(min(found) if found else None)
        columns["ocel:objects"].append(json.dumps({k: sorted(v) for k, v in sorted(by_type.items())}))
        for name in attribute_names:
            columns[name].append(attributes.get(name))
    names = [tabular.ROW, "ocel:eid", "ocel:activity", "ocel:timestamp", "ocel:oid", "ocel:type",
             *[f"ocel:{t}" for t in flow], "ocel:objects", *attribute_names]
    return pa.table({name: pa.array(columns[name], pa.int64() if name == tabular.ROW else pa.string()) for name in names})


class _Upstream:
    """Nearest objects of each configured type reached from objects through links to earlier types.

    A breadth-first walk per object, remembered: events share objects, so each walk runs once.
    """

    def __init__(self, log: Log, rank: dict[str, int]):
        self.log, self.rank = log, rank
        self.walks: dict[str, dict[str, tuple[int, set[str]]]] = {}

    def _walk(self, start: str) -> dict[str, tuple[int, set[str]]]:
        if start in self.walks:
            return self.walks[start]
        log, rank = self.log, self.rank
        found: dict[str, tuple[int, set[str]]] = {}
        frontier, seen, distance = [start], {start}, 0
        while frontier:
            for obj in frontier:
                object_type = log.object_types[obj]
                if found.setdefault(object_type, (distance, set()))[0] == distance:
                    found[object_type][1].add(obj)
            following = []
            for obj in frontier:
                own = rank[log.object_types[obj]]
                for neighbour in log.links.get(obj, ()):
                    neighbour_type = log.object_types.get(neighbour)
                    if neighbour not in seen and neighbour_type in rank and rank[neighbour_type] < own:
                        seen.add(neighbour)
                        following.append(neighbour)
            frontier, distance = following, distance + 1
        self.walks[start] = found
        return found

    def of(self, objects: list[str]) -> dict[str, set[str]]:
        """For each type, the objects at the smallest distance from any of ``objects``."""
        best: dict[str, tuple[int, set[str]]] = {}
        for obj in objects:
            for object_type, (distance, found) in self._walk(obj).items():
                current = best.get(object_type)
                if current is None or distance < current[0]:
                    best[object_type] = (distance, set(found))
                elif distance == current[0]:
                    current[1].update(found)
        return {object_type: found for object_type, (_, found) in best.items()}


def collect(path: Path, writer: BatchWriter, mapping: Mapping) -> None:
    """Land one OCEL 2.0 log through the mapping."""
    assert mapping.ocel is not None  # the mapping model requires [ocel] for format = "ocel"
    log = read(path)
    writer.notes["ocel_events"] = len(log.events)
    writer.notes["ocel_objects"] = len(log.object_types)
    table = flatten(log, mapping.ocel.object_types, mapping.ocel.event_objects)
    tabular.collect_arrow(table, str(path), writer, mapping)
