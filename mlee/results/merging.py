"""``mlee merge``: many experiment folders and 2022 logs -> one database, deterministic, incremental, locked.

Records are keyed by experiment id, so merging twice never duplicates. With ``update=True`` the existing
database is the starting point: inputs whose files are unchanged (same sizes and mtimes as recorded in the
``--update`` index) are not read again, their records are copied as bytes; records are only ever added or
replaced, never removed. Without ``update`` the output holds exactly the given inputs, and an existing
database whose records would disappear is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.fsutil import output_target, write_output
from mlee.results.archive import archive_inputs
from mlee.results.database import (dumps_line, load_database, locked, remove_stale_temporaries, render,
                                   write_bytes_atomic, write_index)
from mlee.results.discover import Input, discover
from mlee.results.folder import fingerprint
from mlee.results.liveness import DEFAULT_STALE_AFTER_S
from mlee.results.ranks import combine, group_jobs, job_problem
from mlee.results.previous import Previous, read_previous
from mlee.results.jsonio import paused_gc
from mlee.results.reading import file_fingerprint, flags_in_two, read_all
from mlee.results.splice import Part, Source, joined
from mlee.results.summary import facts, pack_facts, summarise

@dataclass
class MergeReport:
    """What a merge did.

    Attributes:
        output: The database written (None when only built in memory).
        records: Number of records in the database.
        read: Inputs read in this merge.
        reused: Inputs skipped by ``--update`` because they had not changed.
        summaries: Number of summaries.
        skipped: ``[{"path", "reason"}]`` as stored in the database.
        unchanged: ``--update`` found the database already holding exactly this content and left the file
            as it was (not rewritten, so its modification time tells when its content last changed).
        archived: Archives written.
        database: The database as a dict (only when asked for).
        traces_parsed: Traces of the inputs read that were parsed because no ``power/stats.json`` entry
            matched their bytes (older or killed runs, traces edited after the run, ``--include-traces``).
        invalid_rows: Trace rows of the inputs read that were malformed or not finite: left out of the
            statistics and counted as invalid samples (the experiments themselves are kept).
        invalid_inputs: How many inputs read had such rows.
        stale_removed: Temporary files of killed merges into the same database, deleted under the lock.
    """

    output: Path | None
    records: int = 0
    read: int = 0
    reused: int = 0
    summaries: int = 0
    skipped: list[dict] = field(default_factory=list)
    archived: list[Path] = field(default_factory=list)
    database: dict | None = None
    unchanged: bool = False
    traces_parsed: int = 0
    invalid_rows: int = 0
    invalid_inputs: int = 0
    stale_removed: int = 0


@dataclass
class _Produced:
    """A record made in this merge: its line, summary facts and the inputs it came from."""

    rid: str
    line: bytes
    facts: dict | None
    inputs: list[str]
    display: str


def _combine_ranks(ranks: list[tuple[Input, dict]], entries: dict[str, dict]) -> list[_Produced]:
    """One record per complete job; every input of an incomplete job gets the job's problem as its skip."""
    produced: list[_Produced] = []
    for job in group_jobs(ranks):
        why = job_problem(job)
        members = sorted(job, key=lambda it: it[0].display)
        if why is None:
            rec = combine(job)
            try:
                line = dumps_line(rec)
            except ValueError:
                why = "combined figures are too large to be finite"
        if why is not None:
            for inp, _ in members:
                entries[inp.key]["skip"] = why
            continue
        keys = [inp.key for inp, _ in members]
        for k in keys:
            entries[k]["ids"] = [rec["id"]]
        produced.append(_Produced(rec["id"], line, facts(rec), keys, members[0][0].display))
    return produced


def _partition(inputs: list[Input], prev: Previous) -> tuple[list[Input], list[Input]]:
    """Split inputs into those to read and those unchanged since the previous merge (same fingerprint)."""
    known: list[tuple[Input, str | None]] = []
    for inp in inputs:
        old = prev.inputs.get(inp.key)
        in_progress = "still in progress" in str((old or {}).get("skip") or "")  # killed since? read it again
        if old is not None and old.get("display") == inp.display and not in_progress:
            known.append((inp, old.get("fingerprint")))

    def unchanged(i: int) -> bool:
        inp, old_fp = known[i]
        fp = fingerprint(inp.location, old_fp, inp.probe) if inp.kind == "folder" else file_fingerprint(inp.path)
        return fp == old_fp

    same = {inp.key for (inp, _), ok in zip(known, flags_in_two(len(known), unchanged)) if ok}
    fresh = [inp for inp in inputs if inp.key not in same]
    reused = [inp for inp in inputs if inp.key in same]
    return fresh, reused


def _settle_ids(produced: list[_Produced], reused: list[Input], entries: dict[str, dict],
                prev: Previous) -> tuple[dict[str, bytes | memoryview], dict[str, dict | None], dict[str, list[str]]]:
    """The final records by id. When inputs claim the same id, the one that sorts first keeps it and the
    others get "duplicate experiment id" as their skip reason. Returns (lines, facts, inputs) by id."""
    claims: dict[str, list[tuple[str, str, _Produced | None]]] = {}
    for p in produced:
        claims.setdefault(p.rid, []).append((p.display, p.inputs[0], p))
    # The usual reused record has its id to itself and keeps its stored line: such lone claims wait in
    # ``alone`` and join ``claims`` (where ties are settled) only when a second claim on the id turns up.
    alone: dict[str, tuple[str, str, None]] = {}
    for inp in reused:
        for rid in entries[inp.key].get("ids") or []:
            producers = prev.rec_inputs.get(rid) or [inp.key]
            if inp.key == producers[0] or inp.key not in producers:
                # A job's ranks made one record together: it is claimed once, by its first input.
                claim = (inp.display, inp.key, None)
                if rid in claims:
                    claims[rid].append(claim)
                elif rid in alone:
                    claims[rid] = [alone.pop(rid), claim]
                else:
                    alone[rid] = claim
    lines = dict(prev.lines)
    rec_facts = dict(prev.facts)
    rec_inputs = dict(prev.rec_inputs)
    for rid, cl in claims.items():
        cl.sort(key=lambda c: (c[0], c[1]))
        winner = cl[0]
        if winner[2] is not None:
            lines[rid], rec_facts[rid], rec_inputs[rid] = winner[2].line, winner[2].facts, winner[2].inputs
        for _, key, p in cl[1:]:
            for k in (p.inputs if p else [key]):
                entries[k]["ids"] = []
                entries[k]["skip"] = f"duplicate experiment id {rid} (also in {winner[0]})"
    return lines, rec_facts, rec_inputs


def build(paths: list[str | Path], output: Path | None = None, **options: Any) -> tuple[bytes, dict, MergeReport]:
    """Assemble the database bytes and the ``--update`` index content (no lock, no write).

    Args:
        paths: As for :func:`merge`.
        output: The database that ``--update`` starts from (and whose records must not be lost).
        **options: ``update``, ``include_traces``, ``overwrite``, ``jobs``, ``archive``, ``on_total``,
            ``on_progress`` as for :func:`merge_into`.

    Returns:
        (database bytes, {"inputs", "records", "skipped"} for the index, report).
    """
    with paused_gc():
        parts, source, index, report = _build(paths, output, **options)
    try:
        return joined(parts, source), index, report
    finally:
        if source is not None:
            source.close()


def _build(paths: list[str | Path], output: Path | None = None, *, update: bool = False,
           include_traces: bool = False, overwrite: bool = False, jobs: int | None = None,
           archive: Path | None = None, on_total: Callable[[int], None] | None = None,
           on_progress: Callable[[int], None] | None = None,
           stale_after_s: float = DEFAULT_STALE_AFTER_S) -> tuple[list[Part], Source | None, dict, MergeReport]:
    """:func:`build` without joining the parts: the caller closes the source (open while it is not None)."""
    if update and output is None:
        raise UsageError("--update needs an existing database to update", "give it with -o FILE")
    inputs, found_skips = discover(paths)
    prev = read_previous(output, update, overwrite) if output is not None else Previous()
    try:
        parts, index, report = _merge_onto(prev, inputs, found_skips, output, update=update, overwrite=overwrite,
                                           include_traces=include_traces, jobs=jobs, archive=archive,
                                           on_total=on_total, on_progress=on_progress, stale_after_s=stale_after_s)
    except BaseException:
        if prev.source is not None:
            prev.source.close()
        raise
    return parts, prev.source, index, report


def _merge_onto(prev: Previous, inputs: list[Input], found_skips: list, output: Path | None, *, update: bool,
                overwrite: bool, include_traces: bool, jobs: int | None, archive: Path | None,
                on_total: Callable[[int], None] | None,
                on_progress: Callable[[int], None] | None,
                stale_after_s: float = DEFAULT_STALE_AFTER_S) -> tuple[list[Part], dict, MergeReport]:
    """The database parts, the index content and the report of merging ``inputs`` onto ``prev``."""
    fresh, reused = _partition(inputs, prev) if update else (inputs, [])
    if on_total:
        on_total(len(fresh))
    outcomes = dict(zip((i.key for i in fresh), read_all(fresh, include_traces, jobs, on_progress, stale_after_s)))
    if any(o[0] == "rank" for o in outcomes.values()):
        # A new rank may complete (or change) a job whose other ranks were merged or skipped before.
        again = [i for i in reused if prev.inputs[i.key].get("rank")]
        if again:
            reused = [i for i in reused if not prev.inputs[i.key].get("rank")]
            outcomes.update(zip((i.key for i in again), read_all(again, include_traces, jobs, None, stale_after_s)))
            fresh = sorted(fresh + again, key=lambda i: (i.display, i.key))
    entries: dict[str, dict] = {}
    produced: list[_Produced] = []
    ranks: list[tuple[Input, dict]] = []
    skipped: dict[tuple[str, str], dict] = {}
    current = {i.display for i in inputs}
    for s in prev.skipped:
        if s["path"] not in current:
            skipped[(s["path"], s["reason"])] = s
    for s in found_skips:
        skipped[(s.display, s.reason)] = {"path": s.display, "reason": s.reason}
    traces_parsed = invalid_rows = invalid_inputs = 0
    for inp in fresh:
        out = outcomes[inp.key]
        traces_parsed += out[-3]
        invalid_rows += out[-2]
        invalid_inputs += out[-2] > 0
        entry = {"display": inp.display, "fingerprint": out[-1], "ids": [], "skip": None, "rank": out[0] == "rank"}
        entries[inp.key] = entry
        if out[0] == "skip":
            entry["skip"] = out[1]
        elif out[0] == "rank":
            ranks.append((inp, out[1]))
        else:
            produced.append(_Produced(out[1], out[2], out[3], [inp.key], inp.display))
            entry["ids"] = [out[1]]
    produced.extend(_combine_ranks(ranks, entries))
    for inp in reused:
        entries[inp.key] = prev.inputs[inp.key]  # same fingerprint: the previous entry itself, not a copy
    lines, rec_facts, rec_inputs = _settle_ids(produced, reused, entries, prev)
    for entry in entries.values():  # fresh and reused inputs alike; rank skips are among them
        if entry.get("skip"):
            skipped[(entry["display"], entry["skip"])] = {"path": entry["display"], "reason": entry["skip"]}
    if output is not None and not update and not overwrite:
        lost = sorted(prev.ids - set(lines))
        if lost:
            raise UsageError(f"{output} holds {len(lost)} record(s) that these inputs do not give "
                             f"(e.g. {lost[0]}); they would be lost",
                             "use --update to add to it, or --overwrite to replace it")
    report = MergeReport(output=output, read=len(fresh), reused=len(reused), traces_parsed=traces_parsed,
                         invalid_rows=invalid_rows, invalid_inputs=invalid_inputs)
    if archive is not None:
        report.archived = archive_inputs(inputs, entries, {i.key for i in fresh}, archive)
    order = sorted(lines)
    summaries = summarise([f for rid in order if (f := rec_facts.get(rid)) is not None])
    skipped_list = sorted(skipped.values(), key=lambda s: (s["path"], s["reason"]))
    from mlee import __version__

    parts, spans = render(((rid, lines[rid]) for rid in order), summaries, skipped_list, __version__)
    all_inputs = dict(prev.inputs) if update else {}
    all_inputs.update(entries)
    groups, packed = pack_facts({rid: rec_facts.get(rid) for rid in order})
    index = {"inputs": all_inputs, "skipped": skipped_list, "groups": groups,
             "records": {rid: [*spans[rid], packed[rid], rec_inputs.get(rid, [])] for rid in order}}
    report.records, report.summaries, report.skipped = len(order), len(summaries), skipped_list
    return parts, index, report


def merge_into(output: str | Path, paths: list[str | Path], *, update: bool = False,
               include_traces: bool = False, overwrite: bool = False, jobs: int | None = None,
               archive: str | Path | None = None, lock_timeout_s: float = 600.0,
               on_total: Callable[[int], None] | None = None,
               on_progress: Callable[[int], None] | None = None,
               stale_after_s: float = DEFAULT_STALE_AFTER_S) -> MergeReport:
    """Merge ``paths`` into the database file ``output``, holding its lock, writing atomically.

    ``stale_after_s``: a running folder of another host counts as interrupted after this long without an update.

    Raises:
        UsageError: bad paths, ``--update`` without a database, or records that would be lost.
        OutputError: the output (or archive) cannot be written; an existing database is left intact.
        ResultFormatError: with ``update``, the existing database is unreadable or newer than this mlee.
    """
    target = output_target(output)
    if not target.is_file:
        # stdout, a device, a FIFO or a socket: written through, with nothing to update, lock or index.
        if update:
            raise UsageError(f"--update rewrites the database at -o, and {target.given} is not a file",
                             "give -o the database file to update")
        data, _, report = build(paths, None, include_traces=include_traces, jobs=jobs,
                                archive=Path(archive) if archive is not None else None,
                                on_total=on_total, on_progress=on_progress)
        write_output(target, data)
        return report
    output = target.path  # a symlink's target is replaced; the link stays
    with locked(output, timeout_s=lock_timeout_s):
        stale = remove_stale_temporaries(output)
        with paused_gc():
            parts, source, index, report = _build(paths, output, update=update, include_traces=include_traces,
                                                  overwrite=overwrite, jobs=jobs,
                                                  archive=Path(archive) if archive is not None else None,
                                                  on_total=on_total, on_progress=on_progress,
                                                  stale_after_s=stale_after_s)
        report.stale_removed = stale
        try:
            report.unchanged = source is not None and source.holds(parts)
            st = os.stat(output) if report.unchanged else write_bytes_atomic(output, parts, source=source)
        finally:
            if source is not None:
                source.close()
        if not (report.unchanged and report.read == 0):
            # Inputs read again (touched, same content) have new fingerprints even when the records are equal.
            write_index(output, st, index)
    return report


def merge(paths: list[str | Path], output: str | Path | None = None, **options: Any) -> dict:
    """Merge experiment folders and 2022 logs into a database and return it as a dict.

    Args:
        paths: Experiment folders, folders holding them (searched recursively), or 2022 log files.
        output: Also write the database there (with lock and atomic rename); None builds it in memory only.
        **options: ``update``, ``include_traces``, ``overwrite``, ``jobs``, ``archive``, ``lock_timeout_s``
            as for :func:`merge_into`.

    Returns:
        The database (docs/design.md §3).
    """
    import json

    if output is not None:
        merge_into(output, paths, **options)
        return load_database(output)
    options.pop("lock_timeout_s", None)
    data, _, _ = build(paths, None, **options)
    return json.loads(data)
