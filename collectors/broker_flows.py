"""Flow mapping of the backlog collector: which integration flow a queue or topic carries.

The configuration is TOML (defaults in ``collectors/defaults/backlog.toml``, which documents the
pattern syntax), validated here with pydantic so a typo in a user file is one clear error.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import click
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from r2p.config import load_toml
from r2p.errors import UserError
from r2p.schema import Stage

DEFAULT_CONFIG = Path(__file__).parent / "defaults" / "backlog.toml"
FLOW_COLUMNS = ("flow", "stage", "source_system", "target_system", "facility_id")
CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             help="Flow mapping TOML (default: collectors/defaults/backlog.toml).")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` -> any characters, ``{facility}`` -> one name segment (captured); the rest literal."""
    parts = re.split(r"(\*|\{facility\})", pattern)
    translated = "".join(".*" if part == "*" else "(?P<facility>[^./]+)" if part == "{facility}" else re.escape(part)
                         for part in parts)
    return re.compile(translated)


class FlowRule(BaseModel):
    """One queue or topic name pattern and the flow it carries."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1)
    flow: str = Field(min_length=1)
    stage: Stage | None = None
    source_system: str | None = None
    target_system: str | None = None
    facility: str | None = Field(None, description="Fixed facility code, for a pattern without {facility}.")

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return _pattern_regex(self.pattern)


class DeadLetterRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_patterns: list[str] = Field(default_factory=list)

    @cached_property
    def regexes(self) -> list[re.Pattern[str]]:
        return [re.compile(_pattern_regex(pattern).pattern, re.IGNORECASE) for pattern in self.name_patterns]


class FlowConfig(BaseModel):
    """The whole backlog configuration file."""

    model_config = ConfigDict(extra="forbid")

    dead_letter: DeadLetterRules = Field(default_factory=DeadLetterRules)
    flows: list[FlowRule] = Field(default_factory=list)
    _flows_by_name: dict[str, dict[str, str | None] | None] = PrivateAttr(default_factory=dict)
    """flow_of's answers: a capture repeats the same few names at every observation."""

    def is_dead_letter_name(self, name: str) -> bool:
        """True when the name matches a dead-letter naming pattern."""
        return any(regex.fullmatch(name) for regex in self.dead_letter.regexes)

    def flow_of(self, name: str) -> dict[str, str | None] | None:
        """The flow columns for a queue or topic name, from the first matching rule; None if none."""
        if name not in self._flows_by_name:
            self._flows_by_name[name] = self._match(name)
        found = self._flows_by_name[name]
        return dict(found) if found is not None else None

    def _match(self, name: str) -> dict[str, str | None] | None:
        for rule in self.flows:
            match = rule.regex.fullmatch(name)
            if match:
                segment = match.groupdict().get("facility")
                fill = (lambda text: text.replace("{facility}", segment)) if segment else (lambda text: text)
                return {
                    "flow": rule.flow,
                    "stage": rule.stage,
                    "source_system": fill(rule.source_system) if rule.source_system else None,
                    "target_system": fill(rule.target_system) if rule.target_system else None,
                    "facility_id": segment.upper() if segment else rule.facility,
                }
        return None


def load_config(path: Path | None = None) -> FlowConfig:
    """The user's configuration file, or the defaults; a bad file is a UserError naming the fault."""
    return load_toml(FlowConfig, path or DEFAULT_CONFIG, "backlog config")
