"""The JSON Schemas shipped in ``mlee/schema/`` and a small, fast validator for the subset they use.

The schema files are the contract (docs/file-formats.md explains each key); this module compiles them into
closures once per process, so validating 10,000 records costs well under a second and needs no third-party
package at run time. The subset: ``type``, ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``/``maxItems``, ``minLength``, ``pattern``, ``minimum``/
``maximum``/``exclusiveMinimum``, ``anyOf``/``oneOf`` (treated as anyOf), ``allOf`` and ``$ref`` (within a file
or to a sibling file). The test suite checks these files with the ``jsonschema`` package as well.

fastjsonschema was measured in its place (issue 21): 121-131 us of CPU per merged folder (results, config,
environment) against 64-75 us for this validator and its twin, plus about 0.1 s to compile the schemas in
every process, so the hand-made pair stays.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from mlee.errors import ResultFormatError
from mlee.results.jsonio import a_json_type
from mlee.results.schema_base import RefCompiler, type_gate, type_test

#: Current version of each versioned file kind; readers refuse anything newer.
CURRENT_VERSIONS = {"results": 1, "database": 1, "trace_stats": 1}
#: Oldest version each reader still accepts (older ones are upgraded through MIGRATIONS).
MIN_VERSIONS = {"results": 1, "database": 1, "trace_stats": 1}
#: (kind, from_version) -> function turning a document of that version into one of the next version.
MIGRATIONS: dict[tuple[str, int], Callable[[dict], dict]] = {}

Check = Callable[[Any, str], "str | None"]


def _where(path: str) -> str:
    return path or "the top level"


class _Compiler(RefCompiler):
    """Turns schema nodes into check functions ``check(value, path) -> error text | None``."""

    def compile(self, node: dict, file: str) -> Check:
        checks: list[Check] = []
        if "$ref" in node:
            target = node["$ref"]
            ref_file, _, pointer = target.partition("#")
            ref_name = ref_file.replace(".schema.json", "") if ref_file else file
            checks.append(self.ref(ref_name, pointer))
        if "type" in node:
            names = node["type"] if isinstance(node["type"], list) else [node["type"]]
            test = type_test(names)
            label = " or ".join(names)
            lo, hi, above = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
            bounded = lo is not None or hi is not None or above is not None

            def check_type(v: Any, p: str, test: Callable = test, label: str = label) -> str | None:
                if test(v):
                    # Bounds inline: the commonest node is a bounded number, one call instead of several.
                    if bounded and type(v) in (int, float):
                        if lo is not None and v < lo:
                            return f"{_where(p)} is {v}, below {lo}"
                        if hi is not None and v > hi:
                            return f"{_where(p)} is {v}, above {hi}"
                        if above is not None and v <= above:
                            return f"{_where(p)} is {v}, must be above {above}"
                    return None
                if isinstance(v, float) and not math.isfinite(v):
                    return f"{_where(p)} is not finite"
                return f"{_where(p)} is {a_json_type(v)}, not {label}"
            checks.append(check_type)
        if "const" in node:
            const = node["const"]
            checks.append(lambda v, p, c=const: None if v == c else f"{_where(p)} must be {json.dumps(c)}")
        if "enum" in node:
            allowed = node["enum"]
            shown = ", ".join(json.dumps(a) for a in allowed)
            checks.append(lambda v, p, a=tuple(allowed), s=shown:
                          None if (v in a and not isinstance(v, bool)) else f"{_where(p)} is {json.dumps(v)[:40]}, not one of {s}")
        self.shape_checks(node, file, checks)
        for key in ("anyOf", "oneOf"):
            if key in node:
                alts = [(type_gate(sub, file), self.compile(sub, file)) for sub in node[key]]

                def check_any(v: Any, p: str, alts: list = alts) -> str | None:
                    first = None
                    t = type(v)
                    for gate, alt in alts:
                        if gate is not None and t not in gate:
                            continue
                        err = alt(v, p)
                        if err is None:
                            return None
                        first = first or err
                    if first is None:  # no branch takes this type: let the first one say why
                        first = alts[0][1](v, p)
                    return first
                checks.append(check_any)
        if "allOf" in node:
            checks.extend(self.compile(sub, file) for sub in node["allOf"])
        if len(checks) == 1:
            return checks[0]

        def check_all(v: Any, p: str, checks: list = checks) -> str | None:
            for c in checks:
                err = c(v, p)
                if err is not None:
                    return err
            return None
        return check_all

    @staticmethod
    def _numeric(node: dict, checks: list) -> None:
        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if "minimum" in node:
            checks.append(lambda v, p, m=node["minimum"]: None if not is_num(v) or v >= m else f"{_where(p)} is {v}, below {m}")
        if "maximum" in node:
            checks.append(lambda v, p, m=node["maximum"]: None if not is_num(v) or v <= m else f"{_where(p)} is {v}, above {m}")
        if "exclusiveMinimum" in node:
            checks.append(lambda v, p, m=node["exclusiveMinimum"]:
                          None if not is_num(v) or v > m else f"{_where(p)} is {v}, must be above {m}")

    @staticmethod
    def _strings(node: dict, checks: list) -> None:
        if "minLength" in node:
            checks.append(lambda v, p, m=node["minLength"]:
                          None if not isinstance(v, str) or len(v) >= m else f"{_where(p)} is shorter than {m}")
        if "pattern" in node:
            rx = re.compile(node["pattern"])
            checks.append(lambda v, p, rx=rx: None if not isinstance(v, str) or rx.search(v)
                          else f"{_where(p)} is {v[:40]!r}, not in the expected form")

    def _objects(self, node: dict, file: str, checks: list) -> None:
        parts = self.object_parts(node, file)
        if parts is None:
            return
        props, required, extra, extra_check = parts

        def check_obj(v: Any, p: str) -> str | None:
            if not isinstance(v, dict):
                return None
            for key in required:
                if key not in v:
                    return f"{(p + '.') if p else ''}{key} is missing"
            for key, value in v.items():
                sub = f"{p}.{key}" if p else str(key)
                c = props.get(key)
                if c is None:
                    if extra is False:
                        return f"{sub} is not a known key"
                    c = extra_check
                if c is not None:
                    err = c(value, sub)
                    if err is not None:
                        return err
            return None
        checks.append(check_obj)

    def _arrays(self, node: dict, file: str, checks: list) -> None:
        parts = self.array_parts(node, file)
        if parts is None:
            return
        item, lo, hi = parts

        def check_arr(v: Any, p: str) -> str | None:
            if not isinstance(v, list):
                return None
            if lo is not None and len(v) < lo:
                return f"{_where(p)} has {len(v)} items, fewer than {lo}"
            if hi is not None and len(v) > hi:
                return f"{_where(p)} has {len(v)} items, more than {hi}"
            if item is not None:
                for i, x in enumerate(v):
                    err = item(x, f"{p}[{i}]")
                    if err is not None:
                        return err
            return None
        checks.append(check_arr)


_COMPILER = _Compiler()


_CHECKS: dict[tuple[str, str], Check] = {}


def validator(name: str, pointer: str = "") -> Check:
    """A compiled check for schema ``name`` (optionally a ``$defs`` entry, e.g. ``"/$defs/record"``).

    A valid document is recognised by the yes/no twin of :mod:`mlee.results.schema_fast`, which builds no
    path text; only a document it refuses goes through the validator that names the problem.
    """
    check = _CHECKS.get((name, pointer))
    if check is None:
        from mlee.results.schema_fast import fast_validator

        named, ok = _COMPILER.ref(name, pointer), fast_validator(name, pointer)

        def check(v: Any, p: str) -> str | None:
            return None if ok(v) else named(v, p)
        _CHECKS[(name, pointer)] = check
    return check


def problem(name: str, document: Any, pointer: str = "") -> str | None:
    """The first way ``document`` breaks schema ``name``, as text; None when it conforms."""
    return validator(name, pointer)(document, "")


def check_version(kind: str, document: dict, label: str) -> dict:
    """Refuse newer versions, upgrade older ones, and return the document at the current version.

    Args:
        kind: ``"results"``, ``"database"`` or ``"trace_stats"``.
        document: The parsed JSON object.
        label: File name for messages.

    Raises:
        ResultFormatError: version missing, not an integer, too old or newer than this mlee.
    """
    version = document.get("schema_version")
    current, oldest = CURRENT_VERSIONS[kind], MIN_VERSIONS[kind]
    if isinstance(version, bool) or not isinstance(version, int):
        shown = "missing" if version is None else f"{json.dumps(version)[:20]}, not an integer"
        raise ResultFormatError(f"{label}: schema_version is {shown}", "is this an mlee file?")
    if version > current:
        from mlee import __version__

        raise ResultFormatError(
            f"{label} has schema_version {version}, newer than this mlee {__version__} reads ({current})",
            "upgrade mlee: pip install -U mlee",
        )
    if version < oldest:
        raise ResultFormatError(f"{label} has schema_version {version}, older than the oldest supported ({oldest})",
                                "re-create it with an mlee release of that time")
    while version < current:
        document = MIGRATIONS[(kind, version)](document)
        version += 1
        document["schema_version"] = version
    return document
