"""Summaries of repeated runs: records of the same (task, model, backend, environment, dataset) -> mean, std, n.

Summaries are computed from small per-record "facts" (see :func:`facts`), which the ``--update`` index keeps,
so an incremental merge can re-summarise without parsing every record again.
Only completed model runs (with a ``task``) are summarised; failed and interrupted runs stay records.
``std`` is the sample standard deviation (n - 1), null for a single run: one run says nothing about spread.
"""

from __future__ import annotations

import math
from typing import Any

from mlee.vocabulary import weakest_method_name


def _num(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def facts(record: dict) -> dict | None:
    """What a summary needs of one record; None when the record is not summarised."""
    if record.get("status") != "completed" or not record.get("task"):
        return None
    backend = record.get("backend") if isinstance(record.get("backend"), dict) else None
    return {
        "id": record["id"],
        "key": [record["task"], record.get("dataset"), record["environment"], record.get("model"),
                backend.get("name") if backend else None, backend.get("version") if backend else None],
        "backend": {"name": backend.get("name"), "version": backend.get("version")} if backend else None,
        "energy_j": _num(_get(record, "per_sample", "energy_j", "total")),
        "energy_method": _get(record, "per_sample", "energy_method", "total"),
        "time_ms": _num(_get(record, "per_sample", "time_ms")),
        "top1": _num(_get(record, "metrics", "top1")),
        "top5": _num(_get(record, "metrics", "top5")),
        "epoch_energy_j": _num(_get(record, "training", "per_epoch", "energy_j")),
        "epoch_time_s": _num(_get(record, "training", "per_epoch", "time_s")),
        "estimated": bool(record.get("estimated")),
        # issue 19: figures of --backend transformers runs (None for the others)
        "input_token_energy_j": _num(_get(record, "transformers", "per_input_token", "energy_j", "total")),
        "output_token_energy_j": _num(_get(record, "transformers", "per_output_token", "energy_j", "total")),
        "tokens_per_s": _num(_get(record, "transformers", "tokens_per_s")),
        "latency_p50_ms": _num(_get(record, "transformers", "latency", "p50_ms")),
        "model_info": record.get("model_info") if isinstance(record.get("model_info"), dict) else None,
    }


def mean_std(values: list[float | None]) -> dict:
    """``{"mean", "std"}`` of the non-null values (sample std; null when fewer than two)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None}
    m = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return {"mean": m, "std": None}
    return {"mean": m, "std": math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))}


def summarise(all_facts: list[dict]) -> list[dict]:
    """Summaries of the given facts, sorted by (task, dataset, environment, model, backend)."""
    groups: dict[tuple, list[dict]] = {}
    for f in all_facts:
        groups.setdefault(tuple("" if k is None else str(k) for k in f["key"]), []).append(f)
    out = []
    for key in sorted(groups):
        fs = sorted(groups[key], key=lambda f: f["id"])
        first = fs[0]
        infos = [f["model_info"] for f in fs]
        summary: dict[str, Any] = {
            "task": first["key"][0], "dataset": first["key"][1], "environment": first["key"][2],
            "model": first["key"][3], "backend": first["backend"],
            "n": len(fs), "ids": [f["id"] for f in fs],
            "per_sample": {"energy_j": mean_std([f["energy_j"] for f in fs]),
                           "time_ms": mean_std([f["time_ms"] for f in fs])},
            "energy_method": weakest_method_name([f["energy_method"] for f in fs if f["energy_j"] is not None]),
            "estimated": any(f["estimated"] for f in fs),
            "metrics": {"top1": mean_std([f["top1"] for f in fs]), "top5": mean_std([f["top5"] for f in fs])},
            # Model facts are the same for every run of a model; when runs disagree none is claimed.
            "model_info": infos[0] if all(i == infos[0] for i in infos) else None,
        }
        if any(f["epoch_energy_j"] is not None or f["epoch_time_s"] is not None for f in fs):
            summary["training"] = {"per_epoch": {"energy_j": mean_std([f["epoch_energy_j"] for f in fs]),
                                                 "time_s": mean_std([f["epoch_time_s"] for f in fs])}}
        hf_keys = ("input_token_energy_j", "output_token_energy_j", "tokens_per_s", "latency_p50_ms")
        if any(f.get(k) is not None for f in fs for k in hf_keys):
            summary["transformers"] = {k: mean_std([f.get(k) for f in fs]) for k in hf_keys}
        out.append(summary)
    return out


#: Order of the per-record figures in the packed form the ``--update`` index stores.
#: The transformers figures come last: an index written before them unpacks with them missing (None).
_PACKED = ("energy_j", "energy_method", "time_ms", "top1", "top5", "epoch_energy_j", "epoch_time_s", "estimated",
           "input_token_energy_j", "output_token_energy_j", "tokens_per_s", "latency_p50_ms")


def pack_facts(by_id: dict[str, dict | None]) -> tuple[list, dict[str, list | None]]:
    """Facts in a compact form: group fields (key, backend, model facts) once in a table, figures as lists."""
    groups: list = []
    where: dict[tuple, int] = {}
    # Facts unpacked from an index share their group objects: the tag (a repr) is taken once per group
    # then, not once per record. The objects are kept in ``known`` so their ids stay theirs.
    known: dict[tuple[int, int, int], tuple[int, tuple]] = {}
    packed: dict[str, list | None] = {}
    for rid, f in by_id.items():
        if f is None:
            packed[rid] = None
            continue
        key, backend, info = f["key"], f["backend"], f["model_info"]
        ids = (id(key), id(backend), id(info))
        hit = known.get(ids)
        if hit is None:
            tag = (tuple(map(str, key)), repr(sorted((backend or {}).items())),
                   repr(sorted(info.items())) if isinstance(info, dict) else repr(info))
            if tag not in where:
                where[tag] = len(groups)
                groups.append([key, backend, info])
            hit = known[ids] = (where[tag], (key, backend, info))
        packed[rid] = [hit[0], *(f.get(k) for k in _PACKED)]
    return groups, packed


def unpack_facts(rid: str, packed: list | None, groups: list) -> dict | None:
    """The facts of one record from :func:`pack_facts`' output."""
    if packed is None:
        return None
    key, backend, model_info = groups[packed[0]]
    figures = dict.fromkeys(_PACKED)
    figures.update(zip(_PACKED, packed[1:]))
    return {"id": rid, "key": key, "backend": backend, "model_info": model_info, **figures}
