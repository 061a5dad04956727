"""Configuration of the trace collector: business-key mapping and redaction, from TOML.

``collectors/defaults/traces.toml`` holds the defaults (DOMAIN.md section 4 keys, PHI rules); a
user file overrides it as that file's header explains.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.redaction import RedactionConfig
from r2p.config import read_toml, validated
from r2p.schema import BUSINESS_COLUMNS

DEFAULTS = Path(__file__).parent / "defaults" / "traces.toml"


class StandardKeys(BaseModel):
    """Standard OpenTelemetry attributes pulled into their own columns (kept in `attributes` too)."""

    model_config = ConfigDict(extra="forbid")

    http_status_code: list[str]
    error_type: list[str]


class TracesConfig(BaseModel):
    """Everything the trace collector can be told."""

    model_config = ConfigDict(extra="forbid")

    business: dict[str, list[str]] = Field(description="Business column -> attribute keys, first present wins.")
    standard: StandardKeys
    redaction: RedactionConfig

    @field_validator("business")
    @classmethod
    def _known_columns(cls, business: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(business) - set(BUSINESS_COLUMNS)
        if unknown:
            raise ValueError(f"unknown business column(s) {sorted(unknown)}; known: {', '.join(BUSINESS_COLUMNS)}")
        return business

    def mapped_keys(self) -> list[str]:
        """Every attribute key some business column is read from (these leave `attributes`)."""
        return list(dict.fromkeys(key for keys in self.business.values() for key in keys))


def _merge(defaults: dict, user: dict) -> dict:
    merged = {**defaults}
    for section, values in user.items():
        if section == "redaction" and isinstance(values, dict):
            redaction = {**defaults.get("redaction", {})}
            values = dict(values)
            replace = values.pop("replace_defaults", False)
            for key, value in values.items():
                if key in ("deny_keys", "maskers") and not replace:
                    redaction[key] = [*redaction.get(key, []), *value]
                else:
                    redaction[key] = value
            merged["redaction"] = redaction
        elif isinstance(values, dict) and isinstance(defaults.get(section), dict):
            merged[section] = {**defaults[section], **values}
        else:
            merged[section] = values
    return merged


def load_config(path: Path | None = None) -> TracesConfig:
    """The defaults, overridden by the TOML file at ``path`` when given."""
    data = read_toml(DEFAULTS, "traces config")
    if path is not None:
        data = _merge(data, read_toml(path, "traces config"))
    return validated(TracesConfig, data, "traces config", path or DEFAULTS)
