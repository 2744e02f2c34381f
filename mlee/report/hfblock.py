"""The per-token figures and the prefill/decode phases of a transformers run, as the report's detail panel shows them.

Reads the ``transformers`` block of a results record (one run) or of a summary (means of repeated runs: no phases);
a figure the run does not have is left out, never shown as zero. Every energy figure keeps its method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlee.fsutil import finite

#: (label, record key, summary key, unit) of the per-unit figures.
_FIGURES = (
    ("Energy per query", "per_query", None, "J"),
    ("Energy per input token", "per_input_token", "input_token_energy_j", "J"),
    ("Energy per output token", "per_output_token", "output_token_energy_j", "J"),
)


def _total(block: Any) -> tuple[float | None, str | None]:
    """``(energy_j.total, energy_method.total)`` of a per-unit or phase block."""
    if not isinstance(block, Mapping):
        return None, None
    energy, method = block.get("energy_j"), block.get("energy_method")
    value = energy.get("total") if isinstance(energy, Mapping) else None
    how = method.get("total") if isinstance(method, Mapping) else None
    return (float(value), how if isinstance(how, str) else None) if finite(value) else (None, None)


def _mean(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("mean")
    return float(value) if finite(value) else None


def _row(label: str, value: float | None, unit: str, method: str | None = None) -> dict[str, Any] | None:
    return {"label": label, "value": value, "unit": unit, "method": method} if value is not None else None


def _phase(name: str, block: Any) -> dict[str, Any] | None:
    if not isinstance(block, Mapping):
        return None
    energy, method = _total(block)
    per_token, _ = _total(block.get("per_token"))
    duration, tokens, rate = block.get("duration_s"), block.get("tokens"), block.get("tokens_per_s")
    return {"name": name, "energy_j": energy, "method": method,
            "duration_s": float(duration) if finite(duration) else None,
            "tokens": int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
            "energy_per_token_j": per_token, "tokens_per_s": float(rate) if finite(rate) else None}


def hf_block(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"task", "figures": [{label, value, unit, method}], "phases": [{name, energy_j, method, duration_s, tokens,
    energy_per_token_j, tokens_per_s}]}`` of a record with a ``transformers`` block; None for any other record.

    Units: energy in joules (per query, per token, per phase and repeat), time in seconds per repeat, latency in
    milliseconds, tokens per second.
    """
    hf = record.get("transformers")
    if not isinstance(hf, Mapping) or not hf:
        return None
    summary = "n" in record and "ids" in record  # a summary of repeated runs holds means, not blocks
    rows: list[dict[str, Any] | None] = []
    for label, key, summary_key, unit in _FIGURES:
        if summary:
            rows.append(_row(label, _mean(hf.get(summary_key)) if summary_key else None, unit))
        else:
            value, method = _total(hf.get(key))
            rows.append(_row(label, value, unit, method))
    latency = hf.get("latency") if isinstance(hf.get("latency"), Mapping) else {}
    rows.append(_row("Tokens per second", _mean(hf.get("tokens_per_s")), "1/s"))
    rows.append(_row("Latency p50", _mean(hf.get("latency_p50_ms", latency.get("p50_ms"))), "ms"))
    rows.append(_row("Latency p95", _mean(latency.get("p95_ms")), "ms"))
    for label, key in (("Batch size", "batch_size"), ("Max new tokens", "max_new_tokens")):
        value = hf.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            rows.append(_row(label, float(value), ""))
    phases = hf.get("phases") if isinstance(hf.get("phases"), Mapping) else {}
    found = [_phase(name, phases.get(name)) for name in ("prefill", "decode")]
    task, dtype = hf.get("task"), hf.get("dtype")
    return {"task": task if isinstance(task, str) else None, "dtype": dtype if isinstance(dtype, str) else None,
            "figures": [r for r in rows if r is not None], "phases": [p for p in found if p is not None]}
