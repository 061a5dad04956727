"""OTLP/JSON documents to canonical span, event, link and reject rows, in DuckDB SQL.

Input: a table of documents ``(doc_id BIGINT, line BIGINT, byte_offset BIGINT, doc VARCHAR)``, each an OTLP/JSON
``TracesData`` / ``ExportTraceServiceRequest`` (a file-exporter line, a whole file, a decoded
protobuf message, an HTTP request body). ``transform_chunk`` parses them with ``json_transform``
against an explicit schema (a plain one, the full one only for documents that may need it),
unnests resources, scopes and spans, normalises the encoding quirks
(hex in any case or base64 ids, 64-bit integers as strings or numbers, enums as numbers or names,
omitted defaults, every AnyValue kind, the legacy ``instrumentationLibrarySpans`` key, Tempo's
``batches`` and Jaeger's ``result`` wrappers), maps business keys, redacts, and writes the tables
``<prefix>_spans``, ``<prefix>_events``, ``<prefix>_links`` and ``<prefix>_rejects``, shaped as the
canonical tables (without ``batch_id``) so ``land_chunk`` hands them to the landing writer as is.

A span lacking a business key takes its parent's when the warehouse loads it (``Warehouse``), where
every span of the trace is, whichever batch brought it: the landed rows carry the span's and its
resource's keys only.
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
PLAIN_DOCUMENT_TYPE = (
    f'{{"resourceSpans":[{{"resource":{{"attributes":{_ATTRIBUTES}}},'
    f'"scopeSpans":[{{"scope":{_SCOPE},"spans":[{_SPAN}]}}]}}]}}'
)
"""The schema of a document in the current encoding: no legacy keys, no Tempo / Jaeger wrapper.

Choosing between the alternatives of ``DOCUMENT_TYPE`` copies every span (DuckDB's ``coalesce``
of nested lists), which costs a fifth of the parse; most documents need none of them, so they are
parsed with this schema, and only documents that may use the legacy keys (by their text) or gave
no span this way are parsed with ``DOCUMENT_TYPE``."""
MAY_NEED_FULL_SCHEMA = "contains(doc, 'instrumentationLibrary') OR contains(doc, '\\u')"
"""Documents the plain schema could misread: legacy keys, or a JSON escape that might spell one."""

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
        "otlp_number(v) AS coalesce(v.intValue, try_cast(v.stringValue AS BIGINT))",
        "otlp_text(v) AS coalesce(v.stringValue, CAST(v.intValue AS VARCHAR), CAST(v.doubleValue AS VARCHAR), "
        "CAST(v.boolValue AS VARCHAR), v.bytesValue)",
        # The attribute list as one JSON object text, keys in `leave_out` dropped (NULL entries are
        # skipped by array_to_string), redacted keys replaced; not yet masked (phi_mask it).
        "otlp_attrs_except(attrs, leave_out) AS '{' || coalesce(array_to_string(list_transform(coalesce(attrs, []), "
        "lambda a: CASE WHEN list_contains(leave_out, a.key) THEN NULL ELSE "
        "to_json(coalesce(a.key, '')) || ':' || CASE WHEN phi_key_redacted(coalesce(a.key, '')) "
        f"THEN {sql_literal(json.dumps(config.redaction.redacted_value))} ELSE otlp_value(a.value) END END), ','), '') || '}}'",
        "otlp_attrs(attrs) AS otlp_attrs_except(attrs, [])",
    ]
    for macro in macros:
        con.execute(f"CREATE OR REPLACE MACRO {macro}")


class _Lookups:
    """Attribute values looked up by key: a business, service or standard column takes the value of
    the first of its keys present in an attribute list.

    Three projections, one above the other: ``picked`` keeps the attributes of the looked-up keys
    (one pass over the list); ``lists`` splits them into keys, masked texts and numbers; ``text`` and
    ``number`` then find each key with ``list_position``, which costs a fraction of a ``list_filter``
    lambda per key. A redacted key gives the redacted token as text (not masked), and no number.
    """

    def __init__(self, config: TracesConfig, keys: list[str], prefix: str):
        self.config = config
        self.redactor = Redactor(config.redaction)
        self.keys = list(dict.fromkeys(keys))
        self.prefix = prefix

    def picked(self, attributes: str) -> str:
        """Select item of the attributes of ``attributes`` whose key is looked up: ``<prefix>picked``."""
        wanted = f"a.key IN ({', '.join(sql_literal(key) for key in self.keys)})" if self.keys else "false"
        return f"list_filter({attributes}, lambda a: {wanted}) AS {self.prefix}picked"

    def lists(self) -> str:
        """Select items of the lists the lookups read, from the column ``picked`` selected below."""
        p = self.prefix
        return (
            f"list_transform({p}picked, lambda a: a.key) AS {p}keys, "
            f"list_transform({p}picked, lambda a: phi_mask(otlp_text(a.value))) AS {p}texts, "
            f"list_transform({p}picked, lambda a: otlp_number(a.value)) AS {p}numbers"
        )

    def _found(self, keys: list[str], field: str) -> list[str]:
        found = []
        for key in keys:
            position = f"list_position({self.prefix}keys, {sql_literal(key)})"
            if not self.redactor.key_redacted(key):
                found.append(f"{self.prefix}{field}[{position}]")
            elif field == "texts":
                found.append(f"CASE WHEN {position} IS NOT NULL THEN {sql_literal(self.config.redaction.redacted_value)} END")
        return found

    def text(self, keys: list[str]) -> str:
        """SQL of the masked text of the first of ``keys`` present that has one."""
        found = self._found(keys, "texts")
        return f"coalesce({', '.join(found)})" if found else "NULL"

    def number(self, keys: list[str]) -> str:
        """SQL of the integer value of the first of ``keys`` present that has one."""
        found = self._found(keys, "numbers")
        return f"coalesce({', '.join(found)})" if found else "NULL"


SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "flags", "name", "kind", "start_time", "end_time",
    "duration_ms", "status_code", "status_message", "service_name", "scope_name", "scope_version",
    *BUSINESS_COLUMNS, "error_type", "http_status_code", "attributes", "resource_attributes", "scope_attributes",
)
"""The canonical span columns ``<prefix>_spans`` holds (beside its ``span_row``, ``line`` and ``reason``)."""
REJECT_COLUMNS = "input VARCHAR, line BIGINT, byte_offset BIGINT, field VARCHAR, reason VARCHAR, raw VARCHAR"
"""The columns of ``<prefix>_rejects``: those ``BatchWriter.add_rejects`` takes."""
EVENT_COLUMNS = "trace_id VARCHAR, span_id VARCHAR, event_index BIGINT, time TIMESTAMP, name VARCHAR, attributes VARCHAR"
LINK_COLUMNS = (
    "trace_id VARCHAR, span_id VARCHAR, link_index BIGINT, linked_trace_id VARCHAR, linked_span_id VARCHAR, "
    "trace_state VARCHAR, attributes VARCHAR"
)
"""The columns of ``<prefix>_events`` and ``<prefix>_links``, created empty (no query to plan) when
no span of the chunk has events or links."""


def _flat_select(config: TracesConfig, docs: str, plain: bool, tolerant: bool = True) -> str:
    """SQL of the documents of ``docs`` parsed and unnested, one row a span, with their resource and
    scope columns (computed once per resource / scope).

    ``plain`` parses the documents of ``PLAIN_DOCUMENT_TYPE`` (and skips those that
    ``MAY_NEED_FULL_SCHEMA``); otherwise ``DOCUMENT_TYPE`` with its legacy keys and wrappers.
    ``tolerant`` parses a malformed document as NULL (no span); otherwise one fails the query.
    """
    business = [column for column in BUSINESS_COLUMNS if config.business.get(column)]
    lookups = _Lookups(config, ["service.name", *config.mapped_keys()], "res_")
    resource_business = "".join(f"{lookups.text(config.business[column])} AS res_{column}, " for column in business)
    parse = "try(json_transform(doc, '{}'))" if tolerant else "json_transform(doc, '{}')"
    if plain:
        parsed = f"{parse.format(PLAIN_DOCUMENT_TYPE)} AS d FROM {docs} WHERE NOT ({MAY_NEED_FULL_SCHEMA})"
        resource_spans, scope_spans, scope = "d.resourceSpans", "rs.scopeSpans", "ss.scope"
    else:
        parsed = f"{parse.format(DOCUMENT_TYPE)} AS d FROM {docs}"
        resource_spans = "coalesce(d.resourceSpans, d.batches, d.result.resourceSpans)"
        # a producer writes scopeSpans or the legacy key; list_concat would copy every span
        scope_spans = ("CASE WHEN rs.instrumentationLibrarySpans IS NULL THEN rs.scopeSpans "
                       "ELSE list_concat(rs.scopeSpans, rs.instrumentationLibrarySpans) END")
        scope = "coalesce(ss.scope, ss.instrumentationLibrary)"
    # Masking (phi_mask) always runs one projection above the text it masks: see install_macros.
    return f"""
        WITH resources AS (
            SELECT doc_id, line, byte_offset, unnest({resource_spans}) AS rs
            FROM (SELECT doc_id, line, byte_offset, {parsed})
        ), scopes AS (
            SELECT doc_id, line, byte_offset,
                   otlp_attrs(rs.resource.attributes) AS resource_attributes,
                   {lookups.picked('rs.resource.attributes')},
                   unnest({scope_spans}) AS ss
            FROM resources
        ), masked AS (
            SELECT doc_id, line, byte_offset, phi_mask(resource_attributes) AS resource_attributes,
                   {lookups.lists()}, {scope} AS scope, ss.spans AS spans
            FROM scopes
        ), resolved AS (
            SELECT doc_id, line, byte_offset, resource_attributes,
                   {lookups.text(["service.name"])} AS service_name,
                   {resource_business}
                   phi_mask(scope.name) AS scope_name, phi_mask(scope.version) AS scope_version,
                   CASE WHEN scope.attributes IS NOT NULL THEN otlp_attrs(scope.attributes) END AS scope_attributes,
                   spans
            FROM masked
        )
        SELECT * EXCLUDE (scope_attributes, spans), phi_mask(scope_attributes) AS scope_attributes,
               unnest(spans, max_depth := 2)
        FROM resolved
    """


def _flat_counts(cur: duckdb.DuckDBPyConnection, docs: str, flat: str) -> tuple[int, int, int]:
    """The documents of ``docs`` that gave no row to ``flat``, and the rows of ``flat`` with events, with links."""
    spanless, with_events, with_links = cur.execute(
        f"SELECT (SELECT count(*) FROM {docs}) - (SELECT count(DISTINCT doc_id) FROM {flat}), "
        f"(SELECT count(*) FROM {flat} WHERE len(events) > 0), (SELECT count(*) FROM {flat} WHERE len(links) > 0)"
    ).fetchone()
    return spanless, with_events, with_links


def transform_chunk(cur: duckdb.DuckDBPyConnection, config: TracesConfig, prefix: str, docs: str, input_name: str) -> None:
    """Turn the documents table ``docs`` into ``<prefix>_spans/_events/_links/_rejects`` (see module doc).

    Two materialised steps, because list lambdas over freshly unnested rows are several times
    slower in DuckDB than over a stored table: ``<prefix>_flat`` (parsed and unnested, one row
    a span, resource and scope columns computed once per resource / scope; see ``_flat_select``
    for the two schemas), then the span columns in one projection of it; events, links and span
    rejects come from the flat rows by ``span_row``. Documents that gave no span are parsed with
    the full schema, and those that still give none once more, to say why.
    """
    p = prefix
    business = [column for column in BUSINESS_COLUMNS if config.business.get(column)]
    mapped = config.mapped_keys()
    lookups = _Lookups(config, [*mapped, *config.standard.error_type, *config.standard.http_status_code], "span_")
    span_business = "".join(f"coalesce({lookups.text(config.business[column])}, res_{column}) AS {column}, " for column in business)
    absent_business = "".join(f"NULL::VARCHAR AS {column}, " for column in BUSINESS_COLUMNS if column not in business)
    mapped_list = "[" + ", ".join(sql_literal(key) for key in mapped) + "]::VARCHAR[]"
    exception_type = (
        sql_literal(config.redaction.redacted_value) if Redactor(config.redaction).key_redacted("exception.type")
        else "phi_mask(exception_type)"
    )
    # Masking (phi_mask) always runs one projection above the text it masks: see install_macros.
    try:  # try() costs a sixth of the parse, and most chunks have no malformed document
        cur.execute(f"CREATE OR REPLACE TABLE {p}_flat AS {_flat_select(config, docs, plain=True, tolerant=False)}")
    except duckdb.InvalidInputException:  # malformed JSON: those documents give no span (rejected below)
        cur.execute(f"CREATE OR REPLACE TABLE {p}_flat AS {_flat_select(config, docs, plain=True)}")
    spanless = f"(SELECT * FROM {docs} ANTI JOIN (SELECT DISTINCT doc_id FROM {p}_flat) USING (doc_id))"
    spanless_documents, with_events, with_links = _flat_counts(cur, docs, f"{p}_flat")
    if spanless_documents:
        cur.execute(f"INSERT INTO {p}_flat BY NAME {_flat_select(config, spanless, plain=False)}")
        spanless_documents, with_events, with_links = _flat_counts(cur, docs, f"{p}_flat")
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE {p}_spans AS
        WITH decoded AS (
            SELECT rowid AS span_row, *,
                   otlp_id(traceId, 16) AS trace_id,
                   otlp_id(spanId, 8) AS span_id,
                   CASE WHEN coalesce(parentSpanId, '') <> '' THEN otlp_id(parentSpanId, 8) END AS parent_span_id,
                   otlp_kind(kind) AS kind_name,
                   otlp_status(status.code) AS status_code,
                   otlp_nanos(startTimeUnixNano) AS start_nanos, otlp_nanos(endTimeUnixNano) AS end_nanos,
                   {lookups.picked('attributes')},
                   CASE WHEN len(events) > 0 THEN list_filter(list_filter(events, lambda e: e.name = 'exception')[1].attributes,
                        lambda a: a.key = 'exception.type')[1].value END AS exception_value,
                   otlp_attrs_except(attributes, {mapped_list}) AS attributes_json
            FROM {p}_flat
        ), looked_up AS (
            SELECT *, {lookups.lists()}, otlp_text(exception_value) AS exception_type
            FROM decoded
        )
        SELECT span_row, line,
               trace_id, span_id, parent_span_id, traceState AS trace_state, flags,
               phi_mask(coalesce(name, '')) AS name, kind_name AS kind,
               make_timestamp(start_nanos // 1000) AS start_time, make_timestamp(end_nanos // 1000) AS end_time,
               (end_nanos - start_nanos) / 1e6 AS duration_ms,
               status_code, phi_mask(nullif(status.message, '')) AS status_message,
               service_name, scope_name, scope_version,
               {span_business}{absent_business}
               coalesce({lookups.text(config.standard.error_type)}, {exception_type}) AS error_type,
               {lookups.number(config.standard.http_status_code)} AS http_status_code,
               phi_mask(attributes_json) AS attributes,
               resource_attributes, scope_attributes,
               concat_ws('; ',
                   CASE WHEN trace_id IS NULL THEN 'traceId ' || coalesce('''' || left(traceId, 40) || '''', 'missing')
                        || ' is not 32 hex digits nor base64 of 16 bytes' END,
                   CASE WHEN span_id IS NULL THEN 'spanId ' || coalesce('''' || left(spanId, 40) || '''', 'missing')
                        || ' is not 16 hex digits nor base64 of 8 bytes' END,
                   CASE WHEN coalesce(parentSpanId, '') <> '' AND parent_span_id IS NULL
                        THEN 'parentSpanId ''' || left(parentSpanId, 40) || ''' is not 16 hex digits nor base64 of 8 bytes' END,
                   CASE WHEN kind_name IS NULL THEN 'unknown span kind ''' || left(kind, 40) || '''' END,
                   CASE WHEN status_code IS NULL THEN 'unknown status code ''' || left(status.code, 40) || '''' END,
                   CASE WHEN start_nanos IS NULL
                        THEN 'startTimeUnixNano ''' || left(startTimeUnixNano, 40) || ''' is not an integer' END,
                   CASE WHEN end_nanos IS NULL
                        THEN 'endTimeUnixNano ''' || left(endTimeUnixNano, 40) || ''' is not an integer' END,
                   CASE WHEN len(events) > 0 THEN CASE WHEN list_bool_or(list_transform(events,
                        lambda e: otlp_nanos(e.timeUnixNano) IS NULL)) THEN 'an event timeUnixNano is not an integer' END END,
                   CASE WHEN len(links) > 0 THEN CASE WHEN list_bool_or(list_transform(links,
                        lambda l: otlp_id(l.traceId, 16) IS NULL OR otlp_id(l.spanId, 8) IS NULL))
                        THEN 'a link has an invalid traceId or spanId' END END
               ) AS reason
        FROM looked_up
        """
    )
    # A chunk without events or links gets empty tables: planning their queries costs more than nothing.
    if with_events:
        cur.execute(
            f"""
            CREATE OR REPLACE TABLE {p}_events AS
            SELECT trace_id, span_id, event_index, time, phi_mask(name) AS name, phi_mask(attributes) AS attributes
            FROM (SELECT s.trace_id, s.span_id, event_index - 1 AS event_index, otlp_time(e.timeUnixNano) AS time,
                         coalesce(e.name, '') AS name, otlp_attrs(e.attributes) AS attributes
                  FROM (SELECT rowid AS span_row, unnest(events) AS e, generate_subscripts(events, 1) AS event_index
                        FROM {p}_flat WHERE len(events) > 0) JOIN {p}_spans s USING (span_row)
                  WHERE s.reason = '')
            """
        )
    else:
        cur.execute(f"CREATE OR REPLACE TABLE {p}_events ({EVENT_COLUMNS})")
    if with_links:
        cur.execute(
            f"""
            CREATE OR REPLACE TABLE {p}_links AS
            SELECT trace_id, span_id, link_index, linked_trace_id, linked_span_id, trace_state,
                   phi_mask(attributes) AS attributes
            FROM (SELECT s.trace_id, s.span_id, link_index - 1 AS link_index,
                         otlp_id(l.traceId, 16) AS linked_trace_id, otlp_id(l.spanId, 8) AS linked_span_id,
                         l.traceState AS trace_state, otlp_attrs(l.attributes) AS attributes
                  FROM (SELECT rowid AS span_row, unnest(links) AS l, generate_subscripts(links, 1) AS link_index
                        FROM {p}_flat WHERE len(links) > 0) JOIN {p}_spans s USING (span_row)
                  WHERE s.reason = '')
            """
        )
    else:
        cur.execute(f"CREATE OR REPLACE TABLE {p}_links ({LINK_COLUMNS})")
    # Planning the reject query costs about as much as running it; most chunks have no reject.
    rejected_spans = cur.execute(f"SELECT count(*) FROM {p}_spans WHERE reason <> ''").fetchone()[0]
    if not (rejected_spans or spanless_documents):
        cur.execute(f"CREATE OR REPLACE TABLE {p}_rejects ({REJECT_COLUMNS})")
    else:
        input_literal = sql_literal(input_name)
        cur.execute(
            f"""
            CREATE OR REPLACE TABLE {p}_rejects AS
            WITH spanless AS MATERIALIZED (
                -- parsed again, only the documents that gave no span
                SELECT * FROM {spanless}
            ), checked AS MATERIALIZED (  -- else the filter below repeats json_transform
                SELECT line, byte_offset, doc, try(json_transform(doc, '{DOCUMENT_TYPE}')) AS d FROM spanless
            ), span_rejects AS (
                SELECT f.line, f.byte_offset, s.reason, json_object(
                           'traceId', f.traceId, 'spanId', f.spanId, 'parentSpanId', f.parentSpanId, 'name', s.name,
                           'kind', f.kind, 'startTimeUnixNano', f.startTimeUnixNano, 'endTimeUnixNano', f.endTimeUnixNano,
                           'status', json_object('code', f.status.code, 'message', s.status_message),
                           'attributes', CAST(s.attributes AS JSON), 'resource', CAST(s.resource_attributes AS JSON)
                       )::VARCHAR AS raw
                FROM {p}_spans s JOIN {p}_flat f ON f.rowid = s.span_row
                WHERE s.reason <> ''
            )
            SELECT {input_literal} AS input, line, byte_offset, NULL AS field,
                   CASE WHEN d IS NULL THEN 'not valid JSON (or not an object)'
                        ELSE 'not OTLP traces: no resourceSpans' END AS reason,
                   phi_scrub_raw(rtrim(doc, chr(10))) AS raw  -- a line keeps its newline
            FROM checked
            WHERE d IS NULL OR coalesce(d.resourceSpans, d.batches, d.result.resourceSpans) IS NULL
            UNION ALL
            SELECT {input_literal}, line, byte_offset, 'span', 'span rejected: ' || reason, phi_mask(raw)
            FROM span_rejects
            """
        )
        cur.execute(f"DELETE FROM {p}_spans WHERE reason <> ''")
    cur.execute(f"DROP TABLE {p}_flat")


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
    sizes = dict(zip(text_columns, con.execute(
        "SELECT " + ", ".join(f"(SELECT count(*) FROM {prefix}_{suffix})" for suffix in text_columns)
    ).fetchone()))
    for suffix, columns in text_columns.items():
        if not sizes[suffix]:
            continue
        joined = f"concat_ws(chr(10), {', '.join(columns)})"
        counts = con.execute(
            f"SELECT {redaction.count_sql(config.redaction, 'text')} FROM (SELECT {joined} AS text FROM {prefix}_{suffix})"
        )
        names = [description[0] for description in counts.description]
        for name, count in zip(names, counts.fetchall()[0]):
            if count:
                redacted[name] = redacted.get(name, 0) + int(count)
    for table, suffix in CHUNK_TABLES:
        if sizes[suffix]:
            columns = ", ".join(SPAN_COLUMNS) if suffix == "spans" else "*"
            writer.add(table, con.sql(f"SELECT {columns} FROM {prefix}_{suffix}"))
    if sizes["rejects"]:
        writer.add_rejects(con.table(f"{prefix}_rejects"))
    for suffix in ("spans", "events", "links", "rejects"):
        con.execute(f"DROP TABLE {prefix}_{suffix}")
