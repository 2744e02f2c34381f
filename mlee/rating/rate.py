"""Rating a merged database against a spec (docs/design.md §4).

Rating is per (task, dataset, environment) group: every metric's index is taken against the group's reference
model (or, with ``index_base: best``, against the group's best value), rated by the spec's boundaries, and the
ratings combine into the compound rating. Filters select what is returned, never what is compared: a model's
rating does not depend on which filter asked for it.
"""

from __future__ import annotations

from typing import Any

from mlee.console import escape, names_hint
from mlee.errors import RatingError, UsageError
from mlee.rating.core import LETTERS, compound, value_boundaries
from mlee.rating.groups import (group_bases, index_column, range_column, range_value_boundaries, records_of,
                                resolved_boundaries)
from mlee.rating.records import Entry, GroupKey, collect, summaries_by_ids, summary_payload
from mlee.rating.spec import Spec, load_spec
from mlee.rating.speccheck import check_paths
from mlee.rating.stars import add_stars
from mlee.rating.table import TaskTable, build_tables
from mlee.results.jsonio import paused_gc


def rate_database(db: dict[str, Any], spec: Spec | str | None = None, task: str | None = None,
                  env: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """Rate every model of a merged database (docs/design.md §3) as rated records (§4).

    Args:
        db: The merged database (``mlee.results.load_database``).
        spec: A :class:`Spec`, a preset name or a spec file path (default: the ``mlee`` preset).
        task, env, model: Return only these (exact names); unknown names raise UsageError listing what exists.

    Returns:
        Rated records sorted by (task, dataset, environment, model, backend, id). Repeated runs of one model in
        one group are rated once, on the mean of their figures.

    Raises:
        UsageError: a filter names a task, environment or model the database does not have.
        RatingError: nothing to rate, or a selected group lacks the spec's reference model.
    """
    spec = load_spec(spec)
    with paused_gc():  # rating builds no cycles; the collector would rescan the database
        return _rate(db, spec, task, env, model)


def _rate(db: dict[str, Any], spec: Spec, task: str | None, env: str | None,
          model: str | None) -> list[dict[str, Any]]:
    entries = collect(records_of(db), spec)
    selected = _select(entries, spec, db, task, env, model)
    tables = build_tables(entries, spec)
    check_paths({name: tables[name] for name in {e.task for e in selected}})  # only what is rated here
    boundaries = resolved_boundaries(spec, tables)
    summaries = summaries_by_ids(db)
    selected_groups = {(e.task, e.dataset, e.environment) for e in selected}
    everything = len(selected) == len(entries)
    rated: list[dict[str, Any]] = []
    for task_spec in sorted(spec.tasks, key=lambda t: t.name):  # spans are sorted within a task already
        table = tables[task_spec.name]
        plan = _Plan(table, boundaries, spec, summaries)
        for key, start, stop in table.spans:
            if key not in selected_groups:
                continue
            rows = plan.rate_span(key, start, stop)
            if everything:
                rated.extend(rows)
            else:
                rated.extend(row for row, entry in zip(rows, table.entries[start:stop]) if entry in selected)
    return rated


def _select(entries: dict[tuple, Entry], spec: Spec, db: dict[str, Any], task: str | None, env: str | None,
            model: str | None) -> set[Entry]:
    everything = list(entries.values())
    if not everything:
        kinds = sorted({str(r.get("task") or r.get("kind")) for r in db["records"] if isinstance(r, dict)})
        raise RatingError(f"nothing to rate: the database has no completed {' or '.join(spec.task_names)} run "
                          f"({len(db['records'])} records" + (f"; tasks/kinds: {', '.join(kinds)})" if kinds else ")"),
                          "measure models with `mlee infer` and merge their folders")
    chosen = everything
    if task is not None:
        if task not in spec.task_names and not any(r.get("task") == task for e in everything for r in e.records):
            raise UsageError(f"spec {spec.name} does not rate task {task!r}", f"its tasks: {', '.join(spec.task_names)}")
        # A run rated under a task of its own (text-generation) is still an inference run: --task inference keeps it.
        chosen = [e for e in chosen if e.task == task or any(r.get("task") == task for r in e.records)]
        if not chosen:
            have = sorted({e.task for e in everything})
            raise UsageError(f"the database has no {task} run", f"it has: {', '.join(have)}")
    if env is not None:
        chosen = _match(chosen, everything, "environment", env, lambda e: e.environment)
    if model is not None:
        chosen = _match(chosen, everything, "model", model, lambda e: e.model)
    return set(chosen)


def _match(chosen: list[Entry], everything: list[Entry], what: str, wanted: str, attr: Any) -> list[Entry]:
    exact = [e for e in chosen if attr(e) == wanted]
    if exact:
        return exact
    folded = [e for e in chosen if isinstance(attr(e), str) and attr(e).casefold() == wanted.casefold()]
    if folded:
        return folded
    have = sorted({attr(e) for e in chosen if isinstance(attr(e), str)})
    anywhere = sorted({attr(e) for e in everything if isinstance(attr(e), str)})
    names = have or anywhere
    raise UsageError(f"no {what} {escape(repr(wanted))} in the database"
                     + (" for the other filters" if have != anywhere else ""), names_hint(wanted, names, f"{what}s"))


class _Plan:
    """Rates one task's groups, metric by metric over a group's models (list comprehensions, not a loop per model).

    The arithmetic is :func:`~mlee.rating.core.index_of` (as :func:`~mlee.rating.groups.index_column`),
    :func:`~mlee.rating.core.rate_index` and :func:`~mlee.rating.core.compound` (memoised per rating pattern); a
    test holds the result to those pure functions on random databases.
    """

    def __init__(self, table: TaskTable, boundaries: dict[tuple[str, str], tuple[float, ...]], spec: Spec,
                 summaries: dict[tuple[str, ...], dict[str, Any]]) -> None:
        self.table = table
        self.index_base = spec.index_base
        self.zero = spec.zero_division_index
        self.mode = spec.compound
        self.ident = spec.ident()
        self.stars = spec.display == "stars"
        self.reference = table.task.reference if spec.index_base == "reference" else None
        self.summaries = summaries
        self.metrics = []
        for metric in table.task.metrics:
            bounds = boundaries[(table.task.name, metric.key)]
            template = {"label": metric.label, "value": None, "unit": metric.unit, "index": None, "rating": "E",
                        "weight": metric.weight, "method": None, "direction": metric.direction,
                        "boundaries": list(bounds)}
            self.metrics.append((metric.key, metric.higher_is_better, bounds, template))
        self.keys = [metric.key for metric in table.task.metrics]
        self.weights = [metric.weight for metric in table.task.metrics]
        self._compound: dict[int, str] = {}

    def _letter(self, signature: int) -> str:
        """The compound letter of a rating pattern packed base 5, first metric most significant."""
        letter = self._compound.get(signature)
        if letter is None:
            numbers = []
            rest = signature
            for _ in self.weights:
                rest, number = divmod(rest, 5)
                numbers.append(number)
            letter = self._compound[signature] = compound(numbers[::-1], self.weights, self.mode)
        return letter

    def rate_span(self, key: GroupKey, start: int, stop: int) -> list[dict[str, Any]]:
        """Rated records of the group ``table.entries[start:stop]``."""
        table = self.table
        in_range = self.index_base == "range"
        bases = {} if in_range else group_bases(table, self.index_base, key, start, stop)
        entries = table.entries[start:stop]
        signatures = [0] * len(entries)
        estimated = [runs[0].get("estimated") is True if len(runs := e.records) == 1
                     else any(r.get("estimated") is True for r in runs) for e in entries]
        letters = LETTERS
        columns = []
        for metric_key, higher, (b1, b2, b3, b4), template in self.metrics:
            values = table.values[metric_key][start:stop]
            if in_range:
                indices, lo, hi = range_column(values, higher)
                figures = range_value_boundaries(lo, hi, (b1, b2, b3, b4), higher)
            else:
                base = bases[metric_key]
                indices = index_column(values, base, higher, self.zero)
                figures = value_boundaries(base, (b1, b2, b3, b4), higher)
            # The boundaries as figures in the metric's unit hold for the whole group: one list shared by its cells.
            template = dict(template, value_boundaries=figures)
            # rate_index, unrolled: A if index > b1, ..., E otherwise and for a missing index.
            numbers = [4 if i is None else 0 if i > b1 else 1 if i > b2 else 2 if i > b3 else 3 if i > b4 else 4
                       for i in indices]
            signatures = [s * 5 + n for s, n in zip(signatures, numbers)]
            methods = table.methods.get(metric_key)
            if methods is None:
                columns.append([dict(template, value=v, index=i, rating=letters[n])
                                for v, i, n in zip(values, indices, numbers)])
            else:
                methods = methods[start:stop]
                columns.append([dict(template, value=v, index=i, rating=letters[n], method=m)
                                for v, i, n, m in zip(values, indices, numbers, methods)])
                estimated = [e or m == "estimate" for e, m in zip(estimated, methods)]
        keys = self.keys
        ident = self.ident
        reference = self.reference
        out = []
        for entry, cells, signature, is_estimate in zip(entries, zip(*columns), signatures, estimated):
            runs = entry.records
            if len(runs) == 1:
                record = runs[0]
                rid = str(record.get("id"))
            else:
                ids = entry.ids
                rid = f"mean-of-{len(ids)}:{ids[0]}"
                record = summary_payload(entry, self.summaries)
            out.append({
                "id": rid, "model": entry.model, "task": entry.task, "dataset": entry.dataset,
                "environment": entry.environment, "backend": entry.backend, "n": len(runs), "spec": ident,
                "reference": reference, "compound": self._letter(signature), "metrics": dict(zip(keys, cells)),
                "estimated": is_estimate, "record": record,
            })
        if self.stars:
            for row in out:
                add_stars(row)
        return out
