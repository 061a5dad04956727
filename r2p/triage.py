"""The triage write path: decisions on exception groups, landed as ``triage_events``; ``r2p triage``.

A decision is a ``schema.TriageEvent`` landed like any other data (source ``triage``), so the
history survives ``r2p rebuild``; the warehouse replays the events into fct_triage_history and
fct_exception_groups. Nothing here opens the warehouse to write.

Concurrency: a decision carries the version its author saw (``based_on_event_id``: the group's
latest decision then; ``status_before``: its status then) and is validated against that view. Its
id, which is also its batch id, is a hash of its content without its time, so a double submit (the
same decision on the same version) lands once. Two people deciding on the same version both land:
the later ``changed_at`` wins (last write wins), the history shows both, and the later one is
flagged ``concurrent``; ``record`` tells its author which decision came in between.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path

import click
import duckdb

from r2p import schema
from r2p.cli import pass_context, refresh_or_defer
from r2p.errors import UserError
from r2p.landing import LandingZone, content_hash

SOURCE = "triage"

STATUSES: tuple[str, ...] = ("new", "acknowledged", "resolved", "ignored", "regressed")

STATUS_AFTER: dict[str, str | None] = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "ignore": "ignored",
    "reopen": "new",
    "assign": None,
    "note": None,
}
"""Each action and the status it sets (None: the status stays)."""

ALLOWED_FROM: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"new", "regressed", "ignored"}),
    "resolve": frozenset({"new", "acknowledged", "regressed", "ignored"}),
    "ignore": frozenset({"new", "acknowledged", "regressed"}),
    "reopen": frozenset({"resolved", "ignored"}),
    "assign": frozenset(STATUSES),
    "note": frozenset(STATUSES),
}
"""The statuses each action may start from."""


@dataclass(frozen=True)
class Seen:
    """The version of a group a decision is made on: its status and latest decision id then."""

    fingerprint: str
    status: str
    last_event_id: str | None


@dataclass(frozen=True)
class Recorded:
    """What ``record`` did: the event, whether it landed now (False: already landed, a double
    submit), and the decision that came in between when the author's view was stale."""

    event: schema.TriageEvent
    landed: bool
    overtaken_by: schema.TriageEvent | None = None

    def line(self) -> str:
        event = self.event
        text = f"{event.fingerprint}: {event.action}"
        text += f" -> {event.status_after}" if event.status_after else ""
        if not self.landed:
            return text + " (already recorded: nothing changed)"
        if self.overtaken_by is not None:
            other = self.overtaken_by
            text += (f" (applied after {other.changed_by}'s {other.action} at {other.changed_at:%Y-%m-%d %H:%M} UTC,"
                     " which you had not seen: last write wins, both are in the history)")
        return text


def decide(
    seen: Seen,
    action: str,
    changed_by: str,
    *,
    assignee: str | None = None,
    note: str | None = None,
    ignore_until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> schema.TriageEvent:
    """A validated decision on the version ``seen``; raises UserError for an impossible one."""
    if action not in STATUS_AFTER:
        raise UserError(f"unknown triage action {action!r}; known: {', '.join(STATUS_AFTER)}")
    if seen.status not in ALLOWED_FROM[action]:
        raise UserError(f"{seen.fingerprint} is {seen.status}: cannot {action} it")
    changed_by = (changed_by or "").strip()
    if not changed_by:
        raise UserError("a triage decision needs the name of who makes it")
    if action == "assign" and assignee is None:
        raise UserError("assign needs an assignee (an empty name unassigns)")
    if action == "note" and not (note or "").strip():
        raise UserError("a note needs text")
    if ignore_until is not None and action != "ignore":
        raise UserError("only ignore takes an end time")
    fields = {
        "fingerprint": seen.fingerprint,
        "changed_by": changed_by,
        "action": action,
        "status_before": seen.status,
        "status_after": STATUS_AFTER[action],
        "assignee": assignee.strip() if action == "assign" else None,
        "note": note.strip() if note and note.strip() else None,
        "ignore_until": ignore_until.astimezone(dt.timezone.utc) if ignore_until else None,
        "based_on_event_id": seen.last_event_id,
    }
    identity = json.dumps({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in fields.items()},
                          sort_keys=True)
    return schema.TriageEvent(
        triage_event_id=content_hash(SOURCE, [identity.encode()]),
        changed_at=now or dt.datetime.now(dt.timezone.utc),
        **fields,
    )


def landed_events(zone: LandingZone, fingerprints: list[str] | None = None) -> list[schema.TriageEvent]:
    """Every committed triage decision in the landing zone (of ``fingerprints`` when given), in replay order."""
    files = sorted((zone.root / schema.TriageEvent.table).rglob("*.parquet"))
    committed = set(zone.committed_ids())
    files = [path for path in files if path.name.split("-", 1)[0] in committed]
    if not files:
        return []
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        names = schema.column_names(schema.TriageEvent)
        rows = con.execute(
            f"SELECT {', '.join(names)} FROM read_parquet($files, hive_partitioning = false) "
            "WHERE $all OR fingerprint IN (SELECT unnest($fingerprints)) ORDER BY fingerprint, changed_at, triage_event_id",
            {"files": [str(path) for path in files], "all": fingerprints is None, "fingerprints": fingerprints or []},
        ).fetchall()
    finally:
        con.close()
    return [schema.TriageEvent(**dict(zip(names, row))) for row in rows]


def record(zone: LandingZone, event: schema.TriageEvent) -> Recorded:
    """Land one decision; report a double submit, or the decision the author had not seen."""
    latest = next(reversed(landed_events(zone, [event.fingerprint])), None)
    with zone.batch(SOURCE, f"triage {event.action} {event.fingerprint}", event.triage_event_id) as writer:
        if writer is None:
            return Recorded(event, landed=False)
        writer.add(schema.TriageEvent.table, [event])
    overtaken = latest if latest is not None and latest.triage_event_id != event.based_on_event_id else None
    return Recorded(event, landed=True, overtaken_by=overtaken)


def replayed_status(events: list[schema.TriageEvent]) -> dict[str, Seen]:
    """Each group's recorded status and latest decision from its decisions alone (no occurrences:
    a regression is the warehouse's to see). ``events`` in replay order, as ``landed_events`` gives them."""
    state: dict[str, Seen] = {}
    for event in events:
        before = state.get(event.fingerprint)
        status = event.status_after or (before.status if before else "new")
        state[event.fingerprint] = Seen(event.fingerprint, status, event.triage_event_id)
    return state


# The command line.


def _default_user() -> str:
    return os.environ.get("R2P_USER") or getpass.getuser()


def _current(data_dir: Path, fingerprints: list[str]) -> tuple[dict[str, Seen], str | None]:
    """The groups' current versions: from the warehouse when it is free (loading new batches
    first), else replayed from the landing zone; with a note saying which when it is the latter."""
    from r2p.warehouse import WarehouseBusy, refresh_now

    zone = LandingZone(data_dir)
    try:
        refresh_now(data_dir)
    except WarehouseBusy as busy:
        known = replayed_status(landed_events(zone, fingerprints))
        seen = {fp: known.get(fp, Seen(fp, "new", None)) for fp in fingerprints}
        return seen, (f"warehouse held by {busy.holder}: status from landed decisions only "
                      "(a regression shows once the dashboard loads)")
    from r2p.warehouse import connect

    con = connect(Path(data_dir) / "warehouse.duckdb", read_only=True)
    try:
        rows = con.execute(
            "SELECT fingerprint, status, last_event_id FROM fct_exception_groups WHERE fingerprint IN (SELECT unnest($f))",
            {"f": fingerprints},
        ).fetchall()
    finally:
        con.close()
    found = {row[0]: Seen(*row) for row in rows}
    missing = [fp for fp in fingerprints if fp not in found]
    if missing:
        raise UserError(f"no exception group {', '.join(missing)} (see: r2p triage list)")
    return found, None


def _decide_all(context, fingerprints: tuple[str, ...], action: str, by: str | None, **fields) -> None:
    if not fingerprints:
        raise UserError("name at least one exception group fingerprint (see: r2p triage list)")
    seen, caveat = _current(context.data_dir, list(dict.fromkeys(fingerprints)))
    if caveat:
        click.echo(caveat)
    events = [decide(seen[fp], action, by or _default_user(), **fields) for fp in seen]
    zone = context.landing()
    for event in events:
        click.echo(record(zone, event).line())
    refresh_or_defer(context)


by_option = click.option("--by", help="Who decides (default: $R2P_USER, else the login name).")
note_option = click.option("--note", help="A note to keep with the decision.")
fingerprints_argument = click.argument("fingerprints", nargs=-1)


@click.group()
def triage() -> None:
    """Work the exception queue: list groups, acknowledge, resolve, ignore, assign, note."""


@triage.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only groups in this status (repeatable; default: every open one).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@pass_context
def list_groups(context, statuses: tuple[str, ...], limit: int) -> None:
    """The queue ranked by clinical risk, with each group's reasons."""
    from metrics import triage as queries
    from metrics.filters import Filters
    from r2p.warehouse import WarehouseBusy, connect, refresh_now

    try:
        refresh_now(context.data_dir)
    except WarehouseBusy as busy:
        state = replayed_status(landed_events(context.landing()))
        click.echo(f"warehouse held by {busy.holder}: the dashboard shows the queue; landed decisions say:")
        for seen in state.values():
            if not statuses or seen.status in statuses:
                click.echo(f"{seen.fingerprint}  {seen.status}")
        return
    con = connect(Path(context.data_dir) / "warehouse.duckdb", read_only=True)
    try:
        frame = queries.queue(con, Filters(), statuses=statuses or queries.OPEN_STATUSES).head(limit)
    finally:
        con.close()
    if frame.empty:
        click.echo("no exception group" + (f" in status {', '.join(statuses)}" if statuses else " open"))
        return
    for row in frame.itertuples():
        click.echo(f"{row.fingerprint}  {row.status:<12} risk {row.risk:5.1f}  {row.occurrences:>6} x  "
                   f"{row.system} / {row.stage or '-'} / {row.error_type}: {row.masked_message}"
                   + (f"  [{row.assignee}]" if row.assignee else ""))
        click.echo(f"{'':18}{row.risk_reasons}")


@triage.command("ack")
@fingerprints_argument
@by_option
@note_option
@pass_context
def acknowledge(context, fingerprints: tuple[str, ...], by: str | None, note: str | None) -> None:
    """Acknowledge groups: someone is on it."""
    _decide_all(context, fingerprints, "acknowledge", by, note=note)


@triage.command()
@fingerprints_argument
@by_option
@note_option
@pass_context
def resolve(context, fingerprints: tuple[str, ...], by: str | None, note: str | None) -> None:
    """Resolve groups; one that occurs again reopens as regressed."""
    _decide_all(context, fingerprints, "resolve", by, note=note)


@triage.command()
@fingerprints_argument
@click.option("--until", "until", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
              help="Ignore until this UTC time (default: until the group escalates).")
@by_option
@note_option
@pass_context
def ignore(context, fingerprints: tuple[str, ...], until: dt.datetime | None, by: str | None, note: str | None) -> None:
    """Ignore groups until a time, or until they escalate."""
    until = until.replace(tzinfo=dt.timezone.utc) if until else None
    _decide_all(context, fingerprints, "ignore", by, note=note, ignore_until=until)


@triage.command()
@fingerprints_argument
@click.option("--to", "assignee", required=True, help="Assignee (an empty name unassigns).")
@by_option
@pass_context
def assign(context, fingerprints: tuple[str, ...], assignee: str, by: str | None) -> None:
    """Assign groups to someone."""
    _decide_all(context, fingerprints, "assign", by, assignee=assignee)


@triage.command()
@click.argument("fingerprint")
@click.argument("text")
@by_option
@pass_context
def note(context, fingerprint: str, text: str, by: str | None) -> None:
    """Add a note to a group."""
    _decide_all(context, (fingerprint,), "note", by, note=text)


COMMANDS = [triage]
