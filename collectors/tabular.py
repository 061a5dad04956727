"""Tabular exports (CSV, TSV, JSON lines, Parquet; gzip) to ``transaction_events``, in DuckDB.

A mapping file compiles into ONE SQL query over the file read as text: every canonical column is
an expression (``TRY_CAST``, ``try_strptime``, epoch functions, value maps, the event-type rules),
and a ``__problem`` expression names the first column that failed and why. The file is read and
parsed once, streaming into the landing writer: the rows without a problem land, the others come
back (in input order, so their position gives the line) and become rejects with their line, column
and reason. Nothing is materialised: memory does not grow with the file.

Event log readers (OCEL, XES) flatten their events into an Arrow table of text columns and reuse
the same compiler, so every source goes through one mapping mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from collectors.mapping import (
    INTEGER_COLUMNS,
    MONEY_COLUMNS,
    NUMBER_COLUMNS,
    TEXT_COLUMNS,
    TIME_COLUMNS,
    ColumnSpec,
    Mapping,
)
from r2p import schema
from r2p.errors import UserError
from r2p.landing import RAW_TEXT_LIMIT, BatchWriter

ROW = "__row"
"""1-based record number of a source row (the header is not a record)."""

PROBLEM_SEPARATOR = "\x1f"
PARSED_COLUMNS = (*TIME_COLUMNS, *MONEY_COLUMNS, *NUMBER_COLUMNS, *INTEGER_COLUMNS)
CSV_ERRORS = "__csv_errors"


def ident(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL string literal (NULL for None)."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def trim_sql(text: str, ascii: bool = False) -> str:
    """SQL of ``trim(text)`` (which drops Unicode's space separators at both ends) that only calls
    trim where it could change something: trim reads every character of every value, and few values
    need it.

    An ASCII text starting above ``' '`` and not ending in one has nothing to trim
    (``strlen`` counts bytes and ``length`` characters, so they differ exactly when there is non-ASCII).
    With ``ascii`` the text is known to be ASCII, which saves testing each value for it.
    """
    needs_trim = f"{text} < '!' OR suffix({text}, ' ')"
    if not ascii:
        needs_trim += f" OR strlen({text}) <> length({text})"
    return f"CASE WHEN {needs_trim} THEN trim({text}) ELSE {text} END"


def timestamp_sql(text: str, formats: Sequence[str], timezone: str) -> str:
    """SQL turning the text expression ``text`` into a UTC TIMESTAMPTZ (NULL when it does not parse).

    ``iso8601`` keeps an explicit offset (``Z``, ``+01:00``) and reads a time without one in
    ``timezone``; ``epoch_s`` / ``epoch_ms`` are seconds / milliseconds since 1970 UTC; anything
    else is a strptime pattern (local in ``timezone`` unless it has ``%z``). With several
    formats the first that parses wins.
    """
    choices = []
    patterns = [fmt for fmt in formats if fmt not in ("iso8601", "epoch_s", "epoch_ms")]
    for fmt in formats:
        if fmt == "iso8601":
            # DuckDB also casts the words 'epoch' and 'infinity': a timestamp starts with a digit
            # (compared as text, which is cheaper than taking its first character)
            starts_with_digit = f"{text} >= '0' AND {text} < ':'"
            with_offset = f"CASE WHEN {starts_with_digit} THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
            if timezone == "UTC":
                choices.append(with_offset)
            else:
                # the offset may be followed by padding: read without it, as a local time, it would move
                choices.append(
                    f"CASE WHEN regexp_matches({text}, '(?:[zZ]|[+-]\\d\\d(?::?\\d\\d)?)[\\s\\p{{Zs}}]*$') THEN {with_offset} "
                    f"WHEN {starts_with_digit} THEN timezone({literal(timezone)}, TRY_CAST({text} AS TIMESTAMP)) END"
                )
        elif fmt in ("epoch_s", "epoch_ms"):
            number, per_second = f"TRY_CAST({text} AS DOUBLE)", 1 if fmt == "epoch_s" else 1000
            # only years 1 to ~5000; NaN and infinity fail the test and give NULL, not an error
            choices.append(
                f"CASE WHEN abs({number}) < {10**11 * per_second} "
                f"THEN make_timestamp(CAST(round({number} * {1_000_000 // per_second}) AS BIGINT))::TIMESTAMPTZ END"
            )
        elif fmt == patterns[0]:  # all patterns go to one try_strptime call, which tries them in order
            pattern_list = "[" + ", ".join(literal(p) for p in patterns) + "]"
            # try_strptime also reads the words epoch, infinity and -infinity, whatever the pattern
            parsed = f"CASE WHEN lower(trim({text})) NOT IN ('epoch', 'infinity', '-infinity') THEN try_strptime({text}, {pattern_list}) END"
            if any("%z" in p or "%Z" in p for p in patterns):
                choices.append(f"CAST({parsed} AS TIMESTAMPTZ)")
            else:
                choices.append(f"timezone({literal(timezone)}, {parsed})")
    return choices[0] if len(choices) == 1 else f"coalesce({', '.join(choices)})"


def decimal_text_sql(text: str, decimal: str, thousands: str) -> str:
    """SQL normalising a number written with ``decimal`` / ``thousands`` separators to ``1234.5`` form."""
    cleaned = text
    if thousands:
        cleaned = f"replace({cleaned}, {literal(thousands)}, '')"
    if decimal == ",":
        cleaned = f"replace({cleaned}, ',', '.')"
    return cleaned


def amount_sql(text: str, decimal: str = ".", thousands: str = "") -> str:
    """SQL parsing a money amount to DECIMAL(18,4); NULL when it does not parse."""
    return f"TRY_CAST({decimal_text_sql(text, decimal, thousands)} AS DECIMAL(18,4))"


def number_sql(text: str, decimal: str = ".", thousands: str = "") -> str:
    """SQL parsing a quantity to DOUBLE; NULL when it does not parse."""
    return f"TRY_CAST({decimal_text_sql(text, decimal, thousands)} AS DOUBLE)"


def padded_sql(parse: Callable[[str], str], text: str) -> str:
    """SQL of ``parse`` over ``text`` that may be padded with spaces: ``parse(text)``, and only where
    that gives NULL, ``parse(trim(text))``.

    Most values have no padding, and testing each value for it costs a third more than parsing
    it, so values are parsed as they come first; a parser that reads a padded value at all reads
    it as its trimmed form (tests/test_transactions_parsers.py checks each).
    The retry takes the trimmed text as a lambda's parameter: a parser that reads its text more than
    once would otherwise repeat ``trim(text)``, and DuckDB computes a repeated expression once, for
    every row, ahead of the ``coalesce`` that only needs it for a few.
    """
    return f"coalesce({parse(text)}, list_transform([trim({text})], lambda padded: {parse('padded')})[1])"


def _value_map(text: str, mapping: dict[str, str] | None) -> str:
    if not mapping:
        return text
    cases = " ".join(f"WHEN {literal(key)} THEN {literal(value)}" for key, value in mapping.items())
    return f"(CASE {text} {cases} ELSE {text} END)"


@dataclass(frozen=True)
class Compiled:
    """A mapping bound to one input's columns: the parse query and what it reads."""

    select: str
    """SELECT over view ``__src`` giving the canonical columns the mapping fills, ``__problem`` and
    ``__raw``, in the input's order."""
    used: tuple[str, ...]
    """Source columns the mapping reads."""


def resolve_columns(spec: ColumnSpec, available: Sequence[str], canonical: str, input_name: str) -> list[str]:
    """The spec's column names that the input has (a row takes the first non-empty); UserError when none."""
    present = [name for name in spec.column if name in available]
    if present:
        return present
    shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
    raise UserError(
        f"mapping names column {' or '.join(map(repr, spec.column))} for {canonical}, "
        f"but {input_name} has no such column (it has: {shown})"
    )


def compile_mapping(mapping: Mapping, data: Input) -> Compiled:
    """Compile ``mapping`` for the input ``data`` (its text columns in view ``__src``).

    The query is built in layers, each reading the columns of the one below: the trimmed text of
    each mapped column (``__t_<name>``), the parsed values (``__v_<name>``), the values derived
    from the event type (stage, outcome, object type) and the event id, then the problem. DuckDB
    inlines a column alias at each use, so one flat SELECT would re-parse a value in every check.
    """
    source = mapping.source
    available, input_name = data.columns, data.name
    columns_of: dict[str, list[str]] = {
        name: resolve_columns(spec, available, name, input_name) for name, spec in mapping.columns.items()
    }
    sources = {name: present[0] for name, present in columns_of.items()}  # the column a reject names
    # A value parsed from one column is read as it comes (padded_sql); every other column is
    # trimmed, once however many canonical columns read it (``__s<n>``), before it is used.
    untrimmed = {name for name, present in columns_of.items() if name in PARSED_COLUMNS and len(present) == 1}
    trimmed = {
        column: f"__s{index}"
        for index, column in enumerate(
            dict.fromkeys(column for name, present in columns_of.items() if name not in untrimmed for column in present)
        )
    }
    def text(name: str, present: list[str]) -> str:
        """SQL of the first non-empty of the columns ``present`` (NULL when all are empty)."""
        nonempty = [f"NULLIF({ident(column) if name in untrimmed else trimmed[column]}, '')" for column in present]
        return nonempty[0] if len(nonempty) == 1 else f"coalesce({', '.join(nonempty)})"

    texts = {name: text(name, present) for name, present in columns_of.items()}
    values: dict[str, str] = {}  # canonical column -> SQL of its parsed value, over the texts
    problems: list[tuple[str, str, str]] = []  # (condition, source column, reason SQL), first match wins
    if data.unreadable:
        problems.append((data.unreadable[0], "", literal(data.unreadable[1])))

    def raw(name: str) -> str:
        return f"__t_{name}"

    def shown(name: str) -> str:
        return f"'''' || left({ident(sources[name])}, 80) || ''''"

    def missing(name: str) -> str:
        """SQL: the column has no value (a value read untrimmed may be nothing but padding)."""
        if name in untrimmed:
            return f"({raw(name)} IS NULL OR (__v_{name} IS NULL AND trim({raw(name)}) = ''))"
        return f"{raw(name)} IS NULL"

    def unreadable(name: str) -> str:
        """SQL: the column has a value that does not parse."""
        if name in untrimmed:
            return f"{raw(name)} IS NOT NULL AND __v_{name} IS NULL AND trim({raw(name)}) <> ''"
        return f"{raw(name)} IS NOT NULL AND __v_{name} IS NULL"

    for name in TIME_COLUMNS:
        if name in sources:
            spec = mapping.columns[name]
            formats, timezone = spec.format or [], spec.timezone or source.timezone
            values[name] = padded_sql(lambda text: timestamp_sql(text, formats, timezone), raw(name))
            problems.append(
                (
                    unreadable(name),
                    sources[name],
                    f"'{name}: cannot read ' || {shown(name)} || ' as {' or '.join(spec.format or [])}'",
                )
            )
    for name in (*MONEY_COLUMNS, *NUMBER_COLUMNS, *INTEGER_COLUMNS):
        if name in sources:
            spec = mapping.columns[name]
            decimal = spec.decimal or source.decimal
            if name in MONEY_COLUMNS:
                values[name] = padded_sql(lambda text: amount_sql(text, decimal, source.thousands), raw(name))
            elif name in NUMBER_COLUMNS:
                values[name] = padded_sql(lambda text: number_sql(text, decimal, source.thousands), raw(name))
            else:
                values[name] = padded_sql(lambda text: f"TRY_CAST({text} AS BIGINT)", raw(name))
            problems.append(
                (
                    unreadable(name),
                    sources[name],
                    f"'{name}: ' || {shown(name)} || ' is not a number'",
                )
            )
    for name in (*TEXT_COLUMNS, "system"):
        if name in sources:
            spec_map = mapping.columns[name].map
            values[name] = f"NULLIF({_value_map(raw(name), spec_map)}, '')" if spec_map else raw(name)
        elif name in mapping.constants:
            values[name] = literal(mapping.constants[name])
    if "system" not in values:
        values["system"] = literal(source.system)

    rules = mapping.event_types
    # Columns whose every value comes from a short known list land as ENUMs, which reach Arrow and
    # the Parquet files as dictionaries instead of one string a row (a tenth of the landing's CPU
    # on bench ingest_transactions); a rejected row, whose value may be outside the list, is held
    # back before it lands.
    domains: dict[str, list[str]] = {"stage": list(schema.STAGES), "outcome": list(schema.OUTCOMES)}
    reject_unmapped = bool(rules) and source.unmapped_event_types == "reject"
    if reject_unmapped:
        domains["event_type"] = list(rules)
    if "system" not in sources:
        domains["system"] = [mapping.constants.get("system", source.system)]
    if "object_type" not in sources:
        domains["object_type"] = [rule.object_type for rule in rules.values() if rule.object_type is not None]
        domains["object_type"] += [mapping.constants["object_type"]] if "object_type" in mapping.constants else []

    def enum(name: str) -> str:
        return "ENUM(" + ", ".join(literal(value) for value in dict.fromkeys(domains[name])) + ")"

    if reject_unmapped and "event_type" in values:
        # The event type is read once as the ENUM of the mapped types (an unmapped one is NULL),
        # so the rules below compare small integers, not text, in every row.
        values["event_type"] = f"TRY_CAST({values['event_type']} AS {enum('event_type')})"
    derived: dict[str, str] = {}  # stage, outcome, object_type: over the values of the layer below
    for field in ("stage", "outcome", "object_type"):
        # without a column of its own, the field takes only the rules' and the default's values,
        # written as values of its ENUM so that no row's text is cast
        typed = field not in values and bool(domains.get(field))

        def value(text: str | None) -> str:
            return f"CAST({literal(text)} AS {enum(field)})" if typed and text is not None else literal(text)

        cases = " ".join(
            f"WHEN {literal(key)} THEN {value(getattr(rule, field))}"
            for key, rule in rules.items()
            if getattr(rule, field) is not None
        )
        from_rule = f"(CASE __v_event_type {cases} END)" if cases else "NULL"
        own = f"__v_{field}" if field in values else "NULL"
        if field == "object_type":  # an event type's own object type beats the column
            derived[field] = f"coalesce({from_rule}, {own})"
        else:
            derived[field] = f"coalesce({own}, {from_rule}, {value(getattr(mapping.defaults, field))})"

    required = [("object_id", "object id"), ("event_type", "event type"), ("occurred_at", "occurred time")]
    for position, (name, words) in enumerate(n for n in required if n[0] in sources):
        problems.insert(position + bool(data.unreadable), (missing(name), sources[name], f"'{name}: {words} is empty'"))
    problems.append(("__v_object_type IS NULL", sources.get("object_type", ""), "'object_type: object type is empty'"))
    if reject_unmapped:
        problems.append(
            (
                "__v_event_type IS NULL",
                sources.get("event_type", ""),
                f"'event_type: ' || {shown('event_type') if 'event_type' in sources else '__v_event_type'} "
                "|| ' is not in the mapping''s [event_types]'",
            )
        )
    # Stages and outcomes of [event_types] and [defaults] are checked when the mapping loads: only
    # values from a column or a constant need checking row by row.
    if "stage" in values:
        stages = ", ".join(literal(stage) for stage in schema.STAGES)
        problems.append(
            (f"__v_stage NOT IN ({stages})", sources.get("stage", ""), "'stage: ' || __v_stage || ' is not a stage code'")
        )
    if "outcome" in values or mapping.defaults.outcome is None:
        outcomes = ", ".join(literal(outcome) for outcome in schema.OUTCOMES)
        problems.append(
            (
                f"__v_outcome IS NULL OR __v_outcome NOT IN ({outcomes})",
                sources.get("outcome", ""),
                "'outcome: ' || coalesce(__v_outcome, 'none') || ' is not an outcome (map it in [event_types] or "
                "columns.outcome.map)'",
            )
        )

    used = tuple(dict.fromkeys(column for present in columns_of.values() for column in present))
    if source.attributes == "rest":
        kept = [c for c in available if c not in used and c not in source.ignore_columns]
    elif source.attributes == "none":
        kept = []
    else:
        kept = [c for c in source.attributes if c in available]
    attributes = (
        "json_object(" + ", ".join(f"{literal(c)}, {ident(c)}" for c in kept) + ")" if kept else "'{}'"
    )

    if "event_id" in sources:
        own_id = f"__v_system || ':' || {raw('event_id')}"
    else:
        own_id = "NULL"
    content = [
        f"coalesce(CAST(__v_{name} AS VARCHAR), '')"
        for name in ("object_type", "object_id", "event_type", "occurred_at", "stage", "outcome",
                     *MONEY_COLUMNS, *NUMBER_COLUMNS, *INTEGER_COLUMNS,
                     *[n for n in TEXT_COLUMNS if n not in ("object_type", "object_id", "event_type", "stage", "outcome")])
        if name in values or name in derived
    ]
    hashed = f"__v_system || ':' || md5(concat_ws(chr(31), {', '.join(content)}))"

    layer_texts = ", ".join(f"{sql} AS {raw(name)}" for name, sql in texts.items())
    layer_values = ", ".join(
        f"{values[name] if name in values else 'NULL'} AS __v_{name}"
        for name in dict.fromkeys([*values, *derived])
    )
    layer_derived = ", ".join(f"{sql} AS __v_{name}" for name, sql in derived.items())
    problem_cases = " ".join(
        f"WHEN {condition} THEN {literal(column + PROBLEM_SEPARATOR)} || {reason}" for condition, column, reason in problems
    )
    def output(name: str) -> str:
        if domains.get(name):
            return f"TRY_CAST(__v_{name} AS {enum(name)}) AS {name}"
        return f"__v_{name} AS {name}"

    # A column the mapping does not fill is left out, and lands NULL (the landing writer adds it)
    outputs = ", ".join(
        output(name) for name in schema.column_names(schema.TransactionEvent)
        if name in values or name in derived or name == "event_id"
    )
    layer_trims = ", ".join(f"{trim_sql(ident(column), data.ascii)} AS {alias}" for column, alias in trimmed.items())
    select = (
        f"SELECT {outputs}, attributes, __problem, "
        f"CASE WHEN __problem IS NOT NULL THEN left({data.raw_sql}, {RAW_TEXT_LIMIT}) END AS __raw FROM ("
        f"SELECT *, coalesce({own_id}, {hashed}) AS __v_event_id, {attributes} AS attributes, "
        f"CASE {problem_cases} END AS __problem FROM ("
        f"SELECT * REPLACE ({layer_derived}) FROM ("
        f"SELECT *, {layer_values} FROM ("
        f"SELECT *{', ' + layer_texts if layer_texts else ''} FROM ("
        f"SELECT *{', ' + layer_trims if layer_trims else ''} FROM __src)))))"
    )
    return Compiled(select=select, used=used)


@dataclass(frozen=True)
class Input:
    """One input as a DuckDB relation of text columns named ``__src``, rows in the input's order."""

    name: str
    columns: list[str]
    raw_sql: str
    line_offset: int | None
    """Line of record 1 minus 1 (1 for a CSV header); None where the input has no lines."""
    csv_errors: bool = False
    """True when the reader stored structural errors in ``__csv_errors`` (CSV / TSV)."""
    unreadable: tuple[str, str] | None = None
    """(SQL condition, reason) of a row the reader could not split into columns."""
    ascii: bool = False
    """Every text in the input is ASCII."""


def open_csv(
    con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, limit: int | None = None, ascii: bool = False
) -> Input:
    """Read a CSV / TSV file (gzip by extension) as text columns into view ``__src``.

    With ``limit`` (the probe) only the first rows are read and DuckDB's own errors are not stored.
    ``ascii``: the file's bytes are known to be ASCII (``r2p.landing.FileDigest``).
    """
    store_rejects = limit is None
    source = mapping.source
    delimiter = source.delimiter or ("\t" if source.format == "tsv" else ",")
    options = (
        f"all_varchar = true, header = true, delim = {literal(delimiter)}, quote = {literal(source.quote)}, "
        f"escape = {literal(source.quote)}"
    )
    if store_rejects:
        options += f", store_rejects = true, rejects_table = '{CSV_ERRORS}', rejects_scan = '__csv_scans'"
    else:
        options += ", ignore_errors = true"
    options += _sniffed(con, path, options)
    con.execute(f"CREATE OR REPLACE VIEW __file AS SELECT * FROM read_csv({literal(str(path))}, {options})")
    columns = [row[0] for row in con.execute("DESCRIBE __file").fetchall()]
    head = "__file" if limit is None else f"(SELECT * FROM __file LIMIT {limit})"
    con.execute(f"CREATE OR REPLACE VIEW __src AS SELECT * FROM {head}")
    raw = "concat_ws(" + ", ".join([literal(delimiter)] + [f"coalesce({ident(c)}, '')" for c in columns]) + ")"
    return Input(str(path), columns, raw, 1, csv_errors=store_rejects, ascii=ascii)


def _sniffed(con: duckdb.DuckDBPyConnection, path: Path, options: str) -> str:
    """More read_csv options: what DuckDB's sniffer finds in the file (line ending, rows to skip,
    comment character, column names), with sniffing turned off.

    A view is bound again by every query over it, and a read_csv that detects its dialect sniffs the
    file at each bind: 30 to 50 ms each, several times an ingest. So the file is sniffed once, here.
    Where sniff_csv refuses what read_csv accepts (an empty file: "no header found"), nothing is added
    and the file is read as before, sniffed at each bind, so it fails or lands exactly as it would.
    """
    try:
        new_line, skip, comment, columns = con.execute(
            f"SELECT NewLineDelimiter, SkipRows, Comment, Columns FROM sniff_csv({literal(str(path))}, {options})"
        ).fetchone()
    except duckdb.InvalidInputException:
        return ""
    found = f", auto_detect = false, new_line = {literal(new_line)}, skip = {skip}"
    if comment != "(empty)":  # how sniff_csv says it found none
        found += f", comment = {literal(comment)}"
    names = ", ".join(f"{literal(column['name'])}: 'VARCHAR'" for column in columns)
    return f"{found}, columns = {{{names}}}"


def open_jsonl(con: duckdb.DuckDBPyConnection, path: Path, limit: int | None = None) -> Input:
    """Read a JSON lines file (gzip by extension) line by line into view ``__src``: one text column per key."""
    con.execute(
        f"CREATE OR REPLACE TABLE __lines AS SELECT row_number() OVER () AS {ROW}, line AS __line FROM read_csv("
        f"{literal(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(30), quote = '', "
        f"escape = '', auto_detect = false) {'' if limit is None else f'LIMIT {limit}'}"
    )
    keys = [
        row[0]
        for row in con.execute(
            "SELECT key FROM (SELECT unnest(json_keys(__line)) AS key, __row FROM __lines "
            "WHERE json_valid(__line) AND json_type(__line) = 'OBJECT') GROUP BY key ORDER BY min(__row), key"
        ).fetchall()
    ]
    extracts = ", ".join(
        f"json_extract_string(__json, {literal('$.' + chr(34) + key.replace(chr(34), chr(92) + chr(34)) + chr(34))}) "
        f"AS {ident(key)}"
        for key in keys
    )
    con.execute(
        f"CREATE OR REPLACE VIEW __src AS SELECT __line, __json{', ' + extracts if extracts else ''} FROM "
        f"(SELECT *, CASE WHEN json_valid(__line) AND json_type(__line) = 'OBJECT' THEN CAST(__line AS JSON) END AS __json "
        "FROM __lines)"
    )
    return Input(str(path), keys, "__line", 0, unreadable=("__json IS NULL", "not a JSON object"))


def open_parquet(con: duckdb.DuckDBPyConnection, path: Path, limit: int | None = None) -> Input:
    """Read a Parquet file as text columns into view ``__src``; a reject's line is its row number."""
    con.execute(f"CREATE OR REPLACE VIEW __file AS SELECT * FROM read_parquet({literal(str(path))})")
    columns = [row[0] for row in con.execute("DESCRIBE __file").fetchall()]
    casts = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in columns)
    con.execute(
        f"CREATE OR REPLACE VIEW __src AS SELECT {casts} FROM __file"
        + ("" if limit is None else f" LIMIT {limit}")
    )
    return Input(str(path), columns, _json_raw(columns), 0)


def open_arrow(con: duckdb.DuckDBPyConnection, table, name: str) -> Input:
    """Use an Arrow table of text columns (with ``__row``) from an event-log reader as ``__src``."""
    con.register("__arrow", table)
    con.execute("CREATE OR REPLACE VIEW __src AS SELECT * FROM __arrow")
    columns = [c for c in table.column_names if c != ROW]
    return Input(name, columns, _json_raw(columns), None)


def _json_raw(columns: Sequence[str]) -> str:
    return "CAST(json_object(" + ", ".join(f"{literal(c)}, {ident(c)}" for c in columns) + ") AS VARCHAR)"


def open_input(
    con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, limit: int | None = None, ascii: bool = False
) -> Input:
    """Open a tabular file per the mapping's format as view ``__src`` (``limit``: only its first rows;
    ``ascii``: the file's bytes are all ASCII, which only a CSV's text keeps: JSON escapes others)."""
    fmt = mapping.source.format
    if fmt in ("csv", "tsv"):
        return open_csv(con, path, mapping, limit, ascii)
    if fmt == "jsonl":
        return open_jsonl(con, path, limit)
    if fmt == "parquet":
        return open_parquet(con, path, limit)
    raise UserError(f"mapping format {fmt!r} is not a tabular format")


def probe(con: duckdb.DuckDBPyConnection, mapping: Mapping, source: Input) -> None:
    """Stop with one message when every row of ``__src`` (the input's first rows) would be rejected.

    That happens when the mapping does not fit the file (a wrong column, timestamp format or
    delimiter): one clear message instead of millions of identical rejects.
    """
    compiled = compile_mapping(mapping, source)
    ((total, rejected, common),) = con.execute(
        f"SELECT count(*), count(__problem), mode(__problem) FROM ({compiled.select})"
    ).fetchall()
    if total and total == rejected:
        column, reason = common.split(PROBLEM_SEPARATOR, 1)
        raise UserError(
            f"mapping does not fit {source.name}: all of its first {total} rows would be rejected, "
            f"e.g. column {column!r}: {reason}"
        )


def land(writer: BatchWriter, mapping: Mapping, source: Input) -> None:
    """Parse ``__src`` with the mapping in one pass: good rows land as transaction_events, rows
    with a problem come back from the writer and land as rejects with their line, column and reason."""
    con = writer.con
    problems = writer.add_holding_back(
        schema.TransactionEvent.table, con.sql(compile_mapping(mapping, source).select), problem="__problem"
    )
    if problems.num_rows:
        _reject_problems(writer, problems.select(["__position", "__problem", "__raw"]), source)
    if source.csv_errors:
        writer.add_rejects(
            con.sql(
                # DuckDB stores one error per missing column of a line: one reject per line, its first error
                f"SELECT {literal(source.name)} AS input, line, min(byte_position) AS byte_offset, "
                "arg_min(column_name, column_idx) AS field, "
                "arg_min(CAST(error_type AS VARCHAR) || ': ' || error_message, column_idx) AS reason, "
                f"left(any_value(csv_line), {RAW_TEXT_LIMIT}) AS raw FROM {CSV_ERRORS} GROUP BY line"
            )
        )


def _reject_problems(writer: BatchWriter, problems, source: Input) -> None:
    """Land the rows with a problem (an Arrow table: ``__position`` in ``__src``, ``__problem``,
    ``__raw``) as rejects, with their line, column and reason."""
    con = writer.con
    con.register("__problems", problems)
    if source.line_offset is None:
        line = "NULL"
    elif source.csv_errors:
        # DuckDB counts records; rows it rejected itself take a line each, so later rows move down.
        line = (
            f"__record + {source.line_offset} + (SELECT count(*) FROM (SELECT line - row_number() OVER (ORDER BY line) AS shifted "
            f"FROM (SELECT DISTINCT line FROM {CSV_ERRORS})) WHERE shifted < __record + {source.line_offset})"
        )
    else:
        line = f"__record + {source.line_offset}"
    writer.add_rejects(
        con.sql(
            f"SELECT {literal(source.name)} AS input, {line} AS line, NULL::BIGINT AS byte_offset, "
            f"NULLIF(split_part(__problem, chr(31), 1), '') AS field, "
            f"substr(__problem, strpos(__problem, chr(31)) + 1) AS reason, __raw AS raw "
            "FROM (SELECT __position + 1 AS __record, * FROM __problems)"
        )
    )
    con.unregister("__problems")


def collect(path: Path, writer: BatchWriter, mapping: Mapping) -> None:
    """Land one tabular file: probe the first rows (a wrong mapping stops here), then the whole file."""
    probe(writer.con, mapping, open_input(writer.con, path, mapping, mapping.source.probe_rows, writer.input_ascii))
    land(writer, mapping, open_input(writer.con, path, mapping, ascii=writer.input_ascii))


def collect_arrow(table, name: str, writer: BatchWriter, mapping: Mapping) -> None:
    """Land an event log flattened to an Arrow table of text columns, through the same mapping."""
    source = open_arrow(writer.con, table, name)
    probe(writer.con, mapping, source)
    land(writer, mapping, source)
