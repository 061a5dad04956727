"""PHI redaction: attribute key allow and deny lists and regex value maskers, applied before landing.

The same rules run in two places and must agree: as DuckDB SQL macros on the bulk path
(``install_macros``) and in Python (``Redactor``) for the few values the SQL path hands to Python
(nested array / kvlist attribute values, undecodable input). Key patterns are globs matched
case-insensitively against the whole key (``patient.*``, ``*mrn*``); maskers are RE2-compatible
regular expressions (the subset Python's ``re`` also accepts) replaced everywhere in a value.

Each masker has its own replacement token, and a redacted key's value becomes ``redacted_value``;
the per-batch counts in the landing notes are the occurrences of those tokens in what was written,
which is both cheap and exactly "what was redacted".
"""

from __future__ import annotations

import re

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Masker(BaseModel):
    """A regex that masks matching text in every string value (attributes, names, messages)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Rule name, used in the redaction counts.")
    pattern: str = Field(description="Regular expression (RE2 syntax) of the text to mask.")
    replacement: str = Field(description="What replaces each match, e.g. [SSN]; unique per masker.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"masker pattern {pattern!r} does not compile: {error}") from None
        return pattern

    @field_validator("replacement")
    @classmethod
    def _safe_inside_json(cls, replacement: str) -> str:
        # Masking runs on JSON text; a quote or backslash in the replacement would corrupt it.
        if not replacement or any(char in replacement for char in '"\\\n'):
            raise ValueError("a masker replacement must be non-empty and free of quotes, backslashes, newlines")
        return replacement


class RedactionConfig(BaseModel):
    """Which attribute keys are redacted and which value patterns are masked."""

    model_config = ConfigDict(extra="forbid")

    deny_keys: list[str] = Field(default_factory=list, description="Globs of keys whose values are always redacted.")
    allow_keys: list[str] = Field(
        default_factory=list, description="If not empty, only keys matching one of these globs keep their value."
    )
    maskers: list[Masker] = Field(default_factory=list)
    redacted_value: str = Field("[REDACTED]", description="Value written in place of a redacted key's value.")

    @model_validator(mode="after")
    def _distinct_tokens(self) -> RedactionConfig:
        tokens = [self.redacted_value, *(masker.replacement for masker in self.maskers)]
        if len(set(tokens)) != len(tokens):
            raise ValueError("every masker needs its own replacement, distinct from redacted_value")
        Masker._safe_inside_json(self.redacted_value)
        return self


def glob_regex(glob: str, any_run: str = ".*") -> str:
    """The regex body of a key glob: ``*`` matches any run (``any_run``), ``?`` one character."""
    parts = []
    for char in glob:
        if char == "*":
            parts.append(any_run)
        elif char == "?":
            parts.append(any_run[:-1] if any_run.endswith("*") else ".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def _alternation(globs: list[str], any_run: str = ".*") -> str:
    return "|".join(f"(?:{glob_regex(glob, any_run)})" for glob in globs)


def sql_literal(text: str) -> str:
    """A SQL string literal of ``text``."""
    return "'" + text.replace("'", "''") + "'"


class Redactor:
    """The Python side of the rules (for values the SQL path cannot reach)."""

    def __init__(self, config: RedactionConfig):
        self.config = config
        self._deny = re.compile(f"(?i)^(?:{_alternation(config.deny_keys)})$") if config.deny_keys else None
        self._allow = re.compile(f"(?i)^(?:{_alternation(config.allow_keys)})$") if config.allow_keys else None
        self._maskers = [(re.compile(masker.pattern), masker.replacement) for masker in config.maskers]

    def key_redacted(self, key: str) -> bool:
        """Whether the value of attribute ``key`` must be replaced by the redacted token."""
        if self._deny is not None and self._deny.match(key):
            return True
        return self._allow is not None and not self._allow.match(key)

    def mask(self, text: str) -> str:
        """``text`` with every masker applied."""
        for pattern, replacement in self._maskers:
            text = pattern.sub(replacement, text)
        return text

    def counts(self, text: str) -> dict[str, int]:
        """Redaction tokens present in ``text``, by rule name (``key`` for redacted keys)."""
        found = {"key": text.count(self.config.redacted_value)}
        for masker in self.config.maskers:
            found[masker.name] = text.count(masker.replacement)
        return {name: count for name, count in found.items() if count}


def install_macros(con: duckdb.DuckDBPyConnection, config: RedactionConfig) -> None:
    """Create the SQL macros ``phi_key_redacted(key)``, ``phi_mask(text)`` and ``phi_scrub_raw(text)``.

    ``phi_scrub_raw`` is for text that did not parse (rejects): it redacts the values of denied
    keys where they appear in OTLP/JSON form (``"key": "...", "value": {...}``) and masks the rest.
    ``phi_mask`` evaluates its argument more than once: give it a column, not a costly expression.
    """
    conditions = []
    if config.deny_keys:
        conditions.append(f"regexp_full_match(key, {sql_literal('(?i)' + _alternation(config.deny_keys))})")
    if config.allow_keys:
        conditions.append(f"NOT regexp_full_match(key, {sql_literal('(?i)' + _alternation(config.allow_keys))})")
    con.execute(f"CREATE OR REPLACE MACRO phi_key_redacted(key) AS {' OR '.join(conditions) or 'false'}")

    masked = "text"
    for masker in config.maskers:
        masked = f"regexp_replace({masked}, {sql_literal(masker.pattern)}, {sql_literal(masker.replacement)}, 'g')"
    if config.maskers:
        # One search for any masker first: most text has nothing to mask, and a search costs less
        # than a replace per masker. The argument is thus evaluated more than once: pass a column.
        any_masker = "|".join(f"(?:{masker.pattern})" for masker in config.maskers)
        masked = f"CASE WHEN regexp_matches(text, {sql_literal(any_masker)}) THEN {masked} ELSE text END"
    con.execute(f"CREATE OR REPLACE MACRO phi_mask(text) AS {masked}")

    scrubbed = "text"
    token = sql_literal('{"stringValue":"' + config.redacted_value + '"}')
    if config.deny_keys or config.allow_keys:
        # In raw text we cannot evaluate an allow list per key, so any key then counts as denied.
        key_text = _alternation(config.deny_keys, '[^"]*') if not config.allow_keys else '[^"]*'
        key_first = f'(?i)("key"\\s*:\\s*"(?:{key_text})"\\s*,\\s*"value"\\s*:\\s*)\\{{[^{{}}]*\\}}'
        value_first = f'(?i)("value"\\s*:\\s*)\\{{[^{{}}]*\\}}(\\s*,\\s*"key"\\s*:\\s*"(?:{key_text})")'
        scrubbed = (
            f"regexp_replace(regexp_replace(text, {sql_literal(key_first)}, '\\1' || {token}, 'g'), "
            f"{sql_literal(value_first)}, '\\1' || {token} || '\\2', 'g')"
        )
    con.execute(f"CREATE OR REPLACE MACRO phi_scrub_raw(text) AS phi_mask({scrubbed})")


def count_sql(config: RedactionConfig, text_column: str) -> str:
    """A SELECT list summing, per rule, the redaction tokens found in ``text_column``.

    Give it one column joining a row's texts with newlines (which no token contains): a scan per
    token and row costs far less than one per token and column.
    """

    def occurrences(token: str) -> str:
        literal = sql_literal(token)
        # contains() first: a cheap search, where counting by replace() rewrites the text.
        return (
            f"sum(CASE WHEN contains({text_column}, {literal}) THEN (length({text_column}) - "
            f"length(replace({text_column}, {literal}, ''))) // {len(token)} ELSE 0 END)"
        )

    rules = [("key", config.redacted_value), *((masker.name, masker.replacement) for masker in config.maskers)]
    return ", ".join(f"{occurrences(token)} AS {sql_literal(name).replace(chr(39), chr(34))}" for name, token in rules)
