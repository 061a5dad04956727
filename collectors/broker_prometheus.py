"""RabbitMQ's Prometheus endpoint (text format 0.0.4): per-queue gauges and dead-letter counters.

The plugin serves ``/metrics`` (aggregated: queue metrics without a ``queue`` label),
``/metrics/per-object`` and ``/metrics/detailed?family=...`` (names prefixed ``rabbitmq_detailed_``).
Samples with ``vhost`` and ``queue`` labels become one row per queue; queue metrics without those
labels and the node-wide ``rabbitmq_global_messages_dead_lettered_<reason>_total`` counters (3.10+)
become one row for the node, whose queue is ``*``. Dead-letter counters are kept in attributes:
``dead_lettered_total`` (the sum) and ``dead_lettered`` (by reason, queue type and strategy).
The endpoint does not show queue arguments, so here a dead-letter queue is recognised by its name
alone (the configured patterns); consumers are NULL unless ``rabbitmq_queue_consumers`` is scraped.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from collectors.broker_common import AGGREGATE_QUEUE, Candidate, Parsed, Problem

GAUGES = {
    "rabbitmq_queue_messages": "depth",
    "rabbitmq_queue_messages_ready": "ready",
    "rabbitmq_queue_messages_unacked": "unacked",
    "rabbitmq_queue_consumers": "consumers",
}
"""Prometheus sample name (``rabbitmq_detailed_`` folded to ``rabbitmq_``) -> snapshot column."""

DEAD_LETTERED_PREFIX = "rabbitmq_global_messages_dead_lettered_"
INTEGER_COLUMNS = {"depth", "ready", "unacked", "consumers"}


def looks_like_prometheus(text: str) -> bool:
    """True when the text reads as Prometheus exposition (TYPE/HELP lines or rabbitmq_ samples)."""
    for line in text.splitlines()[:20]:
        if line.startswith(("# TYPE ", "# HELP ")) or line.startswith("rabbitmq_"):
            return True
    return False


def parse_metrics(text: str, observed_at: dt.datetime) -> Parsed:
    """Rows for one scrape observed at ``observed_at``; an unparseable scrape is one problem."""
    parsed = Parsed()
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, TypeError) as error:
        parsed.problems.append(Problem(f"unreadable Prometheus text: {error}", text))
        return parsed
    queues: dict[tuple[str | None, str], Candidate] = {}
    identity: dict[str, str] = {}

    def candidate(vhost: str | None, queue: str) -> Candidate:
        if (vhost, queue) not in queues:
            row = {"observed_at": observed_at, "broker": "rabbitmq", "vhost": vhost, "queue": queue}
            queues[(vhost, queue)] = Candidate(row, raw="", attributes={})
        return queues[(vhost, queue)]

    for family in families:
        for sample in family.samples:
            name = sample.name.replace("rabbitmq_detailed_", "rabbitmq_", 1)
            labels = sample.labels
            line_text = _sample_text(sample.name, labels, sample.value)
            if name == "rabbitmq_identity_info":
                identity = {key: value for key, value in labels.items() if key in ("rabbitmq_node", "rabbitmq_cluster")}
                continue
            if name.startswith(DEAD_LETTERED_PREFIX):
                node = candidate(None, AGGREGATE_QUEUE)
                node.raw += line_text + "\n"
                if not _finite_non_negative(sample.value):
                    parsed.problems.append(Problem(f"{name} is {sample.value}", line_text, field=name))
                    continue
                reason = name[len(DEAD_LETTERED_PREFIX):].removesuffix("_total")
                by_reason = node.attributes.setdefault("dead_lettered", {})
                key = "/".join(labels.get(label, "") for label in ("queue_type", "dead_letter_strategy"))
                by_reason.setdefault(reason, {})[key] = int(sample.value)
                node.attributes["dead_lettered_total"] = node.attributes.get("dead_lettered_total", 0) + int(sample.value)
                continue
            if not name.startswith("rabbitmq_queue_"):
                continue
            target = candidate(labels.get("vhost"), labels["queue"]) if "queue" in labels else candidate(None, AGGREGATE_QUEUE)
            target.raw += line_text + "\n"
            column = GAUGES.get(name)
            value: Any = sample.value
            if column in INTEGER_COLUMNS and math.isfinite(value) and value == int(value):
                value = int(value)
            if column is not None:
                target.row[column] = value
            else:
                target.attributes[name.removeprefix("rabbitmq_queue_")] = value if math.isfinite(value) else str(value)
    for found in queues.values():
        found.attributes.update(identity)
        if found.row["queue"] == AGGREGATE_QUEUE:
            found.attributes["scope"] = "node"
    parsed.candidates = list(queues.values())
    if not parsed.candidates:
        parsed.count("scrape_without_queue_metrics")
    return parsed


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _sample_text(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{key}="{val}"' for key, val in labels.items())
    return f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"
