"""CI gates over a merged database (``mlee check``): minimum rating, energy ceiling, regression against a baseline.

Pure functions over database dicts (docs/design.md §3) and rated records (§4); the CLI renders the outcome.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from mlee.console import escape, name_list
from mlee.errors import UsageError
from mlee.vocabulary import LETTERS as RATINGS

_ENERGY_UNITS_J = {"j": 1.0, "ws": 1.0, "mj": 1e-3, "kj": 1e3, "wh": 3600.0, "kwh": 3.6e6, "uj": 1e-6}


def parse_energy(text: str) -> float:
    """Parse an energy such as ``0.5J``, ``500mJ``, ``0.5 Ws`` or ``1e-3 Wh`` into joules.

    Units: returns joules. A bare number is joules.

    Raises:
        UsageError: not a positive energy.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*", text or "")
    unit = (m.group(2) if m else "").lower().replace("µ", "u") or "j"
    if not m or unit not in _ENERGY_UNITS_J:
        raise UsageError(f"cannot read the energy {text!r}", "write a number with a unit: 0.5J, 500mJ, 0.5Ws, 1e-3Wh")
    value = float(m.group(1)) * _ENERGY_UNITS_J[unit]
    if not value > 0:
        raise UsageError(f"the energy limit must be positive, got {text!r}")
    return value


def parse_percent(text: str) -> float:
    """Parse ``5%`` or ``5`` (percent) or ``0.05`` (<1 taken as a fraction) into a fraction."""
    raw = (text or "").strip()
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise UsageError(f"cannot read the regression limit {text!r}", "write a percentage such as 5%") from None
    frac = value / 100.0 if raw.endswith("%") or value >= 1 else value
    if not (math.isfinite(frac) and frac >= 0):
        raise UsageError(f"the regression limit must be a non-negative percentage, got {text!r}")
    return frac


def parse_rating(text: str) -> str:
    """Validate a rating letter A-E (case-insensitive)."""
    letter = (text or "").strip().upper()
    if len(letter) != 1 or letter not in RATINGS:
        raise UsageError(f"unknown rating {text!r}", "use one of A, B, C, D, E")
    return letter


@dataclass(frozen=True)
class Outcome:
    """One condition checked for one model group.

    Units: ``value`` and ``limit`` in the unit named by ``unit``.
    """

    condition: str
    model: str
    environment: str
    passed: bool
    value: float | str | None
    limit: float | str | None
    unit: str
    detail: str = ""
    task: str = ""


@dataclass
class CheckReport:
    """All outcomes plus the rows of the summary table."""

    outcomes: list[Outcome] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    def coverage(self) -> dict[str, list[str]]:
        """Per condition, the tasks (inference, training) whose groups it was checked on, sorted."""
        tasks: dict[str, set[str]] = {}
        for o in self.outcomes:
            tasks.setdefault(o.condition, set()).add(o.task)
        return {condition: sorted(found) for condition, found in tasks.items()}

    def to_dict(self) -> dict:
        return {"passed": self.passed, "outcomes": [o.__dict__ for o in self.outcomes], "rows": self.rows,
                "coverage": self.coverage()}


def _key(s: dict) -> tuple:
    backend = s.get("backend") or {}
    bname = backend.get("name") if isinstance(backend, dict) else backend
    return (s.get("task"), s.get("model"), bname, s.get("environment"), s.get("dataset"))


def _groups(db: dict, model: str | None, env: str | None, task: str | None = None) -> list[dict]:
    """The database's summaries (mean over repeats), filtered; a clear error when nothing matches."""
    summaries = [s for s in db.get("summaries", []) if s.get("model")]
    if task is not None:
        tasks = sorted({str(s.get("task")) for s in summaries})
        if task not in tasks:
            raise UsageError(f"the database has no {task} run; tasks: {', '.join(tasks) or 'none'}",
                             "pick --task from this list, or drop --task to check every task")
        summaries = [s for s in summaries if s.get("task") == task]
    chosen = [s for s in summaries if (model is None or s.get("model") == model)
              and (env is None or s.get("environment") == env)]
    if not chosen:
        models = sorted({str(s.get("model")) for s in summaries})
        envs = sorted({str(s.get("environment")) for s in summaries})
        what = f"model {escape(repr(model))}" if model else "any model"
        raise UsageError(f"the database has no {what}" + (f" in environment {escape(repr(env))}" if env else "")
                         + f"; models: {name_list(model or '', models)}; environments: "
                         + name_list(env or "", envs),
                         "pick --model/--env from these or measure the model first with `mlee infer`")
    return sorted(chosen, key=lambda s: tuple(str(x) for x in _key(s)))


def _mean_std(summary: dict) -> tuple[float | None, float, int]:
    stats = ((summary.get("per_sample") or {}).get("energy_j") or {})
    mean = stats.get("mean")
    std = stats.get("std") or 0.0
    return (float(mean) if isinstance(mean, (int, float)) else None), float(std), int(summary.get("n") or 1)


def run_checks(db: dict, *, model: str | None = None, env: str | None = None, rated: list[dict] | None = None,
               min_rating: str | None = None, max_energy_j: float | None = None,
               baseline: dict | None = None, max_regression: float | None = None,
               task: str | None = None) -> CheckReport:
    """Check every selected model group of ``db`` against the given conditions.

    Args:
        db: merged database.
        task: check only this task's groups (``inference``, ``training``); None checks every task, and
            :meth:`CheckReport.coverage` says which tasks each condition covered.
        rated: rated records of ``db`` (``mlee.rating.rate_database``); needed for ``min_rating``.
        min_rating: worst acceptable compound rating (A best).
        max_energy_j: ceiling on the mean per-sample energy. Units: joules.
        baseline: an older database; with ``max_regression`` each group's mean per-sample energy may
            grow by at most that fraction over the baseline's.
        max_regression: allowed growth as a fraction (0.05 = 5 %).

    Raises:
        UsageError: no condition given, or nothing in the database matches.
    """
    if min_rating is None and max_energy_j is None and baseline is None:
        raise UsageError("no condition to check",
                         "pass --min-rating, --max-energy-per-sample and/or --baseline OLD_DB --max-regression 5%")
    if baseline is not None and max_regression is None:
        max_regression = 0.0
    report = CheckReport()
    by_model_env = {}
    for r in rated or []:
        by_model_env.setdefault((r.get("model"), r.get("environment"), r.get("task"), r.get("dataset")), r)
    old = {_key(s): s for s in (baseline or {}).get("summaries", [])}
    for s in _groups(db, model, env, task):
        name, environment, kind = str(s.get("model")), str(s.get("environment")), str(s.get("task") or "")
        outcome_at = len(report.outcomes)
        mean, std, n = _mean_std(s)
        est = bool(s.get("estimated"))
        row = {"model": name, "environment": environment, "task": s.get("task"), "dataset": s.get("dataset"),
               "n": n, "energy_per_sample_j": mean, "energy_std_j": std, "estimated": est,
               "rating": None, "baseline_energy_per_sample_j": None, "change": None, "significant": None}
        if min_rating is not None:
            r = by_model_env.get((s.get("model"), s.get("environment"), s.get("task"), s.get("dataset")))
            got = r.get("compound") if r else None
            row["rating"] = got
            ok = got is not None and RATINGS.index(got) <= RATINGS.index(min_rating)
            report.outcomes.append(Outcome("min-rating", name, environment, ok, got, min_rating, "rating",
                                           "" if got else "not rated (no reference in its group?)"))
        if max_energy_j is not None:
            ok = mean is not None and mean <= max_energy_j
            report.outcomes.append(Outcome("max-energy-per-sample", name, environment, ok, mean, max_energy_j,
                                           "J", "estimate" if est else ""))
        if baseline is not None:
            prev = old.get(_key(s))
            if prev is None:
                report.outcomes.append(Outcome("regression", name, environment, True, None, max_regression,
                                               "fraction", "new: not in the baseline"))
            else:
                pmean, pstd, pn = _mean_std(prev)
                row["baseline_energy_per_sample_j"] = pmean
                if mean is None or pmean is None or pmean <= 0:
                    report.outcomes.append(Outcome("regression", name, environment, False, None, max_regression,
                                                   "fraction", "energy per sample missing in one database"))
                else:
                    change = (mean - pmean) / pmean
                    # Two standard errors of the difference: below that the runs' own spread explains it.
                    spread = 2.0 * math.sqrt(std**2 / max(n, 1) + pstd**2 / max(pn, 1))
                    significant = abs(mean - pmean) > spread if (n > 1 or pn > 1) else None
                    row.update(change=change, significant=significant)
                    detail = {True: "exceeds the runs' spread", False: "within the runs' spread",
                              None: "single runs: spread unknown"}[significant]
                    report.outcomes.append(Outcome("regression", name, environment, change <= max_regression,
                                                   change, max_regression, "fraction", detail))
        report.outcomes[outcome_at:] = [replace(o, task=kind) for o in report.outcomes[outcome_at:]]
        report.rows.append(row)
    return report


def markdown(report: CheckReport, title: str = "mlee energy check") -> str:
    """A summary for a CI job summary or a pull-request comment."""
    status = "passed" if report.passed else f"FAILED ({len(report.failures)} condition(s))"
    lines = [f"## {title}: {status}", "", "| model | environment | rating | energy / sample | vs baseline |",
             "|---|---|---|---|---|"]
    for r in report.rows:
        energy = "n/a" if r["energy_per_sample_j"] is None else f"{r['energy_per_sample_j']:.4g} J"
        if r["estimated"] and r["energy_per_sample_j"] is not None:
            energy += " (estimate)"
        change = "" if r["change"] is None else f"{r['change'] * 100:+.1f} %"
        if r["significant"] is False:
            change += " (within spread)"
        lines.append(f"| {_md(r['model'])} | {_md(r['environment'])} | {r['rating'] or ''} | {energy} | {change} |")
    if report.failures:
        lines += ["", "Failed:"]
        lines += [f"- {_md(o.model)} ({_md(o.environment)}): {describe(o)}" for o in report.failures]
    return "\n".join(lines) + "\n"


def describe(o: Outcome) -> str:
    """One line saying what a condition found."""
    if o.condition == "min-rating":
        return f"rating {o.value or 'n/a'} is worse than the minimum {o.limit}" + (f" ({o.detail})" if o.detail else "")
    if o.condition == "max-energy-per-sample":
        val = "n/a" if o.value is None else f"{o.value:.4g} J"
        return f"energy per sample {val} exceeds {o.limit:.4g} J" + (" (estimate)" if o.detail else "")
    if o.value is None:
        return f"regression not computable: {o.detail}"
    return f"energy per sample changed {o.value * 100:+.1f} % (limit +{o.limit * 100:.1f} %), {o.detail}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
