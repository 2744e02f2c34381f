"""The per-token figures and phases of a transformers run, as unrated lines under a label's energy and time blocks.

Knows the ``transformers`` block of a results record (one run) and of a summary (means of repeated runs); lines
whose figure the run does not have are left out, never shown as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlee.fsutil import finite


def _mean(value: Any) -> Any:
    return value.get("mean") if isinstance(value, dict) and "mean" in value else value


def _total(block: Any) -> Any:
    energy = block.get("energy_j") if isinstance(block, dict) else None
    return energy.get("total") if isinstance(energy, dict) else None


def _figure(hf: dict, summary_key: str, record_key: str) -> Any:
    """A summary's mean (``summary_key``) or a single record's total (``record_key``)."""
    return _mean(hf[summary_key]) if summary_key in hf else _total(hf.get(record_key))


def token_rows(record: dict[str, Any]) -> dict[str, list[tuple[str, str, float, str]]]:
    """Per block kind (``energy``, ``time``) the rows ``(key, label, value, unit)`` the record has figures for.

    Units: energy in joules per token, tokens per second, latency in milliseconds.
    """
    hf = record.get("transformers") if isinstance(record.get("transformers"), dict) else {}
    if not hf:
        return {}
    phases = hf.get("phases") if isinstance(hf.get("phases"), dict) else {}
    energy = [
        ("energy_per_output_token", "Energy/output token", _figure(hf, "output_token_energy_j", "per_output_token"),
         "J"),
        ("energy_per_input_token", "Energy/input token", _figure(hf, "input_token_energy_j", "per_input_token"), "J"),
        ("prefill_energy_per_token", "Prefill energy/token", _total((phases.get("prefill") or {}).get("per_token")),
         "J"),
        ("decode_energy_per_token", "Decode energy/token", _total((phases.get("decode") or {}).get("per_token")), "J"),
    ]
    latency = hf.get("latency") if isinstance(hf.get("latency"), dict) else {}
    time = [
        ("tokens_per_s", "Tokens/s", _mean(hf.get("tokens_per_s")), "1/s"),
        ("latency_p95", "Latency p95", latency.get("p95_ms"), "ms"),
        ("latency_p50", "Latency p50", _mean(hf.get("latency_p50_ms")), "ms"),
    ]
    if finite(energy[3][2]):
        del energy[1:3]  # three lines fit a block: per output token, and the decode phase's own figure
    if finite(time[1][2]):
        del time[2]
    rows = {"energy": [r for r in energy if finite(r[2])], "time": [r for r in time if finite(r[2])]}
    return {kind: found for kind, found in rows.items() if found}


def with_token_lines(blocks: tuple, record: dict[str, Any], line: Callable[[str, str, float, str], Any]) -> tuple:
    """``blocks`` with :func:`token_rows` appended as unrated lines (``line`` builds one) to the energy and time
    blocks."""
    rated = {ln.key for b in blocks for ln in b.lines}  # a figure the spec rates is not repeated unrated
    extra = {kind: tuple(line(*row) for row in rows if row[0] not in rated)
             for kind, rows in token_rows(record).items()}
    return tuple(replace(b, lines=b.lines + extra[b.kind]) if b.kind in extra else b for b in blocks)
