"""The JSON Schemas shipped in ``mlee/schema/`` and their validators (compiled by ``fastjsonschema``).

The schema files are the contract (the README's file-format section explains each key). ``fastjsonschema`` turns
each into Python code once per process, so validating 10,000 records costs well under a second. A document
that conforms costs one call; only a refused one is explained: the library's error (rule, path, value) becomes
one sentence such as ``records[0].energy_j.cpu is a string, not number or null``. For ``anyOf`` the sentence
comes from the alternative that takes the value's type, e.g. ``n_samples is 2.5``'s integer branch, not its
null branch. The test suite checks the files with the ``jsonschema`` package as well.

The files say draft 2020-12; the keywords they use (``type``, ``enum``, ``const``, ``properties``,
``required``, ``additionalProperties``, ``items`` as one schema, ``minItems``/``maxItems``, ``minLength``,
``pattern``, ``minimum``/``maximum``/``exclusiveMinimum``, ``anyOf``, ``allOf``, ``$ref`` without siblings)
mean the same in the drafts ``fastjsonschema`` implements, and ``tests/test_results_schema.py`` compares the
verdicts with ``jsonschema``'s draft 2020-12 validator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

from mlee.errors import ResultFormatError
from mlee.results.jsonio import a_json_type

#: Current version of each versioned file kind; readers refuse anything newer.
CURRENT_VERSIONS = {"results": 1, "database": 1, "trace_stats": 1}
#: Oldest version each reader still accepts (older ones are upgraded through MIGRATIONS).
MIN_VERSIONS = {"results": 1, "database": 1, "trace_stats": 1}
#: (kind, from_version) -> function turning a document of that version into one of the next version.
MIGRATIONS: dict[tuple[str, int], Callable[[dict], dict]] = {}

SCHEMA_FILES = ("results", "config", "environment", "database", "trace_stats")

#: Where the schema files say they live (their ``$id``); nothing is fetched from there.
BASE_URI = "https://mlee.invalid/schema/"

Check = Callable[[Any, str], "str | None"]


def schema_text(name: str) -> str:
    """The text of a shipped schema file, e.g. ``schema_text("results")``."""
    if name not in SCHEMA_FILES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_FILES)}")
    return resources.files("mlee").joinpath("schema", f"{name}.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The parsed schema ``mlee/schema/<name>.schema.json``."""
    return json.loads(schema_text(name))


def _absolute(node: Any, file: str) -> Any:
    """A copy of a schema node whose ``$ref`` values are absolute URIs, so any part of it compiles alone."""
    if isinstance(node, dict):
        out = {k: _absolute(v, file) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            ref_file, _, pointer = ref.partition("#")
            out["$ref"] = BASE_URI + (ref_file or f"{file}.schema.json") + ("#" + pointer if pointer else "")
        out.pop("$schema", None)
        return out
    if isinstance(node, list):
        return [_absolute(v, file) for v in node]
    return node


@lru_cache(maxsize=None)
def _absolute_schema(name: str) -> dict:
    return _absolute(load_schema(name), name)


def _fetch(uri: str) -> dict:
    """``fastjsonschema``'s handler for ``https:`` references: the shipped files, never the network."""
    name = uri.partition("#")[0].rsplit("/", 1)[-1].removesuffix(".schema.json")
    if not uri.startswith(BASE_URI) or name not in SCHEMA_FILES:
        raise ValueError(f"schema reference {uri!r} is not one of the shipped schemas")
    return _absolute_schema(name)


@lru_cache(maxsize=None)
def _compiled(node_json: str) -> Callable[..., Any]:
    """The ``fastjsonschema`` function for a node (given as JSON text, so that equal nodes share one)."""
    import fastjsonschema

    return fastjsonschema.compile(json.loads(node_json), handlers={"https": _fetch}, use_default=False,
                                  use_formats=False)


def _resolve(ref: str) -> dict:
    target: Any = _fetch(ref)
    for part in [p for p in ref.partition("#")[2].split("/") if p]:
        target = target[part]
    return target


#: Python types of parsed JSON per JSON Schema type ("integer" also takes integral floats).
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int, float),
}


def _takes_type(node: dict, value: Any, depth: int = 0) -> bool:
    """Whether an ``anyOf`` alternative accepts values of this Python type at all (unknown: yes)."""
    if depth > 8:
        return True
    if "type" in node:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return type(value) in {t for n in names for t in _PY_TYPES[n]}
    if "$ref" in node:
        return _takes_type(_resolve(node["$ref"]), value, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return any(_takes_type(sub, value, depth + 1) for sub in node[key])
    return True


def _where(path: str) -> str:
    return path or "the top level"


def _sentence(rule: str | None, node: dict, value: Any, where: str) -> str:
    """One refusal of ``fastjsonschema`` (the rule a value breaks at ``where``) in mlee's words."""
    at, prefix = _where(where), (where + ".") if where else ""
    if rule == "type":
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return f"{at} is {a_json_type(value)}, not {' or '.join(names)}"
    if rule == "minimum":
        return f"{at} is {value}, below {node['minimum']}"
    if rule == "maximum":
        return f"{at} is {value}, above {node['maximum']}"
    if rule == "exclusiveMinimum":
        return f"{at} is {value}, must be above {node['exclusiveMinimum']}"
    if rule == "const":
        return f"{at} must be {json.dumps(node['const'])}"
    if rule == "enum":
        shown = ", ".join(json.dumps(a) for a in node["enum"])
        return f"{at} is {json.dumps(value)[:40]}, not one of {shown}"
    if rule == "minLength":
        return f"{at} is shorter than {node['minLength']}"
    if rule == "pattern":
        return f"{at} is {value[:40]!r}, not in the expected form"
    if rule == "required":
        return f"{prefix}{next(k for k in node['required'] if k not in value)} is missing"
    if rule == "additionalProperties":
        return f"{prefix}{next(k for k in value if k not in node.get('properties', {}))} is not a known key"
    if rule == "minItems":
        return f"{at} has {len(value)} items, fewer than {node['minItems']}"
    if rule == "maxItems":
        return f"{at} has {len(value)} items, more than {node['maxItems']}"
    if rule == "oneOf":
        return f"{at} fits more than one of its alternatives"
    return f"{at} breaks the schema's {rule} rule"


def _explain(error: Any, path: str) -> str:
    """The sentence for a ``JsonSchemaValueException``; an ``anyOf`` is explained by the alternative that
    takes the value's type (the first one when none does)."""
    from fastjsonschema import JsonSchemaValueException

    while error.rule in ("anyOf", "oneOf"):
        alternatives = error.definition[error.rule]
        fitting = [a for a in alternatives if _takes_type(a, error.value)] or alternatives[:1]
        for alt in fitting:
            try:
                _compiled(json.dumps(alt))(error.value, name_prefix=error.name)
            except JsonSchemaValueException as inner:
                error = inner
                break
        else:  # an alternative accepts it: only a oneOf with two fitting alternatives gets here
            break
    rest = error.name[len("data"):]
    return _sentence(error.rule, error.definition, error.value, path + rest if path else rest.lstrip("."))


_CHECKS: dict[tuple[str, str], Check] = {}


def validator(name: str, pointer: str = "") -> Check:
    """A compiled check for schema ``name`` (optionally a ``$defs`` entry, e.g. ``"/$defs/record"``).

    The check returns None for a conforming document, else the first problem found as text, its path
    starting at the ``path`` it is given (``check(record, "records[3]")``).
    """
    check = _CHECKS.get((name, pointer))
    if check is None:
        from fastjsonschema import JsonSchemaValueException

        if name not in SCHEMA_FILES:
            raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_FILES)}")
        validate = _compiled(json.dumps({"$ref": f"{BASE_URI}{name}.schema.json" + (f"#{pointer}" if pointer else "")}))

        def check(v: Any, p: str) -> str | None:
            try:
                validate(v)
            except JsonSchemaValueException as error:
                return _explain(error, p)
            return None
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
