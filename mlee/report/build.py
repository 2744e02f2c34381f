"""Build the report: rate the database, find labels, assemble one self-contained HTML file, write it atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee import __version__
from mlee.errors import OutputError, RatingError, UsageError
from mlee.fsutil import OutputTarget, output_target, write_output
from mlee.report.html import render_page
from mlee.report.labels import find_labels, page_label
from mlee.report.payload import build_payload


@dataclass(frozen=True)
class Report:
    """A built report page and what went into it.

    Attributes:
        html: The page.
        n_records: Rated records shown.
        n_labels: Records with a label found beside the report.
        n_traced: Records with power traces.
        notes: What was left out and why (also shown in the page's header).
    """

    html: str
    n_records: int
    n_labels: int
    n_traced: int
    notes: tuple[str, ...]

    @property
    def size_bytes(self) -> int:
        """Units: bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))


def _ratable_pairs(db: Mapping[str, Any], spec: Any) -> list[tuple[str, str]]:
    pairs = set()
    for r in db.get("records") or []:
        task = spec.task_of(r) if isinstance(r, dict) else None  # a transformers run's own task (issue 19)
        if (task is not None and isinstance(r.get("model"), str)
                and isinstance(r.get("environment"), str) and r.get("status", "completed") == "completed"):
            pairs.add((task, r["environment"]))
    return sorted(pairs)


def rate_for_report(db: Mapping[str, Any], spec: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Rated records of every (task, environment) that can be rated, and a note for each that cannot.

    ``mlee rate`` stops at a group without the reference model; a report shows everything else and says, in
    the page and on the terminal, which groups are missing and how to measure their reference.

    Raises:
        RatingError: when nothing at all can be rated (the first reason).
    """
    from mlee.rating import rate_database

    try:
        return rate_database(dict(db), spec), []
    except RatingError as whole:
        rated: list[dict[str, Any]] = []
        notes: list[str] = []
        for task, env in _ratable_pairs(db, spec):
            try:
                rated.extend(rate_database(dict(db), spec, task=task, env=env))
            except RatingError as exc:
                notes.append(f"Not rated: {task} in {env}: {exc}")
        if not rated:
            raise whole
        rated.sort(key=lambda r: (r["task"], r["dataset"] or "", r["environment"] or "", r["model"],
                                  r["backend"] or "", r["id"]))
        return rated, notes


def _unrated_note(db: Mapping[str, Any], rated: Sequence[Mapping[str, Any]], spec: Any) -> list[str]:
    """Notes on the database records the report does not show, and why."""
    used = set()
    for r in rated:
        record = r.get("record") or {}
        used.update(str(i) for i in (record.get("ids") if isinstance(record.get("ids"), list) else [r.get("id")]))
    left_out, unratable = 0, {}
    for r in db.get("records") or []:
        if not isinstance(r, dict) or str(r.get("id")) in used:
            continue
        if (spec.task_of(r) is not None and isinstance(r.get("model"), str)
                and r.get("status", "completed") == "completed"):
            left_out += 1
        else:
            what = f"{r.get('task') or r.get('kind') or '?'}" + (
                f" ({r.get('status')})" if r.get("status", "completed") != "completed" else "")
            unratable[what] = unratable.get(what, 0) + 1
    notes = []
    if left_out:
        notes.append(f"{left_out} run(s) left out because their group cannot be rated (see above).")
    if unratable:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(unratable.items()))
        notes.append(f"{sum(unratable.values())} database record(s) are not completed model runs of a task spec "
                     f"{spec.name} rates ({kinds}).")
    skipped = db.get("skipped") or []
    if skipped:
        notes.append(f"{len(skipped)} input(s) were skipped when the database was merged (see its \"skipped\" list).")
    return notes


#: Record fields the page reads besides what rating reads: the table's origin and start, and the power traces.
PAGE_FIELDS = ("origin", "start_utc", "sources", "trace_samples")


def record_fields(spec: Any = None) -> frozenset[str]:
    """The top-level record fields a report with ``spec`` reads (``load_database(path, keys=...)``): the page
    built from records reduced to these is the same page, from a fraction of the memory."""
    from mlee.rating import load_spec
    from mlee.rating.records import record_keys

    return record_keys(load_spec(spec)) | set(PAGE_FIELDS)


def build_report(db: Mapping[str, Any], spec: Any = None, *, report_path: str | Path = "report.html",
                 label_dirs: Sequence[str | Path] | None = None, title: str | None = None,
                 database_name: str = "database", max_trace_points: int = 1500,
                 label_images: bool = True) -> Report:
    """Rate ``db`` and build the report page.

    Args:
        db: Merged database (docs/design.md section 3).
        spec: A :class:`mlee.rating.Spec`, a preset name or a spec file (default: the ``mlee`` preset).
        report_path: Where the page will be written: label links are made relative to its folder.
        label_dirs: Folders to look for labels in (default: the report's folder).
        title: Page title (default ``mlee report: <database name>``).
        database_name: How the page names the database.
        max_trace_points: Most points per power series. Units: samples.
        label_images: Embed label images (about 30 kB each); False links the PDFs only.

    Raises:
        UsageError: a bad spec or argument. RatingError: nothing can be rated.
    """
    from mlee.rating import load_spec

    if max_trace_points < 10:
        raise UsageError(f"--max-trace-points must be at least 10, got {max_trace_points}")
    spec = load_spec(spec)
    rated, notes = rate_for_report(db, spec)
    notes += _unrated_note(db, rated, spec)
    report_dir = Path(report_path).parent
    folders = [Path(d) for d in label_dirs] if label_dirs else [report_dir]
    found = find_labels(rated, folders)
    labels = {rid: page_label(files, report_dir, images=label_images) for rid, files in found.items()}
    page_title = title or f"mlee report: {database_name}"
    payload = build_payload(db, spec, rated, labels=labels, database_name=database_name, title=page_title,
                            mlee_version=__version__, max_trace_points=max_trace_points, notes=notes)
    html = render_page(payload, page_title, __version__)
    n_traced = sum(1 for r in payload["records"] if r["traces"])
    return Report(html=html, n_records=len(payload["records"]), n_labels=len(labels), n_traced=n_traced,
                  notes=tuple(notes))


def report_target(path: str | Path) -> OutputTarget:
    """Where the page goes (see :func:`mlee.fsutil.output_target`); a missing folder of a new file is created.

    Raises:
        UsageError: ``path`` is a folder or lies below a file. OutputError: its folder cannot be created.
    """
    given = Path(path)
    if str(path) != "-" and not os.path.lexists(given) and not given.parent.exists():
        try:
            given.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            pass  # output_target names the file in the way
        except OSError as exc:
            raise OutputError(f"cannot create the folder of {given}: {exc.strerror or exc}",
                              "choose another -o path") from None
    return output_target(path)


def write_report(report: Report, path: str | Path | OutputTarget) -> Path:
    """Write the page atomically where ``path`` leads (a device is written through, a symlink followed).

    Raises:
        UsageError: ``path`` is a folder. OutputError: it cannot be written.
    """
    target = path if isinstance(path, OutputTarget) else report_target(path)
    return write_output(target, report.html).path
