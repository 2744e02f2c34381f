"""A Hugging Face model card's energy facts: the ``co2_eq_emissions`` metadata and an "Energy" section.

The card is read and written with ``huggingface_hub``'s ``ModelCard`` (offline; nothing is uploaded). Updating
keeps everything else of an existing card: other metadata keys, and the text outside the Energy section, which
is found by its markers (or, written by hand, by its ``## Energy`` heading up to the next heading of its level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, OutputError, UsageError
from mlee.export.labels import Rated, label_bytes, rate_records
from mlee.fsutil import atomic_write_bytes, atomic_write_text, finite

START = "<!-- mlee:energy:start -->"
END = "<!-- mlee:energy:end -->"
LABEL_FILE = "energy-label.png"
_NAMES = {"total": "total", "cpu": "CPU", "dram": "memory (DRAM)", "gpu": "GPU"}
_STRENGTH = {"counter": 2, "power_integration": 1, "estimate": 0}


@dataclass(frozen=True)
class CardResult:
    """What :func:`update_card` wrote: the card, the label PNG (None when unrated) and the figures used."""

    path: Path
    label: Path | None
    emissions_g: float
    record_ids: tuple[str, ...]
    rating: str | None
    created: bool


def _pick(db: dict[str, Any], model: str, env: str | None) -> list[dict[str, Any]]:
    records = [r for r in db.get("records") or [] if r.get("model") == model and r.get("status") == "completed"]
    if not records:
        known = sorted({str(r.get("model")) for r in db.get("records") or [] if isinstance(r.get("model"), str)})
        raise UsageError(f"the database has no completed run of model {model!r}",
                         "known models: " + (", ".join(known[:20]) or "none"))
    envs = sorted({str(r.get("environment")) for r in records})
    if env is None and len(envs) > 1:
        raise UsageError(f"model {model!r} was measured in {len(envs)} environments",
                         "choose one with --env: " + "; ".join(envs))
    chosen = [r for r in records if env is None or r.get("environment") == env]
    if not chosen:
        raise UsageError(f"model {model!r} has no completed run in environment {env!r}",
                         "use one of: " + "; ".join(envs))
    return chosen


def _mean_per_sample(records: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    """(component, mean energy per sample in J, weakest method) over the runs that all measured it."""
    rows = []
    for c in ("total", "cpu", "dram", "gpu"):
        values = [((r.get("per_sample") or {}).get("energy_j") or {}).get(c) for r in records]
        methods = [((r.get("per_sample") or {}).get("energy_method") or {}).get(c) for r in records]
        if values and all(finite(v) for v in values) and all(m in _STRENGTH for m in methods):
            rows.append((c, sum(values) / len(values), min(methods, key=lambda m: _STRENGTH[m])))
    return rows


def _emissions(record: dict[str, Any]) -> tuple[float, str]:
    """Grams CO2e of one run and where on earth they count, from its recorded carbon figure or the world grid."""
    carbon = record.get("carbon") or {}
    if finite(carbon.get("emissions_g")):
        return float(carbon["emissions_g"]), str(carbon.get("country") or "location unknown")
    energy_j = (record.get("energy_j") or {}).get("total")
    if not finite(energy_j):
        raise UsageError(f"run {record.get('id')} has no total energy, so no emissions",
                         "measure the model with a power source (see `mlee doctor`)")
    from mlee.carbon import emissions, intensity_for

    grid = intensity_for(None)
    return float(emissions(float(energy_j), grid)["emissions_g"]), "world average (location unknown)"


def _training_type(record: dict[str, Any]) -> str:
    if record.get("task") != "training":
        return "inference (no training run of this model was measured)"
    weights = (record.get("config") or {}).get("weights")
    return "pre-training" if weights in (None, "none") else "fine-tuning"


def _co2(emitting: dict[str, Any]) -> dict[str, Any]:
    grams, where = _emissions(emitting)
    return {"emissions": grams, "source": "mlee", "training_type": _training_type(emitting),
            "geographical_location": where,
            "hardware_used": str(emitting.get("environment") or "unknown").rsplit(" - ", 1)[0]}


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}"


def _rating_lines(rated: Rated) -> list[str]:
    if rated.rated is None:
        return [f"Rating: none ({rated.reason})."]
    r = rated.rated
    spec = r.get("spec") or {}
    per_metric = ", ".join(f"{m.get('label', key)} {m.get('rating')}" for key, m in sorted(r["metrics"].items()))
    return [f"Rating: **{r['compound']}** (spec `{spec.get('name')}` version {spec.get('version')}, reference "
            f"{r.get('reference') or 'the best of its group'}; spec sha256 `{spec.get('sha256')}`).",
            "", f"Per metric: {per_metric}."]


def energy_section(records: list[dict[str, Any]], rated: Rated, co2: dict[str, Any], label: str | None) -> str:
    """The Markdown of the Energy section, between its markers."""
    first = records[0]
    dates = sorted(str(r.get("start_utc", ""))[:10] for r in records)
    lines = ["## Energy", "", START, ""]
    if label:
        lines += [f"![Energy label: rating {rated.rated['compound']}]({label})" if rated.rated else "", ""]
    lines += [f"Measured with mlee: {first.get('environment')}, {first.get('task')} on {first.get('dataset')} data, "
              f"{len(records)} run(s) from {dates[0]} to {dates[-1]}.", "",
              "| Figure | Value | Method |", "|---|---|---|"]
    for component, value, method in _mean_per_sample(records):
        lines.append(f"| Energy per sample ({_NAMES[component]}) | {_fmt(value, 'J')} | {method} |")
    times = [(r.get("per_sample") or {}).get("time_ms") for r in records]
    if times and all(finite(t) for t in times):
        lines.append(f"| Time per sample | {_fmt(sum(times) / len(times), 'ms')} | measured (wall clock) |")
    run = "training run" if co2["training_type"] in ("pre-training", "fine-tuning") else "inference run"
    lines.append(f"| Emissions (one {run}) | {_fmt(co2['emissions'], 'g CO2e')} | estimate "
                 f"(grid average: {co2['geographical_location']}) |")
    lines += ["", *_rating_lines(rated), "", END]
    return "\n".join(lines) + "\n"


def _splice(text: str, section: str) -> str:
    """``text`` with its Energy section replaced by ``section`` (appended when it has none)."""
    marked = re.search(r"^## Energy[ \t]*\n(?:.*\n)*?" + re.escape(END) + r"[ \t]*\n?", text, flags=re.M)
    if marked is None:
        marked = re.search(r"^## Energy[ \t]*\n(?:(?!#{1,2} ).*\n?)*", text, flags=re.M)
    if marked is not None:
        rest = text[marked.end():]
        return text[:marked.start()] + section + ("\n" if rest.strip() and not rest.startswith("\n") else "") + rest
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + section


def _load_card(path: Path) -> tuple[Any, bool]:
    try:
        from huggingface_hub import ModelCard
    except ImportError:
        raise BackendMissing("writing a model card needs huggingface_hub, which is not installed",
                             "pip install 'mlee[hub]'") from None
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a model card file", f"use -o {path / 'README.md'}")
    if not path.exists():
        return ModelCard("---\n---\n"), True
    try:
        return ModelCard.load(path), False
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises ValueError, yaml errors, OSError
        raise UsageError(f"{path} is not a model card huggingface_hub can read: {str(exc).splitlines()[0]}",
                         "fix its metadata block (between the --- lines) or write to a new file with -o") from None


def update_card(db: dict[str, Any], model: str, path: str | Path, env: str | None = None,
                spec: str | None = None) -> CardResult:
    """Write (or update) the model card at ``path`` with the energy facts of ``model`` from ``db``.

    The label PNG goes beside the card as ``energy-label.png`` (when the model can be rated).

    Raises:
        UsageError: the model is not in the database, is in several environments without ``env``, or the
            existing card cannot be parsed.
        BackendMissing: huggingface_hub is not installed, or no PNG renderer is (the fix names both).
        OutputError: the card or the label cannot be written; an existing card is left as it was.
    """
    path = Path(path)
    card, created = _load_card(path)
    records = _pick(db, model, env)
    inference = [r for r in records if r.get("task") != "training"] or records
    training = sorted((r for r in records if r.get("task") == "training"), key=lambda r: str(r.get("start_utc")))
    co2 = _co2(training[-1] if training else inference[-1])
    rated = rate_records(db, spec).get(str(inference[-1].get("id")), Rated(None, "not rated"))
    label_path = path.resolve().parent / LABEL_FILE if rated.rated is not None else None
    png = label_bytes(rated, "png") if rated.rated is not None else None
    card.data.co2_eq_emissions = co2
    card.text = _splice(card.text, energy_section(inference, rated, co2, LABEL_FILE if png else None))
    try:
        if png is not None and label_path is not None:
            atomic_write_bytes(label_path, png)
        atomic_write_text(path, str(card))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose another file with -o") from None
    return CardResult(path, label_path, co2["emissions"], tuple(str(r.get("id")) for r in inference),
                      rated.rated["compound"] if rated.rated else None, created)
