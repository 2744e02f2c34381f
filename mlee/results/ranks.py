"""Combining the per-rank folders of one torchrun/SLURM job into one experiment record.

Every rank's session measures what it can see, so the same device shows up in several folders: each GPU is
counted once by its UUID, each host's CPU packages, DRAM and estimates once per (host, source name). When
two ranks measured the same device, the reading of the rank that measured longest is kept (its window covers
the job best). Time is the job's span: first start to last end over all ranks.

Ranks belong together when they share ``rank.job_id`` (SLURM_JOB_ID, torchrun's run id), kind, name and world
size; without a job id, ranks of the same kind, name and world size whose time spans overlap are one job.
A job is merged only when every rank 0..world_size-1 is present exactly once; otherwise all its folders are
skipped with the reason (a later ``--update`` merges the job once the missing folders arrive).
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from mlee.results.environment import environment_name
from mlee.vocabulary import weakest_method_name

_STATUS_ORDER = {"completed": 0, "interrupted": 1, "failed": 2}
_COMPONENTS = {"cpu": "cpu", "dram": "dram", "gpu": "gpu", "system": "system"}


def is_rank_record(record: dict) -> bool:
    """Whether a record is one rank of a multi-process job (world size above 1)."""
    rank = record.get("rank")
    return isinstance(rank, dict) and isinstance(rank.get("world_size"), int) and rank["world_size"] > 1


def _parse_utc(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return _dt.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f" if "." in text
                                     else "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc).timestamp()
    except ValueError:
        return None


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _span(record: dict) -> tuple[float | None, float | None]:
    start = _parse_utc(record.get("start_utc"))
    end = _parse_utc(record.get("end_utc"))
    if end is None and start is not None and isinstance(record.get("duration_s"), (int, float)):
        end = start + record["duration_s"]
    return start, end


def group_jobs(items: list[tuple[Any, dict]]) -> list[list[tuple[Any, dict]]]:
    """Group (input, record) pairs of rank records into jobs (see the module docstring)."""
    by_key: dict[tuple, list[tuple[Any, dict]]] = {}
    for item in items:
        rec = item[1]
        r = rec["rank"]
        job = r.get("job_id")
        key = (str(job) if job not in (None, "") else None, rec.get("kind"), rec.get("name"), r["world_size"])
        by_key.setdefault(key, []).append(item)
    jobs: list[list[tuple[Any, dict]]] = []
    for key in sorted(by_key, key=lambda k: tuple("" if x is None else str(x) for x in k)):
        members = sorted(by_key[key], key=lambda it: (_span(it[1])[0] or 0.0, it[1]["id"]))
        if key[0] is not None:
            jobs.append(members)
            continue
        # No job id: ranks that ran at the same time are one job.
        cluster: list[tuple[Any, dict]] = []
        cluster_end = -math.inf
        for it in members:
            start, end = _span(it[1])
            if cluster and (start is None or start > cluster_end):
                jobs.append(cluster)
                cluster, cluster_end = [], -math.inf
            cluster.append(it)
            cluster_end = max(cluster_end, end if end is not None else -math.inf)
        if cluster:
            jobs.append(cluster)
    return jobs


def job_problem(job: list[tuple[Any, dict]]) -> str | None:
    """Why a job cannot be combined (missing or repeated ranks); None when it can."""
    world = job[0][1]["rank"]["world_size"]
    ranks: dict[int, str] = {}
    for _, rec in job:
        r = rec["rank"].get("rank")
        if not isinstance(r, int):
            return f"{rec['id']}: rank number missing"
        if r in ranks:
            return f"rank {r} appears twice ({ranks[r]} and {rec['id']})"
        ranks[r] = rec["id"]
    missing = [r for r in range(world) if r not in ranks]
    extra = [r for r in ranks if r >= world]
    job_id = job[0][1]["rank"].get("job_id")
    what = f"job {job_id}" if job_id else f"job {job[0][1].get('name')!r}"
    if extra:
        return f"{what}: rank {extra[0]} is outside world size {world}"
    if missing:
        shown = ", ".join(str(r) for r in missing[:8]) + (" ..." if len(missing) > 8 else "")
        return f"{what}: {len(ranks)} of {world} ranks present (missing rank {shown})"
    return None


def _source_key(src: dict, host: str) -> tuple:
    detail = src.get("detail") if isinstance(src.get("detail"), dict) else {}
    if src.get("domain") == "gpu" and detail.get("uuid"):
        return ("gpu", str(detail["uuid"]))
    return (src.get("domain"), host, src.get("name"))


def combine(job: list[tuple[Any, dict]]) -> dict:
    """One record for a complete job (call :func:`job_problem` first)."""
    recs = sorted((rec for _, rec in job), key=lambda r: r["rank"]["rank"])
    base = recs[0]
    chosen: dict[tuple, tuple[float, int, dict]] = {}
    for rec in recs:
        host = str(rec["rank"].get("host") or rec.get("environment_info", {}).get("hostname") or "")
        duration = rec.get("duration_s") if isinstance(rec.get("duration_s"), (int, float)) else 0.0
        for src in rec.get("sources") or []:
            key = _source_key(src, host)
            prev = chosen.get(key)
            # Keep the longest-measuring rank's reading of a shared device; ties go to the lower rank.
            if prev is None or duration > prev[0]:
                detail = dict(src.get("detail") or {})
                detail.update(host=host, rank=rec["rank"]["rank"])
                chosen[key] = (duration, rec["rank"]["rank"], {**src, "detail": detail})
    sources = [v[2] for _, v in sorted(chosen.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]
    energy: dict[str, Any] = {}
    methods: dict[str, Any] = {}
    for domain, comp in _COMPONENTS.items():
        srcs = [s for s in sources if s.get("domain") == domain]
        if not srcs:
            if domain != "system":
                energy[comp], methods[comp] = None, None
            continue
        values = [s.get("energy_j") for s in srcs]
        # One device without a figure makes the component unknown: a partial sum would look complete.
        energy[comp] = math.fsum(values) if all(isinstance(v, (int, float)) for v in values) else None
        methods[comp] = weakest_method_name([s["method"] for s in srcs]) if energy[comp] is not None else None
    parts = [(v, methods[k]) for k, v in energy.items() if v is not None]
    energy["total"] = math.fsum(v for v, _ in parts) if parts else None
    methods["total"] = weakest_method_name([m for _, m in parts]) if parts else None
    spans = [_span(r) for r in recs]
    starts = [s for s, _ in spans if s is not None]
    ends = [e for _, e in spans if e is not None]
    start, end = (min(starts), max(ends)) if starts and ends else (None, None)
    duration = end - start if start is not None and end is not None else None
    hosts = sorted({str(r["rank"].get("host") or "") for r in recs})
    status = max((r.get("status", "failed") for r in recs), key=lambda s: _STATUS_ORDER.get(s, 2))
    out: dict[str, Any] = dict(base)
    out.update(
        start_utc=_iso(start) if start is not None else base.get("start_utc"),
        end_utc=_iso(end) if end is not None else None,
        duration_s=duration, energy_j=energy, energy_method=methods,
        estimated=any(bool(r.get("estimated")) for r in recs) or methods["total"] == "estimate",
        sources=sources,
        skipped_sources=sorted({(s.get("name"), s.get("reason")): s for r in recs
                                for s in r.get("skipped_sources") or []}.values(),
                               key=lambda s: (str(s.get("name")), str(s.get("reason")))),
        status=status, error=next((r.get("error") for r in recs if r.get("error")), None),
        exit_code=next((r.get("exit_code") for r in recs if r.get("exit_code")), base.get("exit_code")),
        windows=[], baseline=None, repeats=None,
        rank={"host": None, "rank": None, "local_rank": None, "world_size": base["rank"]["world_size"],
              "job_id": base["rank"].get("job_id"), "hosts": hosts, "ranks": [r["rank"]["rank"] for r in recs]},
        rank_records=[{k: r.get(k) for k in ("id", "status", "start_utc", "end_utc", "duration_s", "energy_j",
                                              "energy_method", "n_samples", "windows", "baseline")}
                      | {"host": r["rank"].get("host"), "rank": r["rank"]["rank"],
                         "local_rank": r["rank"].get("local_rank")} for r in recs],
        traces={f"rank{r['rank']['rank']}/{k}": v for r in recs for k, v in (r.get("traces") or {}).items()},
    )
    if any("trace_samples" in r for r in recs):
        out["trace_samples"] = {f"rank{r['rank']['rank']}/{k}": v for r in recs
                                for k, v in (r.get("trace_samples") or {}).items()}
    out["carbon"] = _carbon(recs, energy["total"])
    _per_sample(out, recs, energy, methods, duration)
    out["environment"] = environment_name(out)
    return out


def _carbon(recs: list[dict], total_j: float | None) -> dict | None:
    carbons = [r.get("carbon") for r in recs]
    if total_j is None or not all(isinstance(c, dict) for c in carbons):
        return None
    first = carbons[0]
    same = all((c.get("intensity_g_per_kwh"), c.get("pue"), c.get("country")) ==
               (first.get("intensity_g_per_kwh"), first.get("pue"), first.get("country")) for c in carbons)
    intensity, pue = first.get("intensity_g_per_kwh"), first.get("pue")
    if not same or not isinstance(intensity, (int, float)) or not isinstance(pue, (int, float)):
        return None
    return {**first, "emissions_g": total_j / 3.6e6 * intensity * pue}


def _per_sample(out: dict, recs: list[dict], energy: dict, methods: dict, duration: float | None) -> None:
    counts = [r.get("n_samples") for r in recs]
    if not out.get("task") or not all(isinstance(n, int) and n > 0 for n in counts):
        if out.get("per_sample") is not None:
            out["per_sample"] = None
        return
    n = sum(counts)  # each rank reports the samples it processed
    out["n_samples"] = n
    out["per_sample"] = {
        "energy_j": {k: (v / n if v is not None else None) for k, v in energy.items()},
        "energy_method": dict(methods),
        "time_ms": duration / n * 1000.0 if duration else None,
        "throughput_per_s": n / duration if duration else None,
    }
