"""Poller resilience against a local stub server: down, slow, HTML, 5xx then OK, 401; credentials."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from collectors.broker_flows import load_config
from collectors.broker_poller import Poller, credentials
from r2p.errors import UserError
from r2p.landing import LandingZone

QUEUES = json.dumps([{"name": "wms.north-general.receipts", "vhost": "/", "messages": 4, "messages_ready": 3,
                      "messages_unacknowledged": 1, "consumers": 1}]).encode()
HTML = b"<!DOCTYPE html><html><head><title>RabbitMQ Management</title></head><body>login</body></html>"


class Stub:
    """A scripted HTTP server: each request takes the next (status, content type, body, delay) step;
    the last step repeats. Records the Authorization headers it saw."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, str, bytes, float]] = [(200, "application/json", QUEUES, 0.0)]
        self.requests = 0
        self.authorizations: list[str | None] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                step = stub.steps[min(stub.requests, len(stub.steps) - 1)]
                stub.requests += 1
                stub.authorizations.append(self.headers.get("Authorization"))
                status, content_type, body, delay = step
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the poller timed out and hung up: expected for the slow steps

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    yield server
    server.server.shutdown()
    server.server.server_close()


def poller(data_dir: Path, url: str, kind: str = "rabbitmq", **options) -> Poller:
    options = {"timeout": 0.5, "retries": 2, "backoff": 0.01, **options}
    return Poller(kind, url, LandingZone(data_dir), load_config(), **options)


def landed(data_dir: Path, table: str) -> list[dict]:
    files = [str(path) for path in (data_dir / "landing" / table).rglob("*.parquet")]
    if not files:
        return []
    relation = duckdb.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = false) ORDER BY ALL")
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_down_is_retried_and_recorded(data_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    outcome = poller(data_dir, url).poll_once()
    assert (outcome.attempts, outcome.rows, outcome.rejected) == (3, 0, 1)
    assert outcome.error.startswith("cannot connect: [Errno 111]")
    [reject] = landed(data_dir, "rejects")
    assert reject["reason"].startswith("poll failed after 3 attempt(s): cannot connect: [Errno 111]")
    assert (reject["source"], reject["input"]) == ("backlog", f"{url}/api/queues")
    [batch] = landed(data_dir, "ingest_batches")
    assert json.loads(batch["notes"])["attempts"] == 3 and batch["rejected"] == 1


def test_slow_server_times_out_then_recovers(data_dir: Path, stub: Stub) -> None:
    stub.steps = [(200, "application/json", QUEUES, 1.5)] * 2 + [(200, "application/json", QUEUES, 0.0)]
    poll = poller(data_dir, stub.url, timeout=0.3, retries=1)
    started = time.monotonic()
    slow = poll.poll_once()
    assert time.monotonic() - started < 1.5
    assert (slow.attempts, slow.rows, slow.rejected) == (2, 0, 1)
    assert slow.error == "TimeoutError: timed out"
    recovered = poll.poll_once()
    assert (recovered.attempts, recovered.rows, recovered.rejected, recovered.error) == (1, 1, 0, None)
    [row] = landed(data_dir, "backlog_snapshots")
    assert (row["queue"], row["depth"], row["ready"], row["unacked"], row["consumers"]) == (
        "wms.north-general.receipts", 4, 3, 1, 1)
    assert (row["flow"], row["facility_id"], row["observed_at"]) == ("receipt-sync", "NORTH-GENERAL", recovered.observed_at)


def test_html_instead_of_json_or_metrics_is_a_reject(data_dir: Path, stub: Stub) -> None:
    stub.steps = [(200, "text/html", HTML, 0.0)]
    rabbit = poller(data_dir, stub.url).poll_once()
    metrics = poller(data_dir, stub.url + "/metrics", kind="prometheus").poll_once()
    assert (rabbit.attempts, rabbit.rows, rabbit.error) == (1, 0, "response is not JSON: Expecting value at line 1")
    assert (metrics.attempts, metrics.rows, metrics.error) == (1, 0, "response is not Prometheus text")
    rejects = landed(data_dir, "rejects")
    assert sorted(r["reason"] for r in rejects) == ["response is not JSON: Expecting value at line 1",
                                                   "response is not Prometheus text"]
    assert {r["raw"] for r in rejects} == {HTML.decode()}


def test_server_error_retried_until_success_and_401_not_retried(data_dir: Path, stub: Stub) -> None:
    stub.steps = [(503, "text/plain", b"busy", 0.0), (200, "application/json", QUEUES, 0.0)]
    outcome = poller(data_dir, stub.url).poll_once()
    assert (outcome.attempts, outcome.rows, outcome.rejected, outcome.error) == (2, 1, 0, None)
    stub.steps, stub.requests = [(401, "application/json", b'{"error":"not_authorised"}', 0.0)], 0
    denied = poller(data_dir, stub.url).poll_once()
    assert (denied.attempts, denied.rows, denied.error) == (1, 0, "HTTP 401 Unauthorized")
    assert stub.requests == 1
    assert '{"error":"not_authorised"}' in {r["raw"] for r in landed(data_dir, "rejects")}


def test_identical_responses_are_separate_observations(data_dir: Path, stub: Stub) -> None:
    poll = poller(data_dir, stub.url)
    first, second = poll.poll_once(), poll.poll_once()
    rows = landed(data_dir, "backlog_snapshots")
    assert [row["observed_at"] for row in rows] == [first.observed_at, second.observed_at]
    assert len({row["batch_id"] for row in rows}) == 2


def test_credentials_from_environment_or_secrets_file(data_dir: Path, stub: Stub, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[rabbitmq]\nusername = "observer"\npassword = "s3cret"\n')
    monkeypatch.delenv("R2P_RABBITMQ_USERNAME", raising=False)
    assert credentials(secrets) == ("observer", "s3cret")
    monkeypatch.setenv("R2P_RABBITMQ_USERNAME", "env-user")
    monkeypatch.setenv("R2P_RABBITMQ_PASSWORD", "env-pass")
    assert credentials(secrets) == ("env-user", "env-pass")
    poller(data_dir, stub.url, auth=credentials(None)).poll_once()
    assert stub.authorizations == ["Basic " + base64.b64encode(b"env-user:env-pass").decode()]
    with pytest.raises(UserError, match="credentials do not belong in the URL"):
        poller(data_dir, "http://guest:guest@127.0.0.1:15672")
    with pytest.raises(UserError, match="no secrets file at"):
        monkeypatch.delenv("R2P_RABBITMQ_USERNAME")
        credentials(tmp_path / "missing.toml")


def test_run_outlives_a_crashing_poll_and_stops_when_told(data_dir: Path, stub: Stub) -> None:
    poll = poller(data_dir, stub.url)
    calls = []

    def crash_then_stop():
        calls.append(1)
        if len(calls) == 2:
            poll.stop.set()
            return type(poll).poll_once(poll)
        raise OSError(28, "No space left on device")

    poll.poll_once = crash_then_stop
    lines: list[str] = []
    assert poll.run(interval=0.01, log=lines.append) == 2
    assert lines[0].endswith("poll failed: OSError: [Errno 28] No space left on device")
    assert lines[1].endswith("1 row(s), 0 reject(s), 1 attempt(s), ok")
