"""Backlog snapshots: RabbitMQ ``GET /api/queues`` bodies and ``kafka-consumer-groups --describe`` text.

Depths are not sampled but counted: every message the walk emitted carries its publish, deliver
and ack instants, so at each observation ``messages`` is published-and-not-yet-acked,
``messages_unacknowledged`` delivered-and-not-yet-acked, and the head message is the oldest one
not yet delivered (queues are FIFO). Messages still on a queue at the end of a day carry over.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import numpy as np

from simulator.model import US_PER_DAY, US_PER_S, HealthSystem, from_us, iso_utc
from simulator.spool import KafkaRecord, Message

NODE = "rabbit@mq01.integration.example-health.org"
VHOST = "r2p"
NEVER = np.iinfo(np.int64).max
KAFKA_GROUPS = (("procurement.requisitions", "erp-requisition-import", 2),
                ("ap.invoices", "ap-invoice-intake", 1),
                ("supplier.master", "procurement-supplier-sync", 1))
"""(topic, consumer group, members)."""
KAFKA_PARTITIONS = 3


def queue_definitions(system: HealthSystem) -> list[tuple[str, str | None]]:
    """(queue, dead-letter exchange) for every queue, dead-letter queues last (their DLX is None)."""
    queues = []
    for facility in system.facilities:
        queues.append((facility.receipts_queue, "legacy-erp.adapter.dlx" if facility.legacy else "erp.integration.dlx"))
    queues += [("erp.po.outbound", "edi.gateway.dlx"), ("edi.inbound.acks", "erp.integration.dlx"),
               ("edi.inbound.asn", "edi.gateway.dlx"), ("legacy-erp.adapter.requests", "legacy-erp.adapter.dlx"),
               ("erp.integration.dlq", None), ("legacy-erp.adapter.dlq", None), ("edi.gateway.dlq", None)]
    return queues


class _Counters:
    """Cumulative per-queue counters since the broker started (the run's start)."""

    def __init__(self):
        self.publish = self.deliver = self.ack = self.redeliver = 0


class BacklogWriter:
    """Writes ``backlog/rabbitmq/queues-*.jsonl`` and ``backlog/kafka/consumer-groups-*.txt``."""

    def __init__(self, out_dir: Path, system: HealthSystem, seed: int, interval_s: int):
        self.rabbit_dir = out_dir / "backlog" / "rabbitmq"
        self.kafka_dir = out_dir / "backlog" / "kafka"
        self.rabbit_dir.mkdir(parents=True, exist_ok=True)
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.queues = queue_definitions(system)
        self.interval_us = interval_s * US_PER_S
        self.carry: dict[str, list[Message]] = {name: [] for name, _ in self.queues}
        self.counters = {name: _Counters() for name, _ in self.queues}
        self.kafka_carry: list[KafkaRecord] = []
        rng = random.Random(f"{seed}/kafka")
        self.kafka_base = {(topic, p): rng.randrange(10_000, 900_000) for topic, _, _ in KAFKA_GROUPS
                           for p in range(KAFKA_PARTITIONS)}
        self.kafka_produced = dict.fromkeys(self.kafka_base, 0)
        self.kafka_consumed = dict.fromkeys(self.kafka_base, 0)
        self.members = {}
        for topic, group, count in KAFKA_GROUPS:
            self.members[group] = [
                (f"{group}-{n}-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                 f"/10.20.{rng.randrange(1, 250)}.{rng.randrange(2, 250)}", f"{group}-{n}")
                for n in range(1, count + 1)
            ]
        self.counts = {"rabbitmq_observations": 0, "kafka_blocks": 0}

    def snapshot_times(self, day_start: int) -> np.ndarray:
        return np.arange(day_start, day_start + US_PER_DAY, self.interval_us, dtype=np.int64)

    def write_day(self, path_date: str, day_start: int, messages: list[Message], kafka: list[KafkaRecord],
                  group_down, negative_at: int | None) -> dict | None:
        """Write one day's observations; ``group_down(us)`` says whether the supplier-sync group is down."""
        times = self.snapshot_times(day_start)
        broken = self.write_rabbit(path_date, day_start, times, messages, negative_at)
        self.write_kafka(path_date, day_start, times, kafka, group_down)
        return broken

    def write_rabbit(self, path_date: str, day_start: int, times: np.ndarray, messages: list[Message],
                     negative_at: int | None) -> dict | None:
        by_queue = {name: list(self.carry[name]) for name, _ in self.queues}
        for message in messages:
            by_queue[message.queue].append(message)
        day_end = day_start + US_PER_DAY
        window = 60 * US_PER_S
        columns = []
        for name, dlx in self.queues:
            held = by_queue[name]
            self.carry[name] = [m for m in held if m.acked >= day_end]
            published = np.sort(np.array([m.published for m in held], dtype=np.int64))
            delivered = np.sort(np.array([m.delivered for m in held], dtype=np.int64))
            acked = np.sort(np.array([m.acked for m in held], dtype=np.int64))
            redelivered = np.sort(np.array([m.delivered for m in held if m.redelivered], dtype=np.int64))
            n_pub = np.searchsorted(published, times, "right")
            n_del = np.searchsorted(delivered, times, "right")
            n_ack = np.searchsorted(acked, times, "right")
            n_red = np.searchsorted(redelivered, times, "right")
            counters = self.counters[name]
            before = (np.searchsorted(published, day_start, "left"), np.searchsorted(delivered, day_start, "left"),
                      np.searchsorted(acked, day_start, "left"), np.searchsorted(redelivered, day_start, "left"))
            columns.append({
                "name": name, "dlx": dlx,
                "depth": n_pub - n_ack, "unacked": n_del - n_ack,
                "head": np.where(n_del < n_pub, published[np.minimum(n_del, max(len(published) - 1, 0))], -1)
                if len(published) else np.full(len(times), -1),
                "publish": n_pub + (counters.publish - before[0]), "deliver": n_del + (counters.deliver - before[1]),
                "ack": n_ack + (counters.ack - before[2]), "redeliver": n_red + (counters.redeliver - before[3]),
                "publish_rate": n_pub - np.searchsorted(published, times - window, "right"),
                "deliver_rate": n_del - np.searchsorted(delivered, times - window, "right"),
                "ack_rate": n_ack - np.searchsorted(acked, times - window, "right"),
                "last_activity": np.maximum(np.where(n_pub > 0, published[np.maximum(n_pub - 1, 0)], -1),
                                            np.where(n_ack > 0, acked[np.maximum(n_ack - 1, 0)], -1))
                if len(published) else np.full(len(times), -1),
            })
            column = columns[-1]
            for key, value in column.items():
                if isinstance(value, np.ndarray):
                    column[key] = value.tolist()
            end = (np.searchsorted(published, day_end, "left"), np.searchsorted(delivered, day_end, "left"),
                   np.searchsorted(acked, day_end, "left"), np.searchsorted(redelivered, day_end, "left"))
            counters.publish += int(end[0] - before[0])
            counters.deliver += int(end[1] - before[1])
            counters.ack += int(end[2] - before[2])
            counters.redeliver += int(end[3] - before[3])
        broken = None
        path = self.rabbit_dir / f"queues-{path_date}.jsonl"
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for i, moment in enumerate(times.tolist()):
                body = [queue_object(column, i, moment) for column in columns]
                if negative_at is not None and broken is None and moment >= negative_at:
                    # A broker bug or a bad exporter: a negative depth that must be rejected, not plotted.
                    body[0]["messages"] = -3
                    body[0]["messages_ready"] = -3
                    broken = {"file": f"backlog/rabbitmq/{path.name}", "line": i + 1,
                              "locator": f"queue {body[0]['name']}", "why": "negative message count (-3)"}
                out.write(json.dumps({"observed_at": iso_utc(moment), "queues": body}, separators=(",", ":")) + "\n")
        self.counts["rabbitmq_observations"] += len(times)
        return broken

    def write_kafka(self, path_date: str, day_start: int, times: np.ndarray, records: list[KafkaRecord],
                    group_down) -> None:
        held = self.kafka_carry + records
        day_end = day_start + US_PER_DAY
        self.kafka_carry = [r for r in held if r.consumed >= day_end]
        series = {}
        for key in self.kafka_base:
            produced = np.sort(np.array([r.produced for r in held if (r.topic, r.partition) == key], dtype=np.int64))
            consumed = np.sort(np.array([r.consumed for r in held if (r.topic, r.partition) == key], dtype=np.int64))
            p_before = np.searchsorted(produced, day_start, "left")
            c_before = np.searchsorted(consumed, day_start, "left")
            series[key] = ((np.searchsorted(produced, times, "right")
                            + (self.kafka_base[key] + self.kafka_produced[key] - p_before)).tolist(),
                           (np.searchsorted(consumed, times, "right")
                            + (self.kafka_base[key] + self.kafka_consumed[key] - c_before)).tolist())
            self.kafka_produced[key] += int(np.searchsorted(produced, day_end, "left") - p_before)
            self.kafka_consumed[key] += int(np.searchsorted(consumed, day_end, "left") - c_before)
        path = self.kafka_dir / f"consumer-groups-{path_date}.txt"
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for i, moment in enumerate(times.tolist()):
                for topic, group, _ in KAFKA_GROUPS:
                    down = group == "procurement-supplier-sync" and group_down(moment)
                    rows = []
                    for partition in range(KAFKA_PARTITIONS):
                        produced, consumed = series[(topic, partition)]
                        end_offset, current = produced[i], consumed[i]
                        member = ("-", "-", "-") if down else self.members[group][partition % len(self.members[group])]
                        rows.append((group, topic, str(partition), str(current), str(end_offset),
                                     str(end_offset - current), *member))
                    out.write(f"# observed_at {iso_utc(moment)}\n")
                    out.write(describe(group, rows, down))
                    out.write("\n")
                    self.counts["kafka_blocks"] += 1


def describe(group: str, rows: list[tuple], no_members: bool) -> str:
    """``kafka-consumer-groups --describe --group G`` output, aligned as ConsumerGroupCommand aligns it."""
    header = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
              "CLIENT-ID")
    group_w = max(15, *(len(r[0]) for r in rows))
    topic_w = max(15, *(len(r[1]) for r in rows))
    id_w = max(15, *(len(r[6]) for r in rows))
    host_w = max(15, *(len(r[7]) for r in rows))

    def line(r) -> str:
        return (f"{r[0]:<{group_w}} {r[1]:<{topic_w}} {r[2]:<10} {r[3]:<15} {r[4]:<15} {r[5]:<15} "
                f"{r[6]:<{id_w}} {r[7]:<{host_w}} {r[8]}").rstrip() + "\n"

    text = f"\nConsumer group '{group}' has no active members.\n" if no_members else ""
    return text + "\n" + line(header) + "".join(line(r) for r in rows)


def queue_object(column: dict, i: int, moment: int) -> dict:
    """One queue as the management API returns it (the fields a monitor reads, in the API's shape)."""
    depth = column["depth"][i]
    unacked = column["unacked"][i]
    publish_rate = round(column["publish_rate"][i] / 60, 2)
    deliver_rate = round(column["deliver_rate"][i] / 60, 2)
    ack_rate = round(column["ack_rate"][i] / 60, 2)
    dead_letter = column["dlx"] is None
    arguments = {"x-queue-type": "classic"}
    if not dead_letter:
        arguments["x-dead-letter-exchange"] = column["dlx"]
        arguments["x-dead-letter-routing-key"] = column["dlx"].replace(".dlx", ".dlq")
    queue = {
        "arguments": arguments,
        "auto_delete": False,
        "consumers": 0 if dead_letter else 2,
        "consumer_utilisation": None if dead_letter else (1.0 if depth == 0 else round(min(1.0, 0.2 + 0.8 / (1 + depth / 50)), 4)),
        "durable": True,
        "exclusive": False,
        "head_message_timestamp": column["head"][i] // US_PER_S if column["head"][i] >= 0 else None,
        "messages": depth,
        "messages_details": {"rate": 0.0},
        "messages_ready": depth - unacked,
        "messages_ready_details": {"rate": 0.0},
        "messages_unacknowledged": unacked,
        "messages_unacknowledged_details": {"rate": 0.0},
        "name": column["name"],
        "node": NODE,
        "state": "running",
        "type": "classic",
        "vhost": VHOST,
    }
    if column["publish"][i] > 0:
        queue["message_stats"] = {
            "ack": column["ack"][i], "ack_details": {"rate": ack_rate},
            "deliver": column["deliver"][i], "deliver_details": {"rate": deliver_rate},
            "deliver_get": column["deliver"][i], "deliver_get_details": {"rate": deliver_rate},
            "publish": column["publish"][i], "publish_details": {"rate": publish_rate},
            "redeliver": column["redeliver"][i], "redeliver_details": {"rate": 0.0},
        }
    last = column["last_activity"][i]
    if depth == 0 and publish_rate == 0 and deliver_rate == 0 and last >= 0:
        queue["idle_since"] = from_us(last).strftime("%Y-%m-%d %H:%M:%S")
    return queue
