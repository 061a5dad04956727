"""``r2p receive``: an OTLP/HTTP trace receiver (POST /v1/traces) landing what it accepts in batches.

Answers as the OTLP/HTTP specification says: 200 with ``partial_success`` naming how many spans
will be rejected (and why, for the first), 400 for a body that does not decode, 413 over
``MAX_BODY_BYTES`` (before or after gunzip), 415 for a content type other than protobuf or JSON,
503 with Retry-After when the buffer is full (the exporter retries), 404 elsewhere.

An accepted request is buffered in memory and acknowledged; a flusher thread lands the buffer as
one batch every ``flush_seconds`` or as soon as it holds ``max_batch_spans`` spans. The batch id is
the content hash of its request bodies. On stop (SIGTERM, SIGINT) the server stops accepting,
finishes in-flight requests and lands the buffer before exiting, so an acknowledged span is not
lost by a clean shutdown (a crash loses at most the last unflushed seconds).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import signal
import threading
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from collectors.otlp_config import TracesConfig
from collectors.otlp_input import Chunk
from r2p.landing import LandingZone, content_hash

MAX_BODY_BYTES = 32 << 20
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_KINDS = {str(i) for i in range(6)} | {f"SPAN_KIND_{n}" for n in ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")}


class BadRequest(Exception):
    """The body cannot be decoded as an OTLP trace export request."""


def _id_ok(value: object, size: int) -> bool:
    if not isinstance(value, str):
        return False
    if len(value) == 2 * size:
        try:
            bytes.fromhex(value)
            return True
        except ValueError:
            return False
    try:
        return len(base64.b64decode(value, validate=True)) == size
    except ValueError:
        return False


def span_problems(document: dict) -> tuple[int, int, str]:
    """(spans, spans that landing will reject, first reason) of an OTLP/JSON request, for partial_success.

    The same rules as the SQL transform's, on the few fields a receiver can check cheaply.
    """
    spans = rejected = 0
    first = ""
    resources = document.get("resourceSpans") or []
    for resource in resources if isinstance(resources, list) else []:
        for scope in (resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans") or []):
            for span in scope.get("spans") or []:
                spans += 1
                reason = ""
                if not _id_ok(span.get("traceId"), 16):
                    reason = f"span {span.get('name')!r}: invalid traceId"
                elif not _id_ok(span.get("spanId"), 8):
                    reason = f"span {span.get('name')!r}: invalid spanId"
                elif span.get("parentSpanId") and not _id_ok(span["parentSpanId"], 8):
                    reason = f"span {span.get('name')!r}: invalid parentSpanId"
                elif "kind" in span and str(span["kind"]).upper() not in _KINDS:
                    reason = f"span {span.get('name')!r}: unknown kind {span['kind']!r}"
                if reason:
                    rejected += 1
                    first = first or reason
    return spans, rejected, first


def decode(body: bytes, content_type: str) -> tuple[str, dict]:
    """An export request body as (OTLP/JSON text, parsed JSON); raises BadRequest."""
    if content_type == PROTOBUF:
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise BadRequest(f"body is not an ExportTraceServiceRequest: {error}") from None
        document = json_format.MessageToDict(request)
        return json.dumps(document, separators=(",", ":")), document
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRequest("body is not a JSON object")
    return body.decode("utf-8"), document


@dataclass
class Buffer:
    """Acknowledged requests waiting to land."""

    bodies: list[bytes] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    spans: int = 0


class Receiver:
    """The server, its buffer and its flusher; ``start()`` then ``stop()``."""

    def __init__(self, zone: LandingZone, config: TracesConfig, host: str = "127.0.0.1", port: int = 4318,
                 flush_seconds: float = 2.0, max_batch_spans: int = 20_000):
        self.zone, self.config = zone, config
        self.flush_seconds, self.max_batch_spans = flush_seconds, max_batch_spans
        self.max_pending_spans = 10 * max_batch_spans
        self.buffer = Buffer()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.landed_batches = 0
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = False  # server_close() waits for in-flight requests
        self.input_name = f"otlp-http://{host}:{self.server.server_address[1]}/v1/traces"
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> Receiver:
        for target in (self.server.serve_forever, self._flush_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop accepting, finish in-flight requests, land everything acknowledged."""
        self.server.shutdown()
        self.server.server_close()
        self.stopping.set()
        self.wake.set()
        self._threads[1].join()

    def accept(self, body: bytes, document_text: str, spans: int) -> bool:
        """Buffer an acknowledged request; False when the buffer is full (answer 503)."""
        with self.lock:
            if self.buffer.spans >= self.max_pending_spans:
                return False
            self.buffer.bodies.append(body)
            self.buffer.documents.append(document_text)
            self.buffer.spans += spans
            full = self.buffer.spans >= self.max_batch_spans
        if full:
            self.wake.set()
        return True

    def _flush_loop(self) -> None:
        while True:
            self.wake.wait(self.flush_seconds)
            self.wake.clear()
            self.flush()
            if self.stopping.is_set():
                self.flush()
                return

    def flush(self) -> None:
        """Land the buffered requests as one batch."""
        from collectors.traces import SOURCE, land_chunks

        with self.lock:
            buffer, self.buffer = self.buffer, Buffer()
        if not buffer.bodies:
            return
        chunk = Chunk(documents=[(None, index, text) for index, text in enumerate(buffer.documents)])
        with self.zone.batch(SOURCE, self.input_name, content_hash(SOURCE, buffer.bodies)) as writer:
            if writer is not None:
                land_chunks(writer, self.config, [chunk])
                writer.notes["requests"] = len(buffer.bodies)
        self.landed_batches += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
                pass

            def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str, content_type: str, headers: dict[str, str] | None = None) -> None:
                if content_type == PROTOBUF:
                    from google.rpc import status_pb2  # type: ignore[import-not-found]

                    body = status_pb2.Status(code=status, message=message).SerializeToString()
                else:
                    body, content_type = json.dumps({"code": status, "message": message}).encode(), JSON
                self._answer(status, body, content_type, headers)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.split("?")[0] != "/v1/traces":
                    self.rfile.read(length)
                    return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path}", JSON)
                if content_type not in (PROTOBUF, JSON):
                    self.rfile.read(length)
                    return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                       f"Content-Type must be {PROTOBUF} or {JSON}", JSON)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes", content_type)
                body = self.rfile.read(length)
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    try:
                        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unzipped:
                            body = unzipped.read(MAX_BODY_BYTES + 1)
                    except (OSError, EOFError, zlib.error) as error:
                        return self._error(HTTPStatus.BAD_REQUEST, f"body is not gzip: {error}", content_type)
                    if len(body) > MAX_BODY_BYTES:
                        return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                           f"gunzipped body over {MAX_BODY_BYTES} bytes", content_type)
                try:
                    text, document = decode(body, content_type)
                except BadRequest as error:
                    return self._error(HTTPStatus.BAD_REQUEST, str(error), content_type)
                spans, rejected, reason = span_problems(document)
                if not receiver.accept(body, text, spans):
                    return self._error(HTTPStatus.SERVICE_UNAVAILABLE, "receiver busy landing; retry", content_type,
                                       {"Retry-After": "1"})
                self._success(content_type, rejected, reason)

            def _success(self, content_type: str, rejected: int, reason: str) -> None:
                if content_type == PROTOBUF:
                    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

                    response = ExportTraceServiceResponse()
                    if rejected:
                        response.partial_success.rejected_spans = rejected
                        response.partial_success.error_message = reason
                    return self._answer(HTTPStatus.OK, response.SerializeToString(), PROTOBUF)
                payload = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": reason}} if rejected else {}
                self._answer(HTTPStatus.OK, json.dumps(payload).encode(), JSON)

        return Handler


def serve(zone: LandingZone, config: TracesConfig, host: str, port: int, flush_seconds: float, max_batch_spans: int) -> None:
    """Run the receiver until SIGTERM or SIGINT, then land what was acknowledged and return."""
    import click

    receiver = Receiver(zone, config, host, port, flush_seconds, max_batch_spans).start()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    click.echo(f"receiving OTLP/HTTP traces on http://{host}:{receiver.port}/v1/traces (SIGTERM to stop)")
    done.wait()
    receiver.stop()
    click.echo(f"stopped; landed {receiver.landed_batches} batch(es)")
