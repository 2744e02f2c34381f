"""Choosing which rated records get a label, naming their files, and writing them atomically."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import OutputError, UsageError
from mlee.fsutil import atomic_write_bytes, output_folder, safe_name
from mlee.label.content import label_content
from mlee.label.qrtext import check_qr_template
from mlee.label.fonts import FontChain, font_chain
from mlee.label.render import FORMATS, render

@dataclass(frozen=True)
class Written:
    """One label on disk, and the characters of its text no installed font could show."""

    path: Path
    model: str
    environment: str
    task: str
    compound: str
    missing: tuple[str, ...]


def check_selection(*, model: str | None, env: str | None, all_records: bool) -> None:
    """Refuse an empty or contradictory choice of labels before anything is read or rated.

    Raises:
        UsageError: neither a filter nor ``all_records``, or ``all_records`` with a filter.
    """
    if all_records and (model is not None or env is not None):
        raise UsageError("--all cannot be combined with --model or --env", "use --all alone, or name a model")
    if not all_records and model is None and env is None:
        raise UsageError("say which labels to render", "use --model M [--env E], --env E, or --all")


def ordered(rated: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rated records in label order: (task, dataset, environment, model, id)."""
    return sorted(rated, key=lambda r: tuple(str(r.get(k) or "") for k in ("task", "dataset", "environment",
                                                                              "model", "id")))


def label_filename(rated: dict[str, Any], fmt: str) -> str:
    """A file name safe on any filesystem and shell, the same for the same model wherever it is rated.

    Model, environment, task and dataset made safe (see :func:`mlee.fsutil.safe_name`), then a
    short hash of the exact names (backend included): names that differ only in characters a file
    name cannot hold ("ResNet/50", "ResNet:50", two CJK names) never share a file.
    """
    model, env = str(rated.get("model") or "model"), str(rated.get("environment") or "env")
    task, dataset = str(rated.get("task") or "task"), str(rated.get("dataset") or "data")
    stem = f"{_part(model, 60)}--{_part(env, 60)}--{_part(task, 20)}-{_part(dataset, 20)}"
    return f"{stem}-{_short_hash(rated)}.{fmt}"


def _part(text: str, max_len: int) -> str:
    # Single dashes inside a part ("AMD EPYC 7B13 - PyTorch" -> "AMD-EPYC-7B13-PyTorch"): "--" separates parts.
    return re.sub(r"-{2,}", "-", safe_name(text, max_len)).strip("-") or "unnamed"


def _short_hash(rated: dict[str, Any], with_id: bool = False) -> str:
    backend = rated.get("backend")
    if isinstance(backend, dict):
        backend = backend.get("name")
    keys = [rated.get(k) for k in ("model", "environment", "task", "dataset")] + [backend]
    if with_id:
        keys.append(rated.get("id"))
    return hashlib.sha256("\0".join(str(k) for k in keys).encode("utf-8")).hexdigest()[:8]


def write_labels(rated: Sequence[dict[str, Any]], out_dir: str | Path, *, fmt: str = "pdf",
                 qr_url: str | None = None, dates: Callable[[dict[str, Any]], tuple[str, ...]] | None = None,
                 chain: FontChain | None = None,
                 on_written: Callable[[Written], None] | None = None) -> list[Written]:
    """Render and write one label per rated record into ``out_dir`` (created if needed).

    Each file is written atomically as soon as it is rendered, so an error part-way leaves the
    labels already written intact.

    Args:
        rated: Rated records (docs/design.md section 4), in the order to write them.
        out_dir: Output folder.
        fmt: ``pdf``, ``png`` or ``svg``.
        qr_url: QR code URL template (see :data:`mlee.label.qrtext.QR_FIELDS`); None: a summary.
        dates: Gives the measurement times behind a rated record whose record is a summary.
        chain: Fonts (default: found on this system).
        on_written: Called after each file is written (progress display).

    Raises:
        UsageError: an unknown format or a bad ``qr_url`` template (checked before anything is written).
        OutputError: the folder or a file cannot be written.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown label format {fmt!r}", "use one of: " + ", ".join(FORMATS))
    if qr_url is not None:
        check_qr_template(qr_url)
    out = output_folder(out_dir)
    chain = chain or font_chain()
    used: set[str] = set()
    written: list[Written] = []
    for r in rated:
        content = label_content(r, qr_url_template=qr_url, dates_utc=dates(r) if dates else None)
        result = render(content, fmt, chain=chain)
        name = label_filename(r, fmt)
        if name in used:  # the same model twice in one batch (two runs rated apart): keep both
            name = f"{name[: -len(fmt) - 1]}-{_short_hash(r, with_id=True)}.{fmt}"
        used.add(name)
        path = out / name
        try:
            atomic_write_bytes(path, result.data)
        except OSError as exc:
            raise OutputError(f"cannot write label {path}: {exc.strerror or exc}"
                              + (f" ({len(written)} label(s) already written in {out})" if written else ""),
                              "free disk space or choose another folder with -o") from None
        item = Written(path=path, model=content.model, environment=content.environment, task=content.task,
                       compound=content.compound, missing=result.missing)
        written.append(item)
        if on_written is not None:
            on_written(item)
    return written


def dates_from_database(db: dict[str, Any]) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    """For rated records built from a summary of repeated runs: the start times of those runs."""
    starts = {str(rec.get("id")): rec.get("start_utc") for rec in db.get("records") or []
              if isinstance(rec, dict) and isinstance(rec.get("start_utc"), str)}

    def dates(rated: dict[str, Any]) -> tuple[str, ...]:
        record = rated.get("record") if isinstance(rated.get("record"), dict) else {}
        ids = record.get("ids") if isinstance(record.get("ids"), list) else []
        return tuple(sorted(starts[str(i)] for i in ids if str(i) in starts))

    return dates
