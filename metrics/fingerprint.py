"""The exception fingerprint's configuration: masks and grouping rules, from ``defaults/fingerprint.toml``.

The warehouse applies the fingerprint in SQL, at DuckDB speed. This module validates the TOML and
renders it into the one-row staging model ``stg_fingerprint_rules`` (``python -m metrics.fingerprint``
rewrites that file), which ``int_exception_occurrences`` reads: the metrics runner stays a runner of
plain SQL files, and a test keeps the rendered file in step with the TOML, as with docs/schema.md.
The SLO burn alerts (``metrics.slo.ALERTS``, defined there once) are rendered into the same row, so
the SLO-burn occurrences fire exactly when ``r2p check`` would.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from r2p.config import load_toml

CONFIG = Path(__file__).parent / "defaults" / "fingerprint.toml"
MODEL = Path(__file__).parent / "models" / "staging" / "stg_fingerprint_rules.sql"

DIMENSIONS: tuple[str, ...] = (
    "source",
    "system",
    "interface",
    "target_system",
    "flow",
    "stage",
    "error_type",
    "error_codes",
    "message",
    "endpoint",
    "http_status_class",
    "queue",
    "facility_id",
    "supplier_id",
    "object_type",
    "cause",
)
"""What a grouping rule may test and key on: columns of int_exception_occurrences."""


def _check_regex(pattern: str) -> str:
    # Python's re is close enough to RE2 to catch typos; RE2-only failures surface at the first refresh.
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"bad regular expression {pattern!r}: {error}") from None
    return pattern


class Mask(BaseModel):
    """One masking step: every match of ``pattern`` in the message becomes ``replacement``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pattern: str
    replacement: str

    _valid_pattern = field_validator("pattern")(_check_regex)


class GroupingRule(BaseModel):
    """The first rule whose ``when`` patterns all match decides the dimensions keyed into the fingerprint."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    when: dict[str, str] = Field(default_factory=dict)
    key: list[str] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _known_conditions(cls, when: dict[str, str]) -> dict[str, str]:
        _known(when)
        for pattern in when.values():
            _check_regex(pattern)
        return when

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: list[str]) -> list[str]:
        _known(key)
        return key


def _known(names) -> None:
    unknown = sorted(set(names) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")


class FingerprintConfig(BaseModel):
    """Masks, kept error codes and grouping rules; the last rule must match everything."""

    model_config = ConfigDict(extra="forbid")

    masks: list[Mask]
    keep_codes: str
    event_error_type_attributes: list[str] = Field(min_length=1)
    event_message_attributes: list[str] = Field(min_length=1)
    groups: list[GroupingRule] = Field(min_length=1)

    _valid_keep = field_validator("keep_codes")(_check_regex)

    @field_validator("groups")
    @classmethod
    def _catch_all_last(cls, groups: list[GroupingRule]) -> list[GroupingRule]:
        if groups[-1].when:
            raise ValueError("the last grouping rule must have an empty `when`, so every occurrence has a group")
        names = [rule.name for rule in groups]
        if len(set(names)) != len(names):
            raise ValueError("grouping rule names must be unique")
        return groups


def load_config(path: Path = CONFIG) -> FingerprintConfig:
    """The validated fingerprint configuration."""
    return load_toml(FingerprintConfig, path, "fingerprint rules")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(texts: list[str]) -> str:
    return "[" + ", ".join(_literal(text) for text in texts) + "]"


def render(config: FingerprintConfig) -> str:
    """The staging model holding ``config`` and the SLO burn alerts as one row of SQL values."""
    from metrics.slo import ALERTS

    alerts = ",\n        ".join(
        f"{{'name': {_literal(a.name)}, 'long_s': {int(a.long_window.total_seconds())}, "
        f"'short_s': {int(a.short_window.total_seconds())}, 'threshold': {a.threshold!r}}}"
        for a in ALERTS
    )
    masks = ",\n        ".join(
        f"{{'name': {_literal(m.name)}, 'pattern': {_literal(m.pattern)}, 'replacement': {_literal(m.replacement)}}}"
        for m in config.masks
    )
    groups = []
    for position, rule in enumerate(config.groups, 1):
        when = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in rule.when.items())
        key = ", ".join(_literal(k) for k in rule.key)
        groups.append(
            f"{{'position': {position}, 'name': {_literal(rule.name)}, "
            f"'when': cast(MAP {{{when}}} as MAP(VARCHAR, VARCHAR)), 'key': cast([{key}] as VARCHAR[])}}"
        )
    group_list = ",\n        ".join(groups)
    return f"""-- One row: the exception fingerprint configuration. GENERATED from metrics/defaults/fingerprint.toml
-- by `python -m metrics.fingerprint`: edit the TOML, then regenerate; do not edit this file.
-- masks: {{name, pattern, replacement}} applied in order to a message (every match).
-- keep_codes: RE2 pattern of error codes kept as the error_codes dimension.
-- event_error_type_attributes, event_message_attributes: attribute names holding a business event's
--   error type and message, first non-empty wins.
-- groups: {{position, name, when (dimension -> RE2 full-match pattern), key (dimensions)}}; first match wins.
-- burn_alerts: {{name, long_s, short_s, threshold}} of metrics.slo.ALERTS, in order (the first firing wins).
select
    [
        {masks}
    ] as masks,
    {_literal(config.keep_codes)} as keep_codes,
    {_list(config.event_error_type_attributes)} as event_error_type_attributes,
    {_list(config.event_message_attributes)} as event_message_attributes,
    [
        {alerts}
    ] as burn_alerts,
    [
        {group_list}
    ] as groups
"""


if __name__ == "__main__":
    MODEL.write_text(render(load_config()))
    print(f"wrote {MODEL}")
