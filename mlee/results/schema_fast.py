"""A yes/no twin of the schema validator in :mod:`mlee.results.schema`, for the common case: a valid document.

The validator of ``schema.py`` names the first problem with its path, so it builds a path string for every
key it visits, even when nothing is wrong; for a merge of 10,000 folders that was most of its cost. The
twin compiled here answers only "conforms or not" and builds no text. :func:`mlee.results.schema.problem`
asks the twin first and runs the naming validator only when the answer is no, so the messages are the
same as before. The twin mirrors the naming validator rule by rule: it must never accept what that one
refuses (``tests/test_results_schema.py`` checks :func:`~mlee.results.schema.problem`, so the pair, against
``jsonschema``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlee.results.schema_base import RefCompiler, type_gate, type_test

Ok = Callable[[Any], bool]


def _true(v: Any) -> bool:
    return True


class FastCompiler(RefCompiler):
    """Turns schema nodes into ``ok(value) -> bool`` functions (the same subset as ``schema._Compiler``)."""

    def compile(self, node: dict, file: str) -> Ok:
        checks: list[Ok] = []
        if "$ref" in node:
            ref_file, _, pointer = node["$ref"].partition("#")
            checks.append(self.ref(ref_file.replace(".schema.json", "") if ref_file else file, pointer))
        if "type" in node:
            checks.append(self._typed(node))
        if "const" in node:
            const = node["const"]
            checks.append(lambda v, c=const: v == c)
        if "enum" in node:
            allowed = tuple(node["enum"])
            checks.append(lambda v, a=allowed: v in a and not isinstance(v, bool))
        self.shape_checks(node, file, checks)
        for key in ("anyOf", "oneOf"):
            if key in node:
                checks.append(self._any([(type_gate(sub, file), self.compile(sub, file)) for sub in node[key]]))
        if "allOf" in node:
            checks.extend(self.compile(sub, file) for sub in node["allOf"])
        if not checks:
            return _true
        if len(checks) == 1:
            return checks[0]

        def ok_all(v: Any, checks: tuple = tuple(checks)) -> bool:
            for c in checks:
                if not c(v):
                    return False
            return True
        return ok_all

    @staticmethod
    def _typed(node: dict) -> Ok:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        test = type_test(names)
        lo, hi, above = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
        if lo is None and hi is None and above is None:
            return test

        def ok_type(v: Any) -> bool:
            if not test(v):
                return False
            if type(v) in (int, float):
                if lo is not None and v < lo:
                    return False
                if hi is not None and v > hi:
                    return False
                if above is not None and v <= above:
                    return False
            return True
        return ok_type

    @staticmethod
    def _numeric(node: dict, checks: list) -> None:
        lo, hi, above = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
        if lo is None and hi is None and above is None:
            return

        def ok_num(v: Any) -> bool:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return True
            return not ((lo is not None and v < lo) or (hi is not None and v > hi)
                        or (above is not None and v <= above))
        checks.append(ok_num)

    @staticmethod
    def _strings(node: dict, checks: list) -> None:
        import re

        if "minLength" in node:
            checks.append(lambda v, m=node["minLength"]: not isinstance(v, str) or len(v) >= m)
        if "pattern" in node:
            rx = re.compile(node["pattern"])
            checks.append(lambda v, rx=rx: not isinstance(v, str) or rx.search(v) is not None)

    def _objects(self, node: dict, file: str, checks: list) -> None:
        parts = self.object_parts(node, file)
        if parts is None:
            return
        props, required, extra, extra_check = parts
        closed = extra is False

        def ok_obj(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key in required:
                if key not in v:
                    return False
            for key, value in v.items():
                c = props.get(key)
                if c is None:
                    if closed:
                        return False
                    c = extra_check
                    if c is None:
                        continue
                if not c(value):
                    return False
            return True
        checks.append(ok_obj)

    def _arrays(self, node: dict, file: str, checks: list) -> None:
        parts = self.array_parts(node, file)
        if parts is None:
            return
        item, lo, hi = parts

        def ok_arr(v: Any) -> bool:
            if not isinstance(v, list):
                return True
            if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
                return False
            if item is not None:
                for x in v:
                    if not item(x):
                        return False
            return True
        checks.append(ok_arr)

    @staticmethod
    def _any(alts: list[tuple[frozenset | None, Ok]]) -> Ok:
        def ok_any(v: Any) -> bool:
            t = type(v)
            tried = False
            for gate, alt in alts:
                if gate is not None and t not in gate:
                    continue
                tried = True
                if alt(v):
                    return True
            # No branch takes this type: the naming validator then judges by the first branch alone.
            return False if tried else alts[0][1](v)
        return ok_any


_FAST = FastCompiler()


def fast_validator(name: str, pointer: str = "") -> Ok:
    """The yes/no check of schema ``name`` (optionally a ``$defs`` entry)."""
    return _FAST.ref(name, pointer)
