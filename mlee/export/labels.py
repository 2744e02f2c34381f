"""Rated records and their label bytes for the exports: per record id, or the reason there is none.

A label needs a rating, and a rating needs the spec's reference model in the same (task, environment) group
(or a spec rating against the group's best). Exports never fail for want of a label: a record that cannot be
rated gets the reason instead, which MLflow records as a tag and the model card prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import MleeError, RatingError
from mlee.label import dates_from_database, label_content, render
from mlee.rating import load_spec, rate_database
from mlee.rating.spec import Spec


@dataclass(frozen=True)
class Rated:
    """A record's rating (docs/design.md §4), or ``reason`` why it has none."""

    rated: dict[str, Any] | None
    reason: str | None
    dates_utc: tuple[str, ...] = ()


def _group_key(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("task"), record.get("environment")


def _ids_of(rated: dict[str, Any]) -> list[str]:
    record = rated.get("record") if isinstance(rated.get("record"), dict) else {}
    ids = record.get("ids")
    return [str(i) for i in ids] if isinstance(ids, list) and ids else [str(rated.get("id"))]


def _unratable(record: dict[str, Any]) -> str | None:
    if record.get("status") != "completed":
        return f"the run did not complete (status {record.get('status')})"
    if not isinstance(record.get("model"), str) or record.get("task") is None:
        return f"a `{record.get('kind')}` session is not a model run"
    return None


def rate_records(db: dict[str, Any], spec: Spec | str | None = None) -> dict[str, Rated]:
    """Every record id of ``db`` with its rating, or the reason why it has none.

    Groups are rated one at a time, so one group without its reference model leaves the others rated.
    """
    spec = load_spec(spec)
    dates = dates_from_database(db)
    out: dict[str, Rated] = {}
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for record in db.get("records") or []:
        reason = _unratable(record)
        if reason is not None:
            out[str(record.get("id"))] = Rated(None, reason)
        else:
            groups.setdefault(_group_key(record), []).append(record)
    try:  # one pass over the whole database; group by group only when some group cannot be rated
        every = rate_database(db, spec) if groups else []
    except MleeError:
        every = None
    for (task, env), records in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        if every is not None:
            rated = [r for r in every if (r.get("task"), r.get("environment")) == (task, env)]
        else:
            try:
                rated = rate_database(db, spec, task=task, env=env)
            except MleeError as exc:
                for record in records:
                    out[str(record.get("id"))] = Rated(None, f"not rated with spec {spec.name}: {exc}")
                continue
        starts = {str(rec.get("id")): rec.get("start_utc") for rec in records}
        for r in rated:
            for ident in _ids_of(r):
                own = (starts[ident],) if isinstance(starts.get(ident), str) else ()
                out[ident] = Rated(r, None, dates(r) or own)
    return out


def rate_new_record(record: dict[str, Any], db: dict[str, Any] | None,
                    spec: Spec | str | None = None) -> Rated:
    """One record just measured, rated against a database it is not part of yet (None: against itself alone).

    Other runs of the same model in the same group are left out, so the rating is this run's and not a mean.
    """
    reason = _unratable(record)
    if reason is not None:
        return Rated(None, reason)
    same = (record.get("task"), record.get("dataset"), record.get("environment"), record.get("model"))
    others = [r for r in (db or {}).get("records") or [] if r.get("id") != record.get("id") and
              (r.get("task"), r.get("dataset"), r.get("environment"), r.get("model")) != same]
    merged = {"records": others + [record], "summaries": []}
    return rate_records(merged, spec).get(str(record.get("id")), Rated(None, "not rated"))


def label_bytes(rated: Rated, fmt: str = "pdf") -> bytes:
    """The label of a rated record in ``fmt`` (``pdf`` or ``png``); the same bytes for the same rating.

    Raises:
        RatingError: the record has no rating (``rated.reason`` says why).
        BackendMissing: PNG without a raster backend or ``pdftoppm`` (the fix names both).
    """
    if rated.rated is None:
        raise RatingError(f"no label: {rated.reason}")
    return render(label_content(rated.rated, dates_utc=rated.dates_utc or None), fmt).data


def database_beside(folder: str | Path) -> Path | None:
    """``merged.json`` in the folder holding an experiment folder, if there is one."""
    candidate = Path(folder).resolve().parent / "merged.json"
    return candidate if candidate.is_file() else None
