"""Reading configuration files: TOML validated by a pydantic model, every mistake one UserError line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from r2p.errors import UserError

Model = TypeVar("Model", bound=BaseModel)


def read_toml(path: Path | str, what: str) -> dict[str, Any]:
    """The TOML document at ``path``; ``what`` names the file in the error (e.g. "mapping")."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{what} {path} is not valid TOML: {error}") from None


def validated(model: type[Model], data: dict[str, Any], what: str, path: Path | str) -> Model:
    """``data`` as ``model``; the first fault becomes one line naming the file and the key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(f"{what} {path}: {where}: {first['msg']}") from None


def load_toml(model: type[Model], path: Path | str, what: str) -> Model:
    """Read and validate one configuration file."""
    return validated(model, read_toml(path, what), what, path)
