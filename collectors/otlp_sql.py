"""OTLP/JSON documents to canonical span, event, link and reject rows, in DuckDB SQL.

Input: a table of documents ``(doc_id BIGINT, line BIGINT, byte_offset BIGINT, doc VARCHAR)``, each an OTLP/JSON
``TracesData`` / ``ExportTraceServiceRequest`` (a file-exporter line, a whole file, a decoded
protobuf message, an HTTP request body). ``transform_chunk`` parses them with ``json_transform``
against one explicit schema, unnests resources, scopes and spans, normalises the encoding quirks
(hex in any case or base64 ids, 64-bit integers as strings or numbers, enums as numbers or names,
omitted defaults, every AnyValue kind, the legacy ``instrumentationLibrarySpans`` key, Tempo's
``batches`` and Jaeger's ``result`` wrappers), maps business keys, redacts, and writes the tables
``<prefix>_spans``, ``<prefix>_events``, ``<prefix>_links`` and ``<prefix>_rejects``, shaped as the
canonical tables (without ``batch_id``) so ``land_chunk`` hands them to the landing writer as is.

Business keys are inherited from the parent span when the parent is in the same chunk (one file up
to the chunk size, one receiver batch): the join runs over the chunk, not across chunks or batches.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from collectors import redaction
from collectors.otlp_config import TracesConfig
from collectors.redaction import Redactor, sql_literal
from r2p.landing import BatchWriter
from r2p.schema import BUSINESS_COLUMNS

_ANY_VALUE = (
    '{"stringValue":"VARCHAR","boolValue":"BOOLEAN","intValue":"BIGINT","doubleValue":"DOUBLE",'
    '"bytesValue":"VARCHAR","arrayValue":"JSON","kvlistValue":"JSON"}'
)
_ATTRIBUTES = f'[{{"key":"VARCHAR","value":{_ANY_VALUE}}}]'
_SCOPE = f'{{"name":"VARCHAR","version":"VARCHAR","attributes":{_ATTRIBUTES}}}'
_SPAN = (
    '{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","traceState":"VARCHAR","flags":"BIGINT",'
    '"name":"VARCHAR","kind":"VARCHAR","startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR",'
    f'"attributes":{_ATTRIBUTES},'
    f'"events":[{{"timeUnixNano":"VARCHAR","name":"VARCHAR","attributes":{_ATTRIBUTES}}}],'
    f'"links":[{{"traceId":"VARCHAR","spanId":"VARCHAR","traceState":"VARCHAR","attributes":{_ATTRIBUTES}}}],'
    '"status":{"code":"VARCHAR","message":"VARCHAR"}}'
)
_SCOPE_SPANS = f'{{"scope":{_SCOPE},"instrumentationLibrary":{_SCOPE},"spans":[{_SPAN}]}}'
_RESOURCE_SPANS = (
    f'{{"resource":{{"attributes":{_ATTRIBUTES}}},"scopeSpans":[{_SCOPE_SPANS}],'
    f'"instrumentationLibrarySpans":[{_SCOPE_SPANS}]}}'
)
DOCUMENT_TYPE = (
    f'{{"resourceSpans":[{_RESOURCE_SPANS}],"batches":[{_RESOURCE_SPANS}],'
    f'"result":{{"resourceSpans":[{_RESOURCE_SPANS}]}}}}'
)
"""The json_transform schema of one OTLP/JSON traces document (unknown fields are ignored)."""

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")


def _enum_map(names: tuple[str, ...], prefix: str) -> str:
    entries = [f"'{index}': '{name}'" for index, name in enumerate(names)]
    entries += [f"'{prefix}{name.upper()}': '{name}'" for name in names]
    return "MAP {" + ", ".join(entries) + "}"


def _plain_value(value: Any, redactor: Redactor) -> Any:
    """An OTLP AnyValue (JSON form) as a plain JSON value; kvlist keys are redacted like attributes."""
    if not isinstance(value, dict):
        return value
    if "arrayValue" in value:
        return [_plain_value(item, redactor) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return {
            entry.get("key", ""): (
                redactor.config.redacted_value
                if redactor.key_redacted(entry.get("key", ""))
                else _plain_value(entry.get("value"), redactor)
            )
            for entry in (value["kvlistValue"] or {}).get("values", [])
        }
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    for kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if kind in value:
            return value[kind]
    return None


def install(con: duckdb.DuckDBPyConnection, config: TracesConfig) -> None:
    """Create the macros and the one Python function the transform uses, on ``con``'s database."""
    redaction.install_macros(con, config.redaction)
    redactor = Redactor(config.redaction)

    def nested_json(array_json: str | None, kvlist_json: str | None) -> str:
        if array_json is not None:
            value = {"arrayValue": json.loads(array_json)}
        else:
            value = {"kvlistValue": json.loads(kvlist_json)}
        return json.dumps(_plain_value(value, redactor), separators=(",", ":"), allow_nan=False, default=str)

    try:
        con.remove_function("otlp_nested_json")
    except duckdb.InvalidInputException:
        pass
    con.create_function(
        "otlp_nested_json", nested_json, ["VARCHAR", "VARCHAR"], "VARCHAR", null_handling="special", side_effects=False
    )
    macros = [
        # 32/16 hex digits in any case, else standard base64 of exactly n bytes; NULL when neither.
        "otlp_id(id, n) AS CASE "
        "WHEN length(id) = 2 * n AND NOT regexp_matches(id, '[^0-9A-Fa-f]') THEN lower(id) "
        "WHEN length(id) = 4 * ((n + 2) // 3) AND octet_length(try(from_base64(id))) = n "
        "THEN lower(hex(try(from_base64(id)))) END",
        f"otlp_kind(k) AS CASE WHEN k IS NULL THEN 'unspecified' ELSE {_enum_map(_KINDS, 'SPAN_KIND_')}[upper(k)] END",
        f"otlp_status(c) AS CASE WHEN c IS NULL THEN 'unset' ELSE {_enum_map(_STATUSES, 'STATUS_CODE_')}[upper(c)] END",
        # Proto3: an absent integer is 0; a present one that is not an integer is NULL (rejected).
        "otlp_nanos(ns) AS CASE WHEN ns IS NULL THEN 0 ELSE try_cast(ns AS BIGINT) END",
        "otlp_time(ns) AS make_timestamp(otlp_nanos(ns) // 1000)",
        "otlp_value(v) AS CASE "
        "WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue) "
        "WHEN v.intValue IS NOT NULL THEN CAST(v.intValue AS VARCHAR) "
        "WHEN v.boolValue IS NOT NULL THEN CASE WHEN v.boolValue THEN 'true' ELSE 'false' END "
        "WHEN v.doubleValue IS NOT NULL THEN CASE WHEN isfinite(v.doubleValue) THEN CAST(v.doubleValue AS VARCHAR) "
        "ELSE to_json(CAST(v.doubleValue AS VARCHAR)) END "
        "WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue) "
        "WHEN v.arrayValue IS NOT NULL OR v.kvlistValue IS NOT NULL "
        "THEN otlp_nested_json(CAST(v.arrayValue AS VARCHAR), CAST(v.kvlistValue AS VARCHAR)) "
        "ELSE 'null' END",
        "otlp_text(v) AS coalesce(v.stringValue, CAST(v.intValue AS VARCHAR), CAST(v.doubleValue AS VARCHAR), "
        "CAST(v.boolValue AS VARCHAR), v.bytesValue)",
        # The attribute list as one JSON object text, keys in `leave_out` dropped (NULL entries are
        # skipped by array_to_string), redacted keys replaced, then masked.
        "otlp_attrs_except(attrs, leave_out) AS phi_mask('{' || coalesce(array_to_string(list_transform(coalesce(attrs, []), "
        "lambda a: CASE WHEN list_contains(leave_out, a.key) THEN NULL ELSE "
        "to_json(coalesce(a.key, '')) || ':' || CASE WHEN phi_key_redacted(coalesce(a.key, '')) "
        f"THEN {sql_literal(json.dumps(config.redaction.redacted_value))} ELSE otlp_value(a.value) END END), ','), '') || '}}')",
        "otlp_attrs(attrs) AS otlp_attrs_except(attrs, [])",
        "otlp_find(attrs, k) AS list_filter(attrs, lambda a: a.key = k)[1].value",
    ]
    for macro in macros:
        con.execute(f"CREATE OR REPLACE MACRO {macro}")


def _lookup(config: TracesConfig, keys: list[str], attrs: str, as_int: bool = False) -> str:
    """SQL of the first of ``keys`` present in ``attrs`` as text (or BIGINT), redacted as configured."""
    redactor = Redactor(config.redaction)
    found = []
    for key in keys:
        if redactor.key_redacted(key):
            if not as_int:
                found.append(f"CASE WHEN otlp_find({attrs}, {sql_literal(key)}) IS NOT NULL "
                             f"THEN {sql_literal(config.redaction.redacted_value)} END")
            continue
        value = f"otlp_find({attrs}, {sql_literal(key)})"
        found.append(f"coalesce({value}.intValue, try_cast({value}.stringValue AS BIGINT))" if as_int
                     else f"phi_mask(otlp_text({value}))")
    return f"coalesce({', '.join(found)})" if found else "NULL"


def _in_list(keys: list[str]) -> str:
    return "(" + ", ".join(sql_literal(key) for key in keys) + ")"


def transform_chunk(cur: duckdb.DuckDBPyConnection, config: TracesConfig, prefix: str, docs: str, input_name: str) -> None:
    """Turn the documents table ``docs`` into ``<prefix>_spans/_events/_links/_rejects`` (see module doc)."""
    p = prefix
    mapped = config.mapped_keys()
    business = [column for column in BUSINESS_COLUMNS if config.business.get(column)]
    resource_business = ", ".join(
        f"CASE WHEN len(res_biz) > 0 THEN {_lookup(config, config.business[column], 'res_biz')} END AS res_{column}"
        for column in business
    )
    span_business = ", ".join(
        f"coalesce(CASE WHEN len(span_biz) > 0 THEN {_lookup(config, config.business[column], 'span_biz')} END, "
        f"res_{column}) AS {column}"
        for column in business
    )
    mapped_list = "[" + ", ".join(sql_literal(key) for key in mapped) + "]::VARCHAR[]"
    pulled = [*mapped, *config.standard.error_type, *config.standard.http_status_code]
    # One pass picks every attribute a column is read from; the lookups then scan that short list.
    pull = "list_filter(coalesce({attrs}, []), lambda a: a.key IN " + _in_list(pulled) + ")"
    exception_type = Redactor(config.redaction).key_redacted("exception.type")
    exception_type_sql = (
        sql_literal(config.redaction.redacted_value) if exception_type
        else "CASE WHEN len(s.events) > 0 THEN phi_mask(otlp_text(otlp_find(list_filter(s.events, "
        "lambda e: e.name = 'exception')[1].attributes, 'exception.type'))) END"
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_parsed AS
        SELECT doc_id, line, byte_offset, d IS NOT NULL AS valid_json,
               coalesce(d.resourceSpans, d.batches, d.result.resourceSpans) AS resource_spans
        FROM (SELECT doc_id, line, byte_offset, try(json_transform(doc, '{DOCUMENT_TYPE}')) AS d FROM {docs})
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_all AS
        WITH resources AS (
            SELECT line, byte_offset, unnest(resource_spans) AS rs FROM {p}_parsed WHERE resource_spans IS NOT NULL
        ), scopes AS (
            SELECT line, byte_offset,
                   otlp_attrs(rs.resource.attributes) AS resource_attributes,
                   phi_mask(otlp_text(otlp_find(rs.resource.attributes, 'service.name'))) AS service_name,
                   {pull.format(attrs='rs.resource.attributes')} AS res_biz,
                   unnest(list_concat(coalesce(rs.scopeSpans, []), coalesce(rs.instrumentationLibrarySpans, []))) AS ss
            FROM resources
        ), scoped AS (
            SELECT line, byte_offset, resource_attributes, service_name, {resource_business}{',' if business else ''}
                   coalesce(ss.scope, ss.instrumentationLibrary) AS scope, ss.spans AS spans
            FROM scopes
        ), spans AS (
            SELECT * EXCLUDE (scope, spans),
                   phi_mask(scope.name) AS scope_name, phi_mask(scope.version) AS scope_version,
                   CASE WHEN scope.attributes IS NOT NULL THEN otlp_attrs(scope.attributes) END AS scope_attributes,
                   unnest(spans) AS s
            FROM scoped
        ), decoded AS (
            SELECT *,
                   otlp_id(s.traceId, 16) AS trace_id,
                   otlp_id(s.spanId, 8) AS span_id,
                   CASE WHEN coalesce(s.parentSpanId, '') <> '' THEN otlp_id(s.parentSpanId, 8) END AS parent_span_id,
                   otlp_kind(s.kind) AS kind,
                   otlp_status(s.status.code) AS status_code,
                   {pull.format(attrs='s.attributes')} AS span_biz
            FROM spans
        )
        SELECT line, byte_offset,
               -- only what rejects need: carrying the whole span costs a copy
               struct_pack(traceId := s.traceId, spanId := s.spanId, parentSpanId := s.parentSpanId, kind := s.kind,
                           status := s.status, startTimeUnixNano := s.startTimeUnixNano,
                           endTimeUnixNano := s.endTimeUnixNano) AS s,
               trace_id, span_id, parent_span_id, s.traceState AS trace_state, s.flags AS flags,
               phi_mask(coalesce(s.name, '')) AS name, kind,
               otlp_time(s.startTimeUnixNano) AS start_time, otlp_time(s.endTimeUnixNano) AS end_time,
               (otlp_nanos(s.endTimeUnixNano) - otlp_nanos(s.startTimeUnixNano)) / 1e6 AS duration_ms,
               status_code, phi_mask(nullif(s.status.message, '')) AS status_message,
               service_name, scope_name, scope_version,
               {span_business}{',' if business else ''}
               coalesce(CASE WHEN len(span_biz) > 0 THEN {_lookup(config, config.standard.error_type, 'span_biz')} END,
                        {exception_type_sql}) AS error_type,
               CASE WHEN len(span_biz) > 0 THEN {_lookup(config, config.standard.http_status_code, 'span_biz', as_int=True)} END
                   AS http_status_code,
               otlp_attrs_except(s.attributes, {mapped_list}) AS attributes,
               resource_attributes, scope_attributes,
               concat_ws('; ',
                   CASE WHEN trace_id IS NULL THEN 'traceId ' || coalesce('''' || left(s.traceId, 40) || '''', 'missing')
                        || ' is not 32 hex digits nor base64 of 16 bytes' END,
                   CASE WHEN span_id IS NULL THEN 'spanId ' || coalesce('''' || left(s.spanId, 40) || '''', 'missing')
                        || ' is not 16 hex digits nor base64 of 8 bytes' END,
                   CASE WHEN coalesce(s.parentSpanId, '') <> '' AND parent_span_id IS NULL
                        THEN 'parentSpanId ''' || left(s.parentSpanId, 40) || ''' is not 16 hex digits nor base64 of 8 bytes' END,
                   CASE WHEN kind IS NULL THEN 'unknown span kind ''' || left(s.kind, 40) || '''' END,
                   CASE WHEN status_code IS NULL THEN 'unknown status code ''' || left(s.status.code, 40) || '''' END,
                   CASE WHEN otlp_nanos(s.startTimeUnixNano) IS NULL
                        THEN 'startTimeUnixNano ''' || left(s.startTimeUnixNano, 40) || ''' is not an integer' END,
                   CASE WHEN otlp_nanos(s.endTimeUnixNano) IS NULL
                        THEN 'endTimeUnixNano ''' || left(s.endTimeUnixNano, 40) || ''' is not an integer' END,
                   CASE WHEN len(s.events) > 0 THEN CASE WHEN list_bool_or(list_transform(s.events,
                        lambda e: otlp_nanos(e.timeUnixNano) IS NULL)) THEN 'an event timeUnixNano is not an integer' END END,
                   CASE WHEN len(s.links) > 0 THEN CASE WHEN list_bool_or(list_transform(s.links,
                        lambda l: otlp_id(l.traceId, 16) IS NULL OR otlp_id(l.spanId, 8) IS NULL))
                        THEN 'a link has an invalid traceId or spanId' END END
               ) AS reason
        FROM decoded
        """
    )
    span_columns = (
        "trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time, duration_ms, "
        "status_code, status_message, service_name, scope_name, scope_version, "
        + "".join(f"{column}, " for column in business)
        + "error_type, http_status_code, attributes, resource_attributes, scope_attributes"
    )
    cur.execute(f"CREATE OR REPLACE TABLE {p}_spans AS SELECT {span_columns} FROM {p}_all WHERE reason = ''")
    _inherit(cur, f"{p}_spans", business)
    # Events and links unnest the parsed documents again (cheaper than carrying them through the
    # span query) and keep only those of accepted spans.
    span_source = f"""
        SELECT unnest(ss.spans) AS s FROM (
            SELECT unnest(list_concat(coalesce(rs.scopeSpans, []), coalesce(rs.instrumentationLibrarySpans, []))) AS ss
            FROM (SELECT unnest(resource_spans) AS rs FROM {p}_parsed WHERE resource_spans IS NOT NULL))
    """
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_events AS
        SELECT trace_id, span_id, event_index - 1 AS event_index, otlp_time(e.timeUnixNano) AS time,
               phi_mask(coalesce(e.name, '')) AS name, otlp_attrs(e.attributes) AS attributes
        FROM (SELECT otlp_id(s.traceId, 16) AS trace_id, otlp_id(s.spanId, 8) AS span_id,
                     unnest(s.events) AS e, generate_subscripts(s.events, 1) AS event_index
              FROM ({span_source}) WHERE len(s.events) > 0)
        SEMI JOIN {p}_spans USING (trace_id, span_id)
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_links AS
        SELECT trace_id, span_id, link_index - 1 AS link_index,
               otlp_id(l.traceId, 16) AS linked_trace_id, otlp_id(l.spanId, 8) AS linked_span_id,
               l.traceState AS trace_state, otlp_attrs(l.attributes) AS attributes
        FROM (SELECT otlp_id(s.traceId, 16) AS trace_id, otlp_id(s.spanId, 8) AS span_id,
                     unnest(s.links) AS l, generate_subscripts(s.links, 1) AS link_index
              FROM ({span_source}) WHERE len(s.links) > 0)
        SEMI JOIN {p}_spans USING (trace_id, span_id)
        """
    )
    input_literal = sql_literal(input_name)
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_rejects AS
        SELECT {input_literal} AS input, d.line, d.byte_offset, NULL AS field,
               CASE WHEN NOT p.valid_json THEN 'not valid JSON (or not an object)'
                    ELSE 'not OTLP traces: no resourceSpans' END AS reason,
               phi_scrub_raw(d.doc) AS raw
        FROM {p}_parsed p JOIN {docs} d USING (doc_id)
        WHERE p.resource_spans IS NULL
        UNION ALL
        SELECT {input_literal}, line, byte_offset, 'span', 'span rejected: ' || reason,
               phi_mask(json_object(
                   'traceId', s.traceId, 'spanId', s.spanId, 'parentSpanId', s.parentSpanId, 'name', name,
                   'kind', s.kind, 'startTimeUnixNano', s.startTimeUnixNano, 'endTimeUnixNano', s.endTimeUnixNano,
                   'status', json_object('code', s.status.code, 'message', status_message),
                   'attributes', CAST(attributes AS JSON), 'resource', CAST(resource_attributes AS JSON)
               ))
        FROM {p}_all WHERE reason <> ''
        """
    )
    cur.execute(f"DROP TABLE {p}_parsed")
    cur.execute(f"DROP TABLE {p}_all")


def _inherit(cur: duckdb.DuckDBPyConnection, table: str, business: list[str]) -> None:
    """Fill a span's missing business columns from its parent's, repeated until nothing changes."""
    if not business:
        return
    assignments = ", ".join(f"{column} = coalesce(c.{column}, p.{column})" for column in business)
    gains = " OR ".join(f"(c.{column} IS NULL AND p.{column} IS NOT NULL)" for column in business)
    for _ in range(256):  # bounded by trace depth; the bound only guards against parent cycles
        changed = cur.execute(
            f"UPDATE {table} AS c SET {assignments} FROM {table} AS p "
            f"WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id AND ({gains})"
        ).fetchall()[0][0]
        if not changed:
            return


CHUNK_TABLES = (("spans", "spans"), ("span_events", "events"), ("span_links", "links"))


def land_chunk(writer: BatchWriter, config: TracesConfig, prefix: str) -> None:
    """Hand a transformed chunk's tables to the landing writer, count its redactions, drop them."""
    con = writer.con
    redacted = writer.notes.setdefault("redacted", {})
    text_columns = {
        "spans": ["attributes", "resource_attributes", "scope_attributes", "name", "status_message", "error_type",
                  "service_name", *(column for column in BUSINESS_COLUMNS if config.business.get(column))],
        "events": ["attributes", "name"],
        "links": ["attributes"],
        "rejects": ["raw"],
    }
    for suffix, columns in text_columns.items():
        counts = con.execute(f"SELECT {redaction.count_sql(config.redaction, columns)} FROM {prefix}_{suffix}")
        names = [description[0] for description in counts.description]
        for name, count in zip(names, counts.fetchall()[0]):
            if count:
                redacted[name] = redacted.get(name, 0) + int(count)
    for table, suffix in CHUNK_TABLES:
        relation = con.table(f"{prefix}_{suffix}")
        if relation.shape[0]:
            writer.add(table, relation)
    rejects = con.table(f"{prefix}_rejects")
    if rejects.shape[0]:
        writer.add_rejects(rejects)
    for suffix in ("spans", "events", "links", "rejects"):
        con.execute(f"DROP TABLE {prefix}_{suffix}")
