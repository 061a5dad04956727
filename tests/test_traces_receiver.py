"""Trace collector, OTLP/HTTP receiver: the real SDK exporter, spec status codes, shutdown."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collectors import otlp_receiver
from collectors.otlp_config import load_config
from collectors.otlp_receiver import Receiver
from r2p.landing import LandingZone
from samples import warehouse_rows

SPAN = {"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "B7AD6B7169203331", "name": "GET /po",
        "kind": 2, "startTimeUnixNano": "1790000000000000000", "endTimeUnixNano": "1790000000500000000",
        "attributes": [{"key": "procurement.po.number", "value": {"stringValue": "PO-77"}}]}
REQUEST = json.dumps({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "erp-gateway"}}]}, "scopeSpans": [{"spans": [SPAN]}]}]}).encode()


@pytest.fixture
def receiver(tmp_path):
    running = Receiver(LandingZone(tmp_path), load_config(), port=0, flush_seconds=0.2).start()
    yield running
    if not running.stopping.is_set():
        running.stop()


def post(port: int, body: bytes, content_type: str = "application/json", **headers: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_sdk_exporter_round_trip_preserves_every_attribute(tmp_path, receiver):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "procurement-adapter", "deployment.env": "test"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces")))
    tracer = provider.get_tracer("r2p.tests", "2.0")
    attributes = {"procurement.po.number": "PO-1001", "procurement.facility.id": "NORTH-GENERAL",
                  "http.response.status_code": 503, "retry.count": 3, "amount": 1234.5, "urgent": True,
                  "lines": ["A", "B"], "qty": [1, 2], "patient.mrn": "00123456"}
    with tracer.start_as_current_span("create PO", attributes=attributes) as root:
        with tracer.start_as_current_span("POST /erp/po", kind=SpanKind.CLIENT) as child:
            child.record_exception(ValueError("ERP refused SSN 123-45-6789"))
            child.set_status(Status(StatusCode.ERROR, "ERP 503"))
        trace_id = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()
    receiver.stop()
    spans = warehouse_rows(tmp_path, "SELECT name, kind, status_code, status_message, po_number, facility_id, "
                           "http_status_code, error_type, attributes, resource_attributes, scope_name, scope_version, "
                           "trace_id FROM spans ORDER BY name")
    child_row, root_row = spans
    assert root_row[:8] == ("create PO", "internal", "unset", None, "PO-1001", "NORTH-GENERAL", 503, None)
    assert json.loads(root_row[8]) == {"http.response.status_code": 503, "retry.count": 3, "amount": 1234.5,
                                       "urgent": True, "lines": ["A", "B"], "qty": [1, 2], "patient.mrn": "[REDACTED]"}
    assert json.loads(root_row[9])["deployment.env"] == "test"
    assert root_row[10:] == ("r2p.tests", "2.0", trace_id)
    assert child_row[:8] == ("POST /erp/po", "client", "error", "ERP 503", "PO-1001", "NORTH-GENERAL", None, "ValueError")
    [(event_name, event_attributes)] = warehouse_rows(tmp_path, "SELECT name, attributes FROM span_events")
    assert event_name == "exception"
    assert json.loads(event_attributes)["exception.message"] == "ERP refused SSN [SSN]"


def test_json_request_gzip_and_the_same_request_twice(tmp_path, receiver):
    assert post(receiver.port, REQUEST)[0] == 200
    status, _, body = post(receiver.port, gzip.compress(REQUEST), **{"Content-Encoding": "gzip"})
    assert (status, json.loads(body)) == (200, {})
    receiver.stop()
    assert warehouse_rows(tmp_path, "SELECT trace_id, span_id, po_number, service_name, duration_ms FROM spans") == [
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "PO-77", "erp-gateway", 500.0)]


def test_status_codes(receiver, monkeypatch):
    assert post(receiver.port, b"hello", "text/plain")[0] == 415
    assert post(receiver.port, b"{not json")[0] == 400
    assert post(receiver.port, b"\xff\x01garbage", "application/x-protobuf")[0] == 400
    assert post(receiver.port, b"\x1f\x8bnot gzip", **{"Content-Encoding": "gzip"})[0] == 400
    bad = json.loads(REQUEST)
    bad["resourceSpans"][0]["scopeSpans"][0]["spans"].append({**SPAN, "spanId": "xyz", "name": "bad"})
    status, _, body = post(receiver.port, json.dumps(bad).encode())
    assert (status, json.loads(body)) == (200, {"partialSuccess": {"rejectedSpans": "1",
                                                                   "errorMessage": "span 'bad': invalid spanId"}})
    monkeypatch.setattr(otlp_receiver, "MAX_BODY_BYTES", 100)
    assert post(receiver.port, REQUEST)[0] == 413
    monkeypatch.setattr(otlp_receiver, "MAX_BODY_BYTES", 1 << 20)
    receiver.max_pending_spans = 0
    status, headers, _ = post(receiver.port, REQUEST)
    assert (status, headers["Retry-After"]) == (503, "1")


def test_partial_success_in_protobuf(receiver):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 3, "short id"
    status, _, body = post(receiver.port, request.SerializeToString(), "application/x-protobuf")
    response = ExportTraceServiceResponse.FromString(body)
    assert (status, response.partial_success.rejected_spans) == (200, 1)


def test_sigterm_lands_acknowledged_spans(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "r2p", "--data-dir", str(tmp_path), "receive", "--port", str(port), "--flush-seconds", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
    )
    try:
        for _ in range(100):
            try:
                status = post(port, REQUEST)[0]
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 200
        assert not list((tmp_path / "landing" / "spans").rglob("*.parquet"))  # acknowledged, not yet landed
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "landed 1 batch(es)" in out
    assert len(list((tmp_path / "landing" / "spans").rglob("*.parquet"))) == 1
