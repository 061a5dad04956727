"""``r2p poll rabbitmq|prometheus``: poll a live broker on an interval until SIGTERM.

Each poll is one observation and one landing batch (named by the hash of the endpoint, the
observation time and the response), so identical responses at two times land twice, as they
should. A poll that fails (connection refused, timeout, an HTTP error, a response that is not
what the endpoint serves, e.g. a login page in HTML) is retried with exponential backoff and,
if it still fails, landed as a batch holding one reject that says why: failures are recorded,
never fatal. SIGTERM (or Ctrl-C) stops the loop after the poll in progress.

Credentials for the management API never come from the command line: they are read from
``R2P_RABBITMQ_USERNAME`` / ``R2P_RABBITMQ_PASSWORD``, else from the ``[rabbitmq]`` table
(``username``, ``password``) of a Streamlit-style secrets file (``--secrets``, default
``.streamlit/secrets.toml``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

from collectors.broker_common import Parsed, Problem, iso
from collectors.broker_flows import CONFIG_OPTION, FlowConfig, load_config
from collectors.broker_landing import SOURCE, land
from collectors.broker_prometheus import looks_like_prometheus, parse_metrics
from collectors.broker_rabbitmq import parse_queues
from r2p.cli import Context, pass_context
from r2p.errors import UserError
from r2p.landing import LandingZone, content_hash

USERNAME_VARIABLE = "R2P_RABBITMQ_USERNAME"
PASSWORD_VARIABLE = "R2P_RABBITMQ_PASSWORD"
DEFAULT_SECRETS = Path(".streamlit/secrets.toml")
RAW_RESPONSE_LIMIT = 4096


class FetchError(Exception):
    """A failed request; ``retriable`` is False for answers that a retry cannot change (401, 404)."""

    def __init__(self, message: str, raw: str = "", retriable: bool = True):
        super().__init__(message)
        self.raw = raw
        self.retriable = retriable


@dataclass
class PollOutcome:
    """What one poll did, for the log line and the tests."""

    observed_at: dt.datetime
    attempts: int
    rows: int
    rejected: int
    error: str | None


def credentials(secrets_path: Path | None) -> tuple[str, str] | None:
    """(username, password) from the environment, else the secrets file; None when neither has them."""
    if os.environ.get(USERNAME_VARIABLE):
        return os.environ[USERNAME_VARIABLE], os.environ.get(PASSWORD_VARIABLE, "")
    path = secrets_path or DEFAULT_SECRETS
    if not path.is_file():
        if secrets_path is not None:
            raise UserError(f"no secrets file at {path}")
        return None
    try:
        table = tomllib.loads(path.read_text()).get("rabbitmq", {})
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"secrets file {path} is not valid TOML: {error}") from None
    if not isinstance(table, dict) or not table.get("username"):
        return None
    return str(table["username"]), str(table.get("password", ""))


class Poller:
    """Polls one endpoint; ``kind`` is ``rabbitmq`` (management API) or ``prometheus``."""

    def __init__(self, kind: str, url: str, zone: LandingZone, config: FlowConfig, *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 1.0, auth: tuple[str, str] | None = None,
                 stop: threading.Event | None = None):
        if urllib.parse.urlsplit(url).username is not None:
            raise UserError("credentials do not belong in the URL: set "
                            f"{USERNAME_VARIABLE}/{PASSWORD_VARIABLE} or use a secrets file")
        self.kind = kind
        self.url = url
        self.request_url = url.rstrip("/") + "/api/queues" if kind == "rabbitmq" else url
        self.zone = zone
        self.config = config
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.auth = auth
        self.stop = stop or threading.Event()

    def fetch(self) -> bytes:
        """One GET of the endpoint; raises FetchError."""
        request = urllib.request.Request(self.request_url, headers={"Accept": "application/json, text/plain"})
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            body = error.read()[:RAW_RESPONSE_LIMIT].decode("utf-8", "replace")
            retriable = error.code >= 500 or error.code == 429
            raise FetchError(f"HTTP {error.code} {error.reason}", body, retriable) from None
        except urllib.error.URLError as error:
            raise FetchError(f"cannot connect: {error.reason}") from None
        except (TimeoutError, OSError) as error:
            raise FetchError(f"{type(error).__name__}: {error or 'timed out'}") from None

    def poll_once(self) -> PollOutcome:
        """Fetch (with retries), parse and land one observation; never raises for a broker fault."""
        observed_at = dt.datetime.now(dt.timezone.utc)
        body: bytes | None = None
        failure: FetchError | None = None
        attempts = 0
        while body is None:
            attempts += 1
            try:
                body = self.fetch()
            except FetchError as error:
                failure = error
                if not error.retriable or attempts > self.retries or self.stop.is_set():
                    break
                self.stop.wait(self.backoff * 2 ** (attempts - 1))
        parsed = self._parse(body, observed_at) if body is not None else Parsed(
            problems=[Problem(f"poll failed after {attempts} attempt(s): {failure}", failure.raw)])
        parsed.observed_at = observed_at
        fingerprint = [self.kind.encode(), self.request_url.encode(), iso(observed_at).encode(), body or b""]
        with self.zone.batch(SOURCE, self.request_url, content_hash(SOURCE, fingerprint)) as writer:
            writer.notes["attempts"] = attempts
            rows = land(parsed, writer, self.config)
            rejected = writer.rejected
        error = str(failure) if body is None else (parsed.problems[0].reason if parsed.problems and not rows else None)
        return PollOutcome(observed_at, attempts, rows, rejected, error)

    def _parse(self, body: bytes, observed_at: dt.datetime) -> Parsed:
        text = body.decode("utf-8", "replace")
        if self.kind == "prometheus":
            if not looks_like_prometheus(text):
                return Parsed(problems=[Problem("response is not Prometheus text", text[:RAW_RESPONSE_LIMIT])])
            return parse_metrics(text, observed_at)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            return Parsed(problems=[Problem(f"response is not JSON: {error.msg} at line {error.lineno}",
                                            text[:RAW_RESPONSE_LIMIT])])
        return parse_queues(document, observed_at)

    def run(self, interval: float, log=lambda line: click.echo(line, err=True)) -> int:
        """Poll every ``interval`` seconds until ``stop`` is set; returns the number of polls."""
        polls = 0
        while not self.stop.is_set():
            started = time.monotonic()
            polls += 1
            try:
                outcome = self.poll_once()
            except Exception as error:  # noqa: BLE001 - a daemon outlives one bad poll (e.g. a full disk); say so
                log(f"{iso(dt.datetime.now(dt.timezone.utc))} {self.kind} {self.request_url}: poll failed: "
                    f"{type(error).__name__}: {error}")
            else:
                status = f"error: {outcome.error}" if outcome.error else "ok"
                log(f"{iso(outcome.observed_at)} {self.kind} {self.request_url}: {outcome.rows} row(s), "
                    f"{outcome.rejected} reject(s), {outcome.attempts} attempt(s), {status}")
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))
        return polls


def _run_until_signal(poller: Poller, interval: float) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: poller.stop.set())
    polls = poller.run(interval)
    click.echo(f"stopped after {polls} poll(s)")
    sys.stdout.flush()


@click.group("poll")
def poll_group() -> None:
    """Poll a live broker on an interval until SIGTERM, landing one snapshot a poll."""


POLL_OPTIONS = [
    click.option("--url", required=True, help="Endpoint: the management API base (rabbitmq) or metrics URL."),
    click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
                 help="Seconds between polls."),
    click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                 help="Seconds before a request times out."),
    click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
                 help="Retries of a failed request, with exponential backoff from 1 s."),
    CONFIG_OPTION,
]


def _with_options(function):
    for option in reversed(POLL_OPTIONS):
        function = option(function)
    return function


@poll_group.command("rabbitmq")
@_with_options
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Streamlit-style secrets TOML with [rabbitmq] username/password (default {DEFAULT_SECRETS}).")
@pass_context
def poll_rabbitmq(context: Context, url: str, interval: float, timeout: float, retries: int,
                  config_path: Path | None, secrets_path: Path | None) -> None:
    """Poll the RabbitMQ management API (GET /api/queues), e.g. --url http://127.0.0.1:15672."""
    poller = Poller("rabbitmq", url, context.landing(), load_config(config_path), timeout=timeout, retries=retries,
                    auth=credentials(secrets_path))
    _run_until_signal(poller, interval)


@poll_group.command("prometheus")
@_with_options
@pass_context
def poll_prometheus(context: Context, url: str, interval: float, timeout: float, retries: int,
                    config_path: Path | None) -> None:
    """Poll RabbitMQ's Prometheus endpoint, e.g. --url http://127.0.0.1:15692/metrics/per-object."""
    poller = Poller("prometheus", url, context.landing(), load_config(config_path), timeout=timeout, retries=retries)
    _run_until_signal(poller, interval)
