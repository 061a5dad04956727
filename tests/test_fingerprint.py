"""Fingerprints: masking real and simulated exception messages in the warehouse, grouping rules, stability."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from metrics import fingerprint
from r2p import schema
from r2p.warehouse import Warehouse, rebuild
from samples import land_records, loaded_warehouse

UTC = dt.timezone.utc
SHARED_OTLP = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "otlp"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def failed_span(n: int, message: str, *, service: str = "erp-api", error_type: str | None = None,
                http: int | None = None, name: str = "POST /api/v1/purchase-orders", stage: str = "po_creation",
                facility: str = "NORTH-GENERAL", supplier: str | None = "S07") -> schema.Span:
    """An error span whose status message is ``message``."""
    start = START + dt.timedelta(minutes=n)
    return schema.Span(
        trace_id=f"{n + 1:032x}", span_id=f"{n + 1:016x}", name=name, kind="client", start_time=start,
        end_time=start + dt.timedelta(milliseconds=80), duration_ms=80.0, status_code="error", status_message=message,
        service_name=service, facility_id=facility, supplier_id=supplier, stage=stage, error_type=error_type,
        http_status_code=http, attributes="{}", resource_attributes=json.dumps({"service.name": service}),
    )


def exception_event(span: schema.Span, message: str, exception_type: str) -> schema.SpanEvent:
    return schema.SpanEvent(
        trace_id=span.trace_id, span_id=span.span_id, event_index=0, time=span.end_time, name="exception",
        attributes=json.dumps({"exception.type": exception_type, "exception.message": message}),
    )


def occurrences(data_dir: Path) -> dict[str, tuple[str, str, str]]:
    """occurrence_id -> (masked_message, error_codes, fingerprint), from a refreshed warehouse."""
    warehouse = Warehouse(data_dir)
    try:
        warehouse.refresh()
        rows = warehouse.reader().execute(
            "SELECT occurrence_id, masked_message, error_codes, fingerprint FROM fct_exception_occurrences"
        ).fetchall()
    finally:
        warehouse.close()
    return {row[0]: tuple(row[1:]) for row in rows}


def mask(data_dir: Path, messages: list[str]) -> list[str]:
    spans = [failed_span(n, message) for n, message in enumerate(messages)]
    land_records(data_dir, {"spans": spans}, name="masking")
    found = occurrences(data_dir)
    return [found[f"{span.trace_id}:{span.span_id}"][0] for span in spans]


def otlp_messages(path: Path) -> list[str]:
    """Every status message and exception.message in an OTLP/JSON file, in document order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            status = node.get("status")
            if isinstance(status, dict) and status.get("message"):
                found.append(status["message"])
            if node.get("key") == "exception.message":
                found.append(node["value"]["stringValue"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text()))
    return found


def test_rendered_rules_model_is_in_step_with_the_toml() -> None:
    assert fingerprint.MODEL.read_text() == fingerprint.render(fingerprint.load_config()), (
        "run: python -m metrics.fingerprint"
    )


@pytest.mark.skipif(not SHARED_OTLP.exists(), reason="needs ../shared/data/external/otlp beside the checkout")
def test_real_otlp_messages_have_nothing_to_mask(data_dir: Path) -> None:
    messages = otlp_messages(SHARED_OTLP / "otel-desktop-viewer_checkout_traces.json")
    messages += otlp_messages(SHARED_OTLP / "tempo_servicegraphs_trace-with-failed-requests.json")
    assert messages == [
        "Payment declined",
        "Card declined",
        "Card declined: insufficient funds",
        "Card declined: insufficient funds",
        'null value in column "name" of relation "illithid" violates not-null constraint',
    ]
    assert mask(data_dir, messages) == messages


def test_simulator_messages_and_ids_numbers_times_guids_are_masked(data_dir: Path) -> None:
    messages = [
        "429 Too Many Requests",
        "ORA-00060: deadlock detected",
        "Connection refused",
        "budget check timed out after 30 s",
        "vendor S07 is blocked for posting",
        "PO PO-2026-000123 for requisition REQ-000045 rejected at 2026-03-02T09:15:22.123Z "
        "(trace 4bf92f3577b34da6a3ce929d0e0e4736, correlation 123e4567-e89b-12d3-a456-426614174000) amount 1,250.50",
        "POST http://10.0.4.17:8443/api/v1/receipts failed for clerk jane.doe@north.example   after  3 retries",
        "  HTTP/1.1 503 Service Unavailable  ",
    ]
    assert mask(data_dir, messages) == [
        "<n> Too Many Requests",
        "<id>: deadlock detected",
        "Connection refused",
        "budget check timed out after <n> s",
        "vendor <id> is blocked for posting",
        "PO <id> for requisition <id> rejected at <time> (trace <hex>, correlation <guid>) amount <n>",
        "POST http://<ip>/api/<id>/receipts failed for clerk <email> after <n> retries",
        "HTTP/<n> <n> Service Unavailable",
    ]


def test_messages_differing_only_in_ids_share_a_group_and_codes_split_it(data_dir: Path) -> None:
    spans = [
        failed_span(0, "ORA-00060: deadlock detected while posting PO-000101", service="legacy-erp",
                    error_type="SoapFaultException"),
        failed_span(1, "ORA-00060: deadlock detected while posting PO-000977", service="legacy-erp",
                    error_type="SoapFaultException"),
        failed_span(2, "ORA-00001: unique constraint violated while posting PO-000101", service="legacy-erp",
                    error_type="SoapFaultException"),
    ]
    land_records(data_dir, {"spans": spans})
    found = {key: value for key, value in occurrences(data_dir).items()}
    first, second, third = (found[f"{s.trace_id}:{s.span_id}"] for s in spans)
    assert first[:2] == ("<id>: deadlock detected while posting <id>", "ORA-00060")
    assert first[2] == second[2] != third[2]
    assert third[1] == "ORA-00001"
    key = ("system=legacy-erp | stage=po_creation | error_type=SoapFaultException | error_codes=ORA-00060 | "
           "message=<id>: deadlock detected while posting <id>")
    assert first[2] == hashlib.sha256(f"default\n{key}".encode()).hexdigest()[:16]
    # behind a middleware adapter the operation (stage) no longer splits them: one group per error type and code
    adapter = [failed_span(10 + n, "ORA-00060: deadlock detected", service="legacy-erp-adapter",
                           error_type="SoapFaultException", stage=stage, http=500)
               for n, stage in enumerate(("po_creation", "receipt"))]
    land_records(data_dir, {"spans": adapter}, name="adapter")
    found = occurrences(data_dir)
    adapter_key = "system=legacy-erp-adapter | error_type=SoapFaultException | error_codes=ORA-00060"
    assert {found[f"{s.trace_id}:{s.span_id}"][2] for s in adapter} == {
        hashlib.sha256(f"adapter-faults-per-error-type\n{adapter_key}".encode()).hexdigest()[:16]}


def test_grouping_rules_merge_erp_5xx_per_endpoint_and_split_edi_rejections_per_supplier(data_dir: Path) -> None:
    spans = [
        failed_span(0, "upstream connect error", http=502),
        failed_span(1, "Service Unavailable", http=503),
        failed_span(2, "Service Unavailable", http=503, name="GET /api/v1/suppliers"),
        failed_span(3, "Service Unavailable", http=503, service="wms-north"),
    ]
    rejections = [
        schema.TransactionEvent(
            event_id=f"855-{n}", system="supplier-network", occurred_at=START + dt.timedelta(hours=n),
            object_type="po_ack", object_id=f"PO-{n:05d}", event_type="EDI_855_REJECTED", stage="supplier_ack",
            outcome="rejected", supplier_id=supplier, facility_id="NORTH-GENERAL", po_number=f"PO-{n:05d}",
            amount=Decimal("99.00"), attributes=json.dumps({"reason": "item discontinued"}),
        )
        for n, supplier in enumerate(("S03", "S03", "S11"))
    ]
    with loaded_warehouse(data_dir, {"spans": spans, "transaction_events": rejections}) as warehouse:
        groups = warehouse.reader().execute(
            "SELECT grouping_rule, group_key, occurrences FROM fct_exception_groups ORDER BY group_key"
        ).fetchall()
    assert groups == [
        ("edi-rejections-per-supplier",
         "source=edi_rejection | stage=supplier_ack | supplier_id=S03 | error_type=EDI_855_REJECTED", 2),
        ("edi-rejections-per-supplier",
         "source=edi_rejection | stage=supplier_ack | supplier_id=S11 | error_type=EDI_855_REJECTED", 1),
        ("erp-5xx-per-endpoint", "system=erp-api | endpoint=GET /api/v1/suppliers | http_status_class=5xx", 1),
        ("erp-5xx-per-endpoint", "system=erp-api | endpoint=POST /api/v1/purchase-orders | http_status_class=5xx", 2),
        ("default", "system=wms-north | stage=po_creation | error_type=HTTP 503 | error_codes= | "
                    "message=Service Unavailable", 1),
    ]


def test_exception_event_message_wins_over_status_and_fingerprints_survive_a_rebuild(data_dir: Path) -> None:
    span = failed_span(0, "status text", error_type=None)
    land_records(data_dir, {"spans": [span], "span_events": [exception_event(span, "Timeout after 30000 ms", "TimeoutError")]})
    before = occurrences(data_dir)
    assert list(before.values())[0][0] == "Timeout after <n> ms"
    rebuild(data_dir)
    assert occurrences(data_dir) == before
