"""Trace spans: made by the OpenTelemetry SDK, written by the OTLP/JSON file exporter.

Each simulated service has its own ``TracerProvider`` (resource ``service.name``), all sharing one
scripted ``IdGenerator`` that hands out the ids the walk drew, so ids are seeded and links made
before a span exists still point at it. Spans are started and ended with explicit times; a day's
spans are exported in batches of ``BATCH`` in end-time order, as a batch span processor would, by
``opentelemetry.exporter.otlp.json.file.FileSpanExporter``: one ``TracesData`` JSON object per line,
exactly the Collector file exporter's shape.
"""

from __future__ import annotations

import io
from pathlib import Path

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from simulator.spool import SpanSpec

BATCH = 128
SCOPE = "r2p.simulator"
SCOPE_VERSION = "0.1.0"
KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "producer": SpanKind.PRODUCER,
         "consumer": SpanKind.CONSUMER, "internal": SpanKind.INTERNAL}
SERVICE_VERSIONS = {"procurement-suite": "2025.1.3", "procurement-integration": "1.8.0", "erp-integration": "3.2.1",
                    "erp-api": "2502", "legacy-erp-adapter": "4.0.7", "edi-gateway": "6.1.0", "ap-platform": "2025.02"}


class _ScriptedIds(IdGenerator):
    """Returns the ids the walk chose for the span about to start."""

    trace_id = 0
    span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Collect(SpanProcessor):
    def __init__(self):
        self.ended = []

    def on_end(self, span) -> None:
        self.ended.append(span)


class OtlpWriter:
    """Writes ``traces/spans-YYYY-MM-DD.jsonl``; one instance per run."""

    def __init__(self, out_dir: Path, environment: str = "demo"):
        self.directory = out_dir / "traces"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ids = _ScriptedIds()
        self.collect = _Collect()
        self.environment = environment
        self.tracers: dict[str, object] = {}
        # Explicit limits, so OTEL_* environment variables cannot change the output.
        self.limits = SpanLimits(max_attributes=128, max_events=128, max_links=128, max_event_attributes=128,
                                 max_link_attributes=128, max_attribute_length=None)

    def tracer(self, service: str):
        tracer = self.tracers.get(service)
        if tracer is None:
            resource = Resource({"service.name": service, "service.version": SERVICE_VERSIONS.get(service, "1.0.0"),
                                 "service.namespace": "r2p", "deployment.environment.name": self.environment})
            provider = TracerProvider(resource=resource, id_generator=self.ids, span_limits=self.limits)
            provider.add_span_processor(self.collect)
            tracer = self.tracers[service] = provider.get_tracer(SCOPE, SCOPE_VERSION)
        return tracer

    def make(self, spec: SpanSpec) -> None:
        """Start and end one SDK span from its spec (it lands in ``self.collect``)."""
        context = None
        if spec.parent_id is not None:
            parent = SpanContext(spec.trace_id, spec.parent_id, is_remote=spec.parent_remote,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))
            context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent))
        links = [Link(SpanContext(t, s, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
                 for t, s in spec.links]
        self.ids.trace_id, self.ids.span_id = spec.trace_id, spec.span_id
        span = self.tracer(spec.service).start_span(spec.name, context=context, kind=KINDS[spec.kind],
                                                    attributes=spec.attributes, links=links,
                                                    start_time=spec.start * 1000)
        if spec.error is not None:
            error_type, message, stacktrace = spec.error
            span.add_event("exception", {"exception.type": error_type, "exception.message": message,
                                         "exception.stacktrace": stacktrace}, timestamp=spec.end * 1000 - 1000)
            span.set_status(Status(StatusCode.ERROR, message))
        span.end(end_time=spec.end * 1000)

    def write_day(self, path_date: str, specs: list[SpanSpec], duplicate: bool, truncate_first: bool) -> dict:
        """Export one day's spans; returns counts (spans, lines, duplicate lines, broken line number)."""
        specs.sort(key=lambda spec: spec.end)
        path = self.directory / f"spans-{path_date}.jsonl"
        stats = {"spans": len(specs), "lines": 0, "duplicate_lines": 0, "truncated_line": None}
        buffer = io.StringIO()
        exporter = FileSpanExporter(stream=buffer)
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for offset in range(0, len(specs), BATCH):
                for spec in specs[offset:offset + BATCH]:
                    self.make(spec)
                exporter.export(self.collect.ended)
                self.collect.ended = []
                line = buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if truncate_first and offset == 0:
                    # A write cut short (disk full, crash), then the retry: the first copy is broken.
                    out.write(line[: len(line) // 2] + "\n")
                    stats["lines"] += 1
                    stats["truncated_line"] = stats["lines"]
                out.write(line)
                stats["lines"] += 1
                if duplicate and (offset // BATCH) % 5 == 0:
                    # The exporter timed out waiting for the ack and sent the batch again.
                    out.write(line)
                    stats["lines"] += 1
                    stats["duplicate_lines"] += 1
        exporter.shutdown()
        return stats


_worker_writer: OtlpWriter | None = None


def write_day_in_worker(out_dir: Path, path_date: str, specs: list[SpanSpec], duplicate: bool,
                        truncate_first: bool) -> dict:
    """``OtlpWriter.write_day`` in a worker process (one writer per process, made on first use)."""
    global _worker_writer
    if _worker_writer is None or _worker_writer.directory != out_dir / "traces":
        _worker_writer = OtlpWriter(out_dir)
    return _worker_writer.write_day(path_date, specs, duplicate, truncate_first)
