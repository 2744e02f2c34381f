"""The JSON Schemas shipped in ``mlee/schema/`` as files, and the type tests both validators share.

:mod:`mlee.results.schema` (the validator that names a problem) and :mod:`mlee.results.schema_fast` (its yes/no
twin) compile schema nodes the same way; what each reads of a node's ``type`` lives here, so neither reads the
other's private names.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_FILES = ("results", "config", "environment", "database", "trace_stats")


def schema_text(name: str) -> str:
    """The text of a shipped schema file, e.g. ``schema_text("results")``."""
    if name not in SCHEMA_FILES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_FILES)}")
    return resources.files("mlee").joinpath("schema", f"{name}.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The parsed schema ``mlee/schema/<name>.schema.json``."""
    return json.loads(schema_text(name))


#: Exact Python types of parsed JSON per JSON Schema type ("integer" also admits integral floats, below).
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int,),
}


def type_test(names: list[str]) -> Callable[[Any], bool]:
    """A test of a value against JSON Schema ``type`` names: exact parsed-JSON types, finite numbers only."""
    exact = frozenset(t for n in names for t in _PY_TYPES[n])
    containers = tuple(t for t in exact if t in (dict, list))
    integral_floats = "integer" in names and "number" not in names
    numeric = "number" in names or "integer" in names

    def test(v: Any) -> bool:
        t = type(v)
        if t in exact:
            # Parsed JSON cannot hold NaN (readers refuse it), but documents built in memory can.
            return not (t is float and (v != v or v in (_INF, -_INF)))
        if t is float and integral_floats:
            return v.is_integer()
        if numeric and t is not bool and isinstance(v, (int, float)):
            return math.isfinite(v)
        return bool(containers) and isinstance(v, containers)  # dict/list subclasses built in memory
    return test


_INF = float("inf")


def type_gate(node: dict, file: str, depth: int = 0) -> frozenset | None:
    """The Python types a schema node can accept (None: any), to skip hopeless anyOf branches cheaply."""
    if depth > 8:
        return None
    if "type" in node:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        types = {t for n in names for t in _PY_TYPES[n]}
        if "integer" in names:
            types.add(float)
        return frozenset(types)
    if "$ref" in node:
        ref_file, _, pointer = node["$ref"].partition("#")
        target: Any = load_schema(ref_file.replace(".schema.json", "") if ref_file else file)
        for part in [p for p in pointer.split("/") if p]:
            target = target[part]
        return type_gate(target, ref_file.replace(".schema.json", "") if ref_file else file, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in node:
            gates = [type_gate(sub, file, depth + 1) for sub in node[key]]
            return None if any(g is None for g in gates) else frozenset().union(*gates)
    return None


class RefCompiler(abc.ABC):
    """What the two schema compilers share (``schema._Compiler`` says what is wrong, ``schema_fast.FastCompiler``
    only whether anything is): ``$ref`` targets compiled once and safe to recurse, the order of a node's shape
    checks, and the compiled parts of object and array nodes. A subclass gives the abstract methods."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}

    @abc.abstractmethod
    def compile(self, node: dict, file: str) -> Any:
        """The check function of schema ``node`` (of schema ``file``, for its relative ``$ref``s)."""

    @staticmethod
    @abc.abstractmethod
    def _numeric(node: dict, checks: list) -> None:
        """Append the checks of ``minimum``/``maximum`` and the like."""

    @staticmethod
    @abc.abstractmethod
    def _strings(node: dict, checks: list) -> None:
        """Append the checks of ``minLength``, ``pattern`` and the like."""

    @abc.abstractmethod
    def _objects(self, node: dict, file: str, checks: list) -> None:
        """Append the object check (see :meth:`object_parts`)."""

    @abc.abstractmethod
    def _arrays(self, node: dict, file: str, checks: list) -> None:
        """Append the array check (see :meth:`array_parts`)."""

    def ref(self, file: str, pointer: str) -> Any:
        """The compiled check of ``pointer`` in schema ``file``."""
        key = f"{file}#{pointer}"
        if key not in self._refs:
            holder: list[Any] = []
            # Placeholder first so recursive references terminate; replaced once compiled.
            self._refs[key] = lambda *args: holder[0](*args)
            node: Any = load_schema(file)
            for part in [p for p in pointer.split("/") if p]:
                node = node[part]
            holder.append(self.compile(node, file))
            self._refs[key] = holder[0]
        return self._refs[key]

    def shape_checks(self, node: dict, file: str, checks: list) -> None:
        """Append the numeric (for a node without a type), string, object and array checks, in that order."""
        if "type" not in node:
            self._numeric(node, checks)
        self._strings(node, checks)
        self._objects(node, file, checks)
        self._arrays(node, file, checks)

    def object_parts(self, node: dict, file: str) -> tuple[dict[str, Any], tuple, Any, Any] | None:
        """Compiled ``properties``, ``required``, ``additionalProperties`` and its compiled check; None when the
        node says nothing about objects."""
        props = {k: self.compile(s, file) for k, s in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        extra = node.get("additionalProperties", True)
        extra_check = self.compile(extra, file) if isinstance(extra, dict) else None
        if not (props or required or extra is not True):
            return None
        return props, required, extra, extra_check

    def array_parts(self, node: dict, file: str) -> tuple[Any, int | None, int | None] | None:
        """Compiled ``items``, ``minItems`` and ``maxItems``; None when the node says nothing about arrays."""
        item = self.compile(node["items"], file) if isinstance(node.get("items"), dict) else None
        lo, hi = node.get("minItems"), node.get("maxItems")
        if item is None and lo is None and hi is None:
            return None
        return item, lo, hi
