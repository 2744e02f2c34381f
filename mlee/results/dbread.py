"""Reading a merged database (docs/design.md §3): validated, whole or record by record.

:mod:`mlee.results.database` re-exports :func:`load_database` and :func:`parse_database`; the writing side
(layout, lock, atomic write, ``--update`` index) stays there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError
from mlee.results.dbstream import Layout, NotStreamable, layout, stream_records
from mlee.results.jsonio import parse_json, paused_gc, read_bytes
from mlee.results.schema import CURRENT_VERSIONS, check_version, validator

KIND = "mlee-database"
SCHEMA_VERSION = 1
#: Largest database read whole (a file in the writer's layout is read record by record, with no limit).
#: Units: bytes.
MAX_DATABASE_BYTES = 4 << 30


def _check_kind(db: dict, label: str, keys: tuple[str, ...] = ("records", "summaries", "skipped")) -> None:
    if db.get("kind") != KIND:
        raise ResultFormatError(f"{label} is not an mlee database (kind is {json.dumps(db.get('kind'))[:40]})",
                                "create one with: mlee merge DIR -o FILE")
    for key in keys:
        if not isinstance(db.get(key), list):
            raise ResultFormatError(f"{label}: {key} is missing or not a list")


class _RecordCheck:
    """Schema check of records one at a time, ids unique (what a whole-file read and a streamed one share)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.check = validator("database", "/$defs/record")
        self.seen: set[str] = set()

    def __call__(self, i: int, rec: Any) -> None:
        err = self.check(rec, f"records[{i}]")
        if err is not None:
            raise ResultFormatError(f"{self.label}: {err}")
        if rec["id"] in self.seen:
            raise ResultFormatError(f"{self.label}: record id {rec['id']!r} appears twice")
        self.seen.add(rec["id"])


def _validate(db: dict, label: str) -> dict:
    db = check_version("database", db, label)
    _check_kind(db, label)
    check = _RecordCheck(label)
    for i, rec in enumerate(db["records"]):
        check(i, rec)
    _validate_tail(db, label)
    return db


def _validate_tail(db: dict, label: str) -> None:
    for key, pointer in (("summaries", "/$defs/summary"), ("skipped", "/$defs/skipped")):
        check = validator("database", pointer)
        for i, item in enumerate(db[key]):
            err = check(item, f"{key}[{i}]")
            if err is not None:
                raise ResultFormatError(f"{label}: {err}")


def parse_database(data: bytes, label: str = "database", validate: bool = True) -> dict:
    """Parse database bytes (see :func:`load_database`)."""
    db = parse_json(data, label)
    if not isinstance(db, dict):
        raise ResultFormatError(f"{label} is not a JSON object", "create one with: mlee merge DIR -o FILE")
    return _validate(db, label) if validate else check_version("database", db, label)


def load_database(path: str | Path, validate: bool = True, keys: Collection[str] | None = None) -> dict:
    """Read a merged database, validated against ``mlee/schema/database.schema.json``.

    Older schema versions are upgraded; newer ones are refused. A file in the writer's layout (one record per
    line) is read record by record (:mod:`mlee.results.dbstream`): with ``keys``, what stays in memory is only
    those fields of each record, so reading needs about the largest record plus the projection.

    Args:
        path: The database file (``mlee merge`` output).
        validate: Check every record, summary and skipped entry (the default); False only checks the version.
        keys: Keep only these top-level fields of each record (each record is validated whole first);
            None keeps records whole.

    Returns:
        The database: ``{"schema_version", "kind", "mlee_version", "records", "summaries", "skipped"}``.

    Raises:
        ResultFormatError: missing, truncated, not UTF-8, newer schema, or a record with wrong types.
    """
    path = Path(path)
    try:
        with paused_gc():  # records hold no cycles; the collector would rescan them every few thousand
            return _load_streaming(path, validate, keys)
    except NotStreamable:
        pass
    db = parse_database(read_bytes(path, MAX_DATABASE_BYTES), path.name, validate)
    if keys is not None:
        db["records"] = [{k: r[k] for k in keys if k in r} if isinstance(r, dict) else r for r in db["records"]]
    return db


def is_database(path: str | Path) -> bool:
    """Whether ``path`` is a merged mlee database: a JSON object whose ``kind`` is ``"mlee-database"``.

    Judged by parsing, never by looking for bytes: a file in the writer's layout has its head and tail parsed
    (a few KB, whatever its size); a file laid out otherwise is parsed whole (up to ``MAX_DATABASE_BYTES``).
    Anything that cannot be read or parsed (a FIFO, a folder, a truncated file, other JSON) is not a database.
    Records are not checked here: :func:`load_database` does that when the file is read.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            try:
                head: Any = layout(fh, path.name).head
            except NotStreamable:
                fh.seek(0)
                if not fh.read(4096).lstrip().startswith(b"{"):
                    return False  # not a JSON object: no need to parse a large array or a scalar
                head = parse_json(read_bytes(path, MAX_DATABASE_BYTES), path.name)
    except (OSError, ResultFormatError):
        return False
    return isinstance(head, dict) and head.get("kind") == KIND


def database_beside(folder: str | Path) -> Path | None:
    """The merged database in the folder that holds experiment ``folder``: ``merged.json`` if it is one, else the
    first other ``*.json`` there (by name) that is one; None when there is none."""
    parent = Path(folder).resolve().parent
    preferred = parent / "merged.json"
    candidates = [preferred] + sorted(p for p in parent.glob("*.json") if p != preferred)
    return next((c for c in candidates if is_database(c)), None)


def _load_streaming(path: Path, validate: bool, keys: Collection[str] | None) -> dict:
    """:func:`load_database` of a file in the writer's layout; NotStreamable when it is not in it."""
    db: dict[str, Any] = {}
    records: list[Any] = []
    wanted = tuple(keys) if keys is not None else None
    for rec, _, _ in iter_database(path, validate, lambda where: db.update(where.head)):
        if wanted is not None and type(rec) is dict:
            rec = {k: rec[k] for k in wanted if k in rec}
        records.append(rec)
    db["records"] = records
    return db


def iter_database(path: str | Path, validate: bool, on_head: Callable[[Layout], None]) -> Iterator[tuple[Any, int, int]]:
    """The records of a database in the writer's layout one at a time, checked as :func:`load_database` checks
    them, as ``(record, offset, length)`` (the record's line in the file, without its comma).

    ``on_head`` gets the :class:`~mlee.results.dbstream.Layout` (head with version, summaries and skipped
    entries, already checked) before the first record.

    Raises:
        NotStreamable: the file is not in the writer's layout, or is an older schema version (to be upgraded
            by reading it whole); it may come after records were yielded: the caller starts over.
        ResultFormatError: as :func:`load_database`.
    """
    label = Path(path).name

    def on_layout(where: Layout) -> None:
        head = where.head
        if head.get("schema_version") != CURRENT_VERSIONS["database"]:
            check_version("database", head, label)  # newer or unreadable: refused here
            raise NotStreamable  # older: upgraded by the whole-file path
        _check_kind(head, label, ("summaries", "skipped"))
        if validate:
            _validate_tail(head, label)
        on_head(where)

    check = _RecordCheck(label) if validate else None
    for i, item in enumerate(stream_records(path, on_layout, _line_parser(label))):
        if check is not None:
            check(i, item[0])
        elif type(item[0]) is not dict or not isinstance(item[0].get("id"), str):
            raise ResultFormatError(f"{label}: records[{i}] is not a record with an id")
        yield item


def records_by_id(path: str | Path, ids: Collection[str]) -> dict[str, dict]:
    """The whole records with these ids (a second pass over a database first read with ``keys``)."""
    wanted = set(ids)
    if not wanted:
        return {}
    try:
        return {rec["id"]: rec for rec, _, _ in iter_database(path, False, lambda _: None) if rec["id"] in wanted}
    except NotStreamable:
        records = load_database(path, validate=False)["records"]
        return {r["id"]: r for r in records if isinstance(r, dict) and r.get("id") in wanted}


def _line_parser(label: str) -> Callable[[bytes], Any]:
    """A parser of one record line that refuses NaN and infinities as the whole-file reader does.

    orjson where it is installed (about twice as fast as ``json`` on records, and NaN is not JSON to it
    either); a line it refuses goes through ``json``, and so does one with a run of 20 digits (orjson turns
    integers beyond 64 bits, which have 20 digits or more, into floats), so both give the same records and the
    same errors.
    """
    digits_as_zeros = bytes.maketrans(b"123456789", b"000000000")  # translate + find: 5x faster than a regex
    twenty = b"0" * 20
    decode = json.JSONDecoder(parse_constant=_reject_constant).decode

    def parse_json_line(line: bytes) -> Any:
        return decode(line.decode("utf-8"))

    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; a broken install still reads databases
        return parse_json_line
    loads, error = orjson.loads, orjson.JSONDecodeError

    def parse(line: bytes) -> Any:
        if twenty in line.translate(digits_as_zeros):
            return parse_json_line(line)
        try:
            return loads(line)
        except error:
            return parse_json_line(line)

    return parse


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")

