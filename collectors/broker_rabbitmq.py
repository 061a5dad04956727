"""RabbitMQ management API ``GET /api/queues``: one snapshot row per queue.

Field meanings are the management plugin's (see tests/data/broker/SOURCES.md). What the API does
not say stays NULL: ``message_stats`` is absent for a queue without traffic, so its rates are NULL,
not 0; ``head_message_timestamp`` is null unless publishers set a timestamp, so the oldest
message's age is NULL then.

Dead-letter queues are not a field of the API. A queue is marked here when another queue of the
same listing dead-letters into it: its ``x-dead-letter-routing-key`` argument (or policy key
``dead-letter-routing-key``) names it, or its dead-letter exchange has the queue's own name. Those
source queues are listed in its ``dead_letter_sources`` attribute. Name patterns from the flow
configuration are applied later, in ``collectors.broker_landing``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from collectors.broker_common import Candidate, Parsed, Problem, iso, parse_timestamp

QUEUE_COUNTS = {"depth": "messages", "ready": "messages_ready", "unacked": "messages_unacknowledged", "consumers": "consumers"}
"""backlog_snapshots column -> management API field."""

KEPT_FIELDS = ("type", "state", "node", "durable", "auto_delete", "exclusive", "policy", "consumer_utilisation",
               "consumer_capacity", "message_bytes", "head_message_timestamp")
"""Queue fields copied into the attributes column as they are."""

COUNTERS = ("publish", "deliver", "deliver_get", "ack", "redeliver", "get", "get_no_ack", "deliver_no_ack",
            "drop_unroutable")
"""Cumulative ``message_stats`` counters kept in attributes (as ``<name>_total``): the metrics
layer derives rates from them between observations where the broker's own rate is missing."""


def dead_letter_settings(queue: dict[str, Any]) -> tuple[str | None, str | None]:
    """(dead-letter exchange, dead-letter routing key) of a queue, from its arguments or policy."""
    arguments = queue.get("arguments") if isinstance(queue.get("arguments"), dict) else {}
    policy = queue.get("effective_policy_definition")
    policy = policy if isinstance(policy, dict) else {}
    exchange = arguments.get("x-dead-letter-exchange", policy.get("dead-letter-exchange"))
    routing_key = arguments.get("x-dead-letter-routing-key", policy.get("dead-letter-routing-key"))
    return (exchange if isinstance(exchange, str) else None, routing_key if isinstance(routing_key, str) else None)


def parse_queues(queues: Any, observed_at: dt.datetime, line: int | None = None) -> Parsed:
    """Rows for one ``GET /api/queues`` array observed at ``observed_at``.

    A non-array, a non-object element or a queue without a name is a problem; counts are copied
    as given (validation is the caller's), except that a missing count stays missing.
    """
    parsed = Parsed()
    if not isinstance(queues, list):
        parsed.problems.append(Problem("GET /api/queues response is not a JSON array", json.dumps(queues)[:4096], line=line))
        return parsed
    dead_letter_targets: dict[tuple[Any, str], list[str]] = {}
    for queue in queues:
        if isinstance(queue, dict) and isinstance(queue.get("name"), str):
            exchange, routing_key = dead_letter_settings(queue)
            for target in {routing_key, exchange} - {None, "", queue["name"]}:
                dead_letter_targets.setdefault((queue.get("vhost"), target), []).append(queue["name"])
    for queue in queues:
        if not isinstance(queue, dict):
            parsed.problems.append(Problem("queue entry is not a JSON object", json.dumps(queue), line=line))
            continue
        if not isinstance(queue.get("name"), str) or not queue["name"]:
            parsed.problems.append(Problem("queue without a name", json.dumps(queue, sort_keys=True), line=line,
                                           field="name"))
            continue
        parsed.candidates.append(_candidate(queue, observed_at, line, dead_letter_targets, parsed))
    return parsed


def _candidate(queue: dict[str, Any], observed_at: dt.datetime, line: int | None,
               dead_letter_targets: dict[tuple[Any, str], list[str]], parsed: Parsed) -> Candidate:
    vhost = queue.get("vhost")
    row: dict[str, Any] = {
        "observed_at": observed_at,
        "broker": "rabbitmq",
        "vhost": vhost if isinstance(vhost, str) else None,
        "queue": queue["name"],
    }
    for column, name in QUEUE_COUNTS.items():
        row[column] = queue.get(name)
    attributes: dict[str, Any] = {key: queue[key] for key in KEPT_FIELDS if queue.get(key) is not None}
    head = queue.get("head_message_timestamp")
    if isinstance(head, (int, float)) and not isinstance(head, bool):
        try:
            head_time = dt.datetime.fromtimestamp(head, dt.timezone.utc)
        except (OverflowError, ValueError, OSError):
            parsed.count("head_message_timestamp_unreadable")  # e.g. milliseconds where seconds belong
        else:
            row["oldest_message_age_s"] = (observed_at - head_time).total_seconds()
    stats = queue.get("message_stats")
    if isinstance(stats, dict):
        row["publish_rate"] = _rate(stats, "publish")
        row["deliver_rate"] = _rate(stats, "deliver_get") if "deliver_get" in stats else _rate(stats, "deliver")
        for counter in COUNTERS:
            if isinstance(stats.get(counter), int):
                attributes[f"{counter}_total"] = stats[counter]
    if queue.get("idle_since"):
        try:
            attributes["idle_since"] = iso(parse_timestamp(str(queue["idle_since"])))
        except ValueError:
            attributes["idle_since_raw"] = str(queue["idle_since"])
            parsed.count("idle_since_unreadable")
    exchange, routing_key = dead_letter_settings(queue)
    if exchange is not None:
        attributes["dead_letter_exchange"] = exchange
    if routing_key is not None:
        attributes["dead_letter_routing_key"] = routing_key
    sources = dead_letter_targets.get((vhost, queue["name"]))
    if sources:
        attributes["dead_letter_sources"] = sorted(sources)
    return Candidate(row, queue, line, attributes)


def _rate(stats: dict[str, Any], counter: str) -> float | None:
    details = stats.get(f"{counter}_details")
    rate = details.get("rate") if isinstance(details, dict) else None
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None
