"""Live broker: real queues on the local RabbitMQ, real messages, some dead-lettered, then polled.

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest), as on this project's machines; the management and
Prometheus plugins are enabled here when they are off.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pika
import pytest

from collectors.broker_flows import load_config
from collectors.broker_poller import Poller
from r2p.landing import LandingZone

MANAGEMENT = "http://127.0.0.1:15672"
PER_OBJECT_METRICS = "http://127.0.0.1:15692/metrics/per-object"
GUEST = base64.b64encode(b"guest:guest").decode()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def plugins() -> None:
    """The management (15672) and Prometheus (15692) plugins, enabled if they are off."""
    if not port_open(5672):
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    wanted = {15672: "rabbitmq_management", 15692: "rabbitmq_prometheus"}
    missing = [plugin for port, plugin in wanted.items() if not port_open(port)]
    if missing:
        subprocess.run(["rabbitmq-plugins", "enable", *missing], check=True, capture_output=True, timeout=120)
        for port in wanted:
            wait_for(lambda: port_open(port), 60, f"port {port}")


def api(path: str) -> dict:
    request = urllib.request.Request(MANAGEMENT + path, headers={"Authorization": f"Basic {GUEST}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def dead_lettered_rejected() -> int:
    with urllib.request.urlopen(PER_OBJECT_METRICS, timeout=5) as response:
        text = response.read().decode()
    prefix = 'rabbitmq_global_messages_dead_lettered_rejected_total{queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"} '
    return int(next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix):])


@pytest.fixture(scope="module")
def receipts_backlog(plugins) -> Iterator[dict]:
    """A source queue dead-lettering into a parking queue: 10 published, 3 rejected (dead-lettered),
    2 delivered and left unacknowledged; so source 7 (5 ready, 2 unacked), parked 3, no consumers."""
    tag = uuid.uuid4().hex[:8]
    names = {"dlx": f"r2ptest.{tag}.dlx", "source": f"wms.test-{tag}.receipts",
             # Not a dead-letter name pattern: recognised only by the source queue's arguments.
             "parked": f"r2ptest.{tag}.parked", "facility": f"TEST-{tag.upper()}"}
    rejected_before = dead_lettered_rejected()
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", credentials=pika.PlainCredentials("guest", "guest"), heartbeat=0))
    channel = connection.channel()
    try:
        channel.confirm_delivery()
        channel.exchange_declare(names["dlx"], "direct")
        channel.queue_declare(names["parked"])
        channel.queue_bind(names["parked"], names["dlx"], routing_key=names["parked"])
        channel.queue_declare(names["source"], arguments={"x-dead-letter-exchange": names["dlx"],
                                                          "x-dead-letter-routing-key": names["parked"]})
        for number in range(10):
            channel.basic_publish("", names["source"], f"receipt {number}".encode(),
                                  pika.BasicProperties(timestamp=int(time.time()), delivery_mode=2))
        for _ in range(3):
            method, _, _ = channel.basic_get(names["source"])
            channel.basic_nack(method.delivery_tag, requeue=False)
        holder = connection.channel()
        for _ in range(2):
            assert holder.basic_get(names["source"])[0] is not None
        vhost_path = f"/api/queues/%2F/{urllib.parse.quote(names['source'], safe='')}"
        parked_path = f"/api/queues/%2F/{urllib.parse.quote(names['parked'], safe='')}"
        # The management plugin refreshes its statistics every few seconds.
        wait_for(lambda: (api(vhost_path).get("messages"), api(vhost_path).get("messages_unacknowledged"),
                          api(parked_path).get("messages")) == (7, 2, 3), 30, "management statistics")
        yield {**names, "rejected_before": rejected_before}
    finally:
        channel.queue_delete(names["source"])
        channel.queue_delete(names["parked"])
        channel.exchange_delete(names["dlx"])
        connection.close()


def landed_rows(data_dir: Path, queues: list[str]) -> list[dict]:
    files = [str(path) for path in (data_dir / "landing" / "backlog_snapshots").rglob("*.parquet")]
    relation = duckdb.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = false) "
                          f"WHERE queue IN {tuple(queues)} ORDER BY observed_at, queue")
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def test_poll_rabbitmq_until_sigterm(receipts_backlog: dict, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    environment = {**os.environ, "R2P_RABBITMQ_USERNAME": "guest", "R2P_RABBITMQ_PASSWORD": "guest"}
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "r2p", "--data-dir", str(data_dir), "poll", "rabbitmq", "--url", MANAGEMENT,
         "--interval", "0.5"], cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        commits = data_dir / "landing" / "ingest_batches"
        wait_for(lambda: commits.is_dir() and len(list(commits.glob("*.parquet"))) >= 2, 30, "two polls")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    polls = len(list(commits.glob("*.parquet")))
    assert stdout.strip() == f"stopped after {polls} poll(s)"
    assert stderr.count(f"rabbitmq {MANAGEMENT}/api/queues:") == polls and "error" not in stderr
    rows = landed_rows(data_dir, [receipts_backlog["source"], receipts_backlog["parked"]])
    assert len(rows) == 2 * polls and len({row["observed_at"] for row in rows}) == polls
    for row in rows:
        assert started - 1 < row["observed_at"].timestamp() < time.time()
    source = [row for row in rows if row["queue"] == receipts_backlog["source"]]
    parked = [row for row in rows if row["queue"] == receipts_backlog["parked"]]
    assert {(r["depth"], r["ready"], r["unacked"], r["consumers"], r["is_dead_letter"]) for r in source} == {(7, 5, 2, 0, False)}
    assert {(r["depth"], r["ready"], r["unacked"], r["consumers"], r["is_dead_letter"]) for r in parked} == {(3, 3, 0, 0, True)}
    assert {(r["flow"], r["stage"], r["facility_id"]) for r in source + parked} == {
        ("receipt-sync", "receipt", receipts_backlog["facility"])}
    assert json.loads(parked[0]["attributes"])["dead_letter_sources"] == [receipts_backlog["source"]]
    assert json.loads(source[0]["attributes"])["dead_letter_exchange"] == receipts_backlog["dlx"]
    assert all(0 <= r["oldest_message_age_s"] < 120 for r in source)


def test_poll_prometheus_per_object_and_dead_letter_counter(receipts_backlog: dict, tmp_path: Path) -> None:
    poller = Poller("prometheus", PER_OBJECT_METRICS, LandingZone(tmp_path / "data"), load_config(), timeout=5)
    outcome = wait_for(lambda: (lambda o: o if o.error is None else None)(poller.poll_once()), 30, "a scrape")
    rows = landed_rows(tmp_path / "data", [receipts_backlog["source"], receipts_backlog["parked"], "*"])
    latest = {row["queue"]: row for row in rows if row["observed_at"] == outcome.observed_at}
    source, parked, node = latest[receipts_backlog["source"]], latest[receipts_backlog["parked"]], latest["*"]
    assert (source["depth"], source["ready"], source["unacked"], source["consumers"]) == (7, 5, 2, 0)
    assert (parked["depth"], parked["ready"], parked["unacked"], parked["consumers"]) == (3, 3, 0, 0)
    assert (source["flow"], source["vhost"]) == ("receipt-sync", "/")
    rejected = json.loads(node["attributes"])["dead_lettered"]["rejected"]["rabbit_classic_queue/at_most_once"]
    assert rejected - receipts_backlog["rejected_before"] == 3
