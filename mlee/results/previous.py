"""What the existing database contributes to a merge into it: its ids, and for ``--update`` its records' lines
(or spans of the old file to copy), facts and inputs, read through the ``--update`` index when it is current,
else from the database itself (record by record when it is in the writer's layout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlee.errors import ResultFormatError, UsageError
from mlee.results.database import dumps_line, parse_database, read_index
from mlee.results.dbread import iter_database
from mlee.results.dbstream import NotStreamable
from mlee.results.splice import Source, Span, database_stamp
from mlee.results.summary import facts, unpack_facts


@dataclass
class Previous:
    """What the existing database contributes to an ``--update`` merge."""

    lines: dict[str, bytes | Span] = field(default_factory=dict)
    facts: dict[str, dict | None] = field(default_factory=dict)
    rec_inputs: dict[str, list[str]] = field(default_factory=dict)
    inputs: dict[str, dict] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    indexed: bool = False
    source: Source | None = None  # the database itself, open, when its records are copied as spans


def read_previous(output: Path, update: bool, overwrite: bool) -> Previous:
    """Read the existing database at ``output`` (through its index when that is current)."""
    prev = Previous()
    if not output.exists():
        return prev
    idx = read_index(output)
    if idx is not None:
        try:
            prev.ids = set(idx["records"])
            prev.indexed = True
            if update:
                # Unchanged records are not read: they are copied from this file to the new one as spans.
                prev.source = Source(output, idx["database"])
                groups = idx.get("groups") or []
                for rid, (off, length, packed, rec_inputs) in idx["records"].items():
                    prev.lines[rid] = Span(off, length)
                    prev.facts[rid] = unpack_facts(rid, packed, groups)
                    prev.rec_inputs[rid] = list(rec_inputs)
                prev.inputs = dict(idx["inputs"])
                prev.skipped = list(idx.get("skipped") or [])
            return prev
        except (ValueError, TypeError, KeyError, IndexError, OSError):
            if prev.source is not None:
                prev.source.close()
            prev = Previous()  # an index we cannot use is only a lost shortcut: read the database itself
    try:
        try:
            return previous_streamed(output, update)
        except NotStreamable:
            pass
        data = output.read_bytes()
        db = parse_database(data, output.name, validate=update)
    except (OSError, ResultFormatError) as exc:
        if overwrite and not update:
            return prev
        raise UsageError(f"{output} exists and is not a readable mlee database ({exc})",
                         "choose another -o, or pass --overwrite to replace it") from None
    for rec in db["records"]:
        _take(prev, rec, update, None)
    if update:
        prev.skipped = list(db["skipped"])
    return prev


class _Shared:
    """Makes the facts of many records share their group objects (key, backend, model facts), as facts unpacked
    from the ``--update`` index do: 100,000 records of a few hundred models then hold a few hundred of each."""

    def __init__(self) -> None:
        self.groups: dict[tuple, tuple] = {}

    def __call__(self, f: dict | None) -> dict | None:
        if f is None:
            return None
        key, backend, info = f["key"], f["backend"], f["model_info"]
        tag = (tuple(map(str, key)), repr(sorted((backend or {}).items())),
               repr(sorted(info.items())) if isinstance(info, dict) else repr(info))
        f["key"], f["backend"], f["model_info"] = self.groups.setdefault(tag, (key, backend, info))
        return f


def _take(prev: Previous, rec: dict, update: bool, span: Span | None, share: _Shared | None = None) -> None:
    """One record of the existing database: its id, and for ``--update`` its line (or span) and facts."""
    prev.ids.add(rec["id"])
    if update:
        prev.lines[rec["id"]] = span if span is not None else dumps_line(rec)
        try:
            prev.facts[rec["id"]] = share(facts(rec)) if share is not None else facts(rec)
        except (KeyError, TypeError, AttributeError):  # only a record that skipped the schema check gets here
            raise ResultFormatError(f"record {rec['id']!r} is not a complete mlee record") from None
        prev.rec_inputs[rec["id"]] = []


def previous_streamed(output: Path, update: bool) -> Previous:
    """:func:`read_previous` without an index, record by record: unchanged records are copied as spans of the old
    file, so memory holds their facts, not their text. NotStreamable when the file is not in the writer's layout."""
    prev = Previous()
    heads: list = []
    try:
        # Records are copied as they are, so they are not schema-checked here (as with the index, which checks
        # nothing): each must be a JSON object with an id; readers of the database check them whole.
        share = _Shared()
        for rec, offset, length in iter_database(output, False, heads.append):
            _take(prev, rec, update, Span(offset, length), share)
        if update:
            prev.skipped = list(heads[0].head["skipped"])
            if not all(isinstance(s, dict) and isinstance(s.get("path"), str) and isinstance(s.get("reason"), str)
                       for s in prev.skipped):
                raise ResultFormatError(f"{output.name}: a skipped entry is not a path and a reason")
            prev.source = Source(output, database_stamp(heads[0].stat))
    except ValueError as exc:  # the file changed between reading and opening it for the copy
        raise ResultFormatError(str(exc)) from None
    return prev
