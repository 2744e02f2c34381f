"""Reading rating spec files: JSON (no NaN or Infinity) or TOML, every problem a usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlee.errors import UsageError


def read_spec_file(path: Path) -> dict[str, Any]:
    """The object a JSON or TOML spec file holds.

    Raises:
        UsageError: the file cannot be read, is not UTF-8, not valid JSON/TOML, or holds no object.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read spec file {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data = _toml_loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise UsageError(f"spec file {path} is not UTF-8 text: {exc}") from exc
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise UsageError(f"spec file {path} is not valid {kind}: {exc}",
                         "a spec is a JSON or TOML object (see `mlee rate --help`)") from exc
    if not isinstance(data, dict):
        raise UsageError(f"spec file {path} must hold an object at the top level, not {type(data).__name__}")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a spec may hold")


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError as exc:
            raise UsageError("TOML specs need Python 3.11 or the tomli package",
                             "pip install tomli, or write the spec as JSON") from exc
    return tomllib.loads(text)
