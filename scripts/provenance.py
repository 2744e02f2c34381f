"""Write the provenance note of a database (Markdown, stdout): where, when, how each figure was obtained.

Usage: python scripts/provenance.py results/reference/merged.json > results/reference/README.md
"""

from __future__ import annotations

import sys
from collections import Counter

from mlee.results import load_database


def main(path: str) -> str:
    db = load_database(path)
    records = db["records"]
    lines = ["# Reference database", "",
             f"Measured by mlee {db.get('mlee_version')} with `scripts/make_reference.sh` (`mlee demo --dataset synthetic` on seeded "
             "synthetic ImageNet-shaped inputs, randomly initialised weights: no downloads). Regenerate it with that "
             "script; `labels/reference/` holds the labels and the report rendered from it.", ""]
    envs = sorted({r.get("environment") or "?" for r in records})
    starts = sorted(r.get("start_utc") or "" for r in records)
    lines += [f"- Environment(s): {', '.join(envs)}",
              f"- Measured between {starts[0]} and {starts[-1]} (UTC)" if starts else "- No records",
              f"- {len(records)} experiment(s), {len(db.get('summaries', []))} model summary(ies); "
              f"skipped: {len(db.get('skipped', []))}", ""]
    info = (records[0].get("environment_info") or {}) if records else {}
    cpu = info.get("cpu") or {}
    lines += [f"Machine: {cpu.get('model', '?')}, {cpu.get('cores_logical', '?')} logical cores, "
              f"{(info.get('memory_bytes') or 0) / 2**30:.0f} GiB, GPUs: {len(info.get('gpus') or [])}.", ""]
    lines += ["## How each energy figure was obtained", "", "| model | component | method | source |", "|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r.get("model") or "", r["id"])):
        for s in r.get("sources") or []:
            detail = s.get("detail") or {}
            how = detail.get("codecarbon_method") or ""
            if detail.get("tdp_w"):
                how += f", TDP {detail['tdp_w']:g} W"
            lines.append(f"| {r.get('model')} | {s.get('domain')} | {s.get('method')} | {s.get('name')}"
                         + (f" ({how})" if how else "") + " |")
    methods = Counter(m for r in records for m in [(r.get("energy_method") or {}).get("total")] if m)
    lines += ["", "Totals by method: " + ", ".join(f"{k}: {v}" for k, v in sorted(methods.items())) + "."]
    if methods.get("estimate"):
        lines += ["", "**Energy figures marked `estimate` are not measurements**: this machine exposes no RAPL "
                  "counters, so CPU and RAM energy come from codecarbon's model of power (TDP x CPU load, RAM "
                  "size rule). They compare models run the same way on the same machine; they are not joules "
                  "a meter would read. Labels and the report say so."]
    lines += ["", "Accuracy is not measured (synthetic inputs) and rates E with \"n/a\" for every model alike."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1]))
