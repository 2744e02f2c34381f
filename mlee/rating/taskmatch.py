"""Which task of a spec rates a record: a task's ``match`` conditions, the most specific task first.

A spec task without ``match`` takes the records whose ``task`` field is its name (``inference``, ``training``),
as every spec did before issue 19. A task with ``match`` (``{"task": "inference", "transformers.task":
"text-generation"}``) takes the records whose dotted paths hold exactly those texts. A record goes to the task with
the most conditions that it meets (file order breaks a tie), so a transformers text-generation run is rated under
``text-generation`` where the spec has that task and under ``inference`` where it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlee.errors import UsageError

Conditions = tuple[tuple[str, str], ...]


def parse_match(data: Any, field: str, where: str) -> Conditions | None:
    """The ``match`` object of a task as sorted (dotted path, text) pairs; None when absent.

    Raises:
        UsageError: not an object of dotted paths to non-empty texts, or an empty object.
    """
    if data is None:
        return None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{where}{field}.match must be an object of dotted record paths and texts",
                         'e.g. {"task": "inference", "transformers.task": "text-generation"}')
    pairs = []
    for path, value in data.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise UsageError(f"{where}{field}.match: {path!r} is not a dotted record path like \"transformers.task\"")
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}{field}.match.{path} must be a non-empty text, got {value!r}")
        pairs.append((path, value))
    return tuple(sorted(pairs))


def conditions_of(name: str, match: Conditions | None) -> Conditions:
    """A task's conditions: its ``match``, or ``task == name`` without one."""
    return match if match is not None else (("task", name),)


def _test(path: str, wanted: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a record's ``path`` holds ``wanted`` (paths of one or two parts unrolled: this runs per record)."""
    keys = path.split(".")
    if len(keys) == 1:
        (k0,) = keys
        return lambda record: record.get(k0) == wanted
    if len(keys) == 2:
        k0, k1 = keys
        return lambda record: type(v := record.get(k0)) is dict and v.get(k1) == wanted

    def deep(record: dict[str, Any]) -> bool:
        value: Any = record
        for key in keys:
            if type(value) is not dict:
                return False
            value = value.get(key)
        return value == wanted

    return deep


def task_router(tasks: list[tuple[str, Conditions | None]]) -> Callable[[dict[str, Any]], str | None]:
    """A function from a record to the name of the task that rates it (None: no task of the spec).

    Args:
        tasks: ``(name, match)`` per task in file order.
    """
    if all(match is None for _, match in tasks):
        names = {name for name, _ in tasks}
        return lambda record: task if (task := record.get("task")) in names else None
    ordered = sorted(((name, conditions_of(name, match)) for name, match in tasks), key=lambda t: -len(t[1]))
    # Deeper paths first: a record without a transformers block fails a pipeline task at its first test.
    plan = [(name, [_test(path, value) for path, value in sorted(conds, key=lambda c: -c[0].count("."))])
            for name, conds in ordered]

    def route(record: dict[str, Any]) -> str | None:
        for name, tests in plan:
            for test in tests:
                if not test(record):
                    break
            else:
                return name
        return None

    return route


def top_level_keys(tasks: list[tuple[str, Conditions | None]]) -> set[str]:
    """The top-level record fields the conditions read (for databases loaded with only the fields rating needs)."""
    return {path.split(".", 1)[0] for name, match in tasks for path, _ in conditions_of(name, match)}
