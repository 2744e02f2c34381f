"""What a label says, computed from one rated record (docs/design.md section 4) without drawing.

Pure functions: no reportlab, no rating. Every figure on the label comes from the rated record or
the database record inside it; nothing is recomputed, and a missing value shows as "n/a".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from mlee import __version__
from mlee.errors import ResultFormatError
from mlee.fsutil import finite
from mlee.label.qrtext import NA, qr_summary, qr_url
from mlee.label.tokens import with_token_lines
from mlee.rating.core import COLOURS as RATING_COLOURS  # the EU label colours, one definition
from mlee.rating.core import LETTERS as RATINGS
from mlee.rating.stars import rated_stars

UNRATED_COLOUR = "#9E9E9E"
#: What a label and a rate table show for a rated metric without a figure (grey, no letter).
NOT_MEASURED = "not measured"
#: How every compound mode treats such a metric (mlee.rating.core.rate_index rates a missing index E).
NOT_MEASURED_NOTE = "Not measured (grey): counted as E in the compound rating, so a label never claims what " \
                    "nobody measured."

BLOCKS = ("energy", "time", "accuracy", "size")
BLOCK_TITLES = {"energy": "Energy", "time": "Time", "accuracy": "Accuracy", "size": "Model size"}

METHOD_SHORT = {"counter": "energy counter", "power_integration": "power integration", "estimate": "estimate"}


@dataclass(frozen=True)
class MetricLine:
    """One rated figure: ``text`` is value and unit ready to print ("0.673 Ws", "n/a").

    ``rating`` is None for a figure the spec does not rate, and for a rated one that was not measured
    (``measured`` False: shown grey as "not measured"). Units: ``weight`` dimensionless.
    """

    key: str
    label: str
    text: str
    rating: str | None
    method: str | None
    weight: float
    measured: bool = True


@dataclass(frozen=True)
class Block:
    """A metric block: its pictogram takes the colour of ``rating`` (None: not rated, grey)."""

    kind: str
    title: str
    rating: str | None
    lines: tuple[MetricLine, ...]
    note: str = ""
    footnote: str = ""
    footnote_alert: bool = False


@dataclass(frozen=True)
class LabelContent:
    """Everything printed on one label, as text and rating letters."""

    model: str
    task: str
    dataset: str
    environment: str
    hardware: str
    backend: str
    compound: str
    blocks: tuple[Block, ...]
    estimated: bool
    energy_note: str
    measured_on: str
    spec_name: str
    spec_version: str
    spec_sha256: str
    reference: str  # "" where the spec rates against the best model of each group
    record_id: str
    mlee_version: str
    qr_payload: str
    unmeasured_note: str = ""  # one line on how the compound treated the metrics not measured ("" if none)
    stars: int | None = None  # 1-5 where the spec shows stars (issue 19: ai-energy-score), else None

    @property
    def spec_short(self) -> str:
        return self.spec_sha256[:12] if self.spec_sha256 else NA

    @property
    def title(self) -> str:
        return f"Energy label: {self.model} ({self.environment})"


def format_number(value: float) -> str:
    """A figure with three significant digits, no exponent for everyday magnitudes."""
    if value == 0:
        return "0"
    mag = abs(float(f"{value:.3g}"))  # rounded first: 0.99999 is shown as 1.00, not 1.000
    if mag >= 1e6 or mag < 1e-3:
        return f"{value:.3g}"
    if mag >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - int(math.floor(math.log10(mag))))
    return f"{value:.{digits}f}"


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def block_of(key: str, unit: str) -> str:
    """Which block a metric belongs to, by its key (and its unit for keys of unknown kind)."""
    k = _norm(key)
    if "energy" in k or "power" in k:
        return "energy"
    if any(w in k for w in ("time", "latency", "duration", "throughput", "runtime")):
        return "time"
    if any(w in k for w in ("top1", "top5", "acc", "loss", "f1", "precision", "recall")):
        return "accuracy"
    if any(w in k for w in ("param", "flop", "mac", "fsize", "size", "weight", "memory")):
        return "size"
    u = unit.strip().lower()
    if u in ("j", "ws", "kj", "wh", "kwh", "mj"):
        return "energy"
    if u in ("s", "ms", "us", "h", "min"):
        return "time"
    if u == "%":
        return "accuracy"
    return "size"


def _is_fraction_metric(key: str, unit: str) -> bool:
    k = _norm(key)
    return unit.strip().lower() in ("", "1", "fraction", "ratio") and any(w in k for w in ("top1", "top5", "acc"))


def format_value(key: str, value: Any, unit: str | None) -> str:
    """Value and unit as printed; fractions of accuracy metrics are shown in percent."""
    unit = unit or ""
    if not finite(value):
        return NA
    if _is_fraction_metric(key, unit):
        return f"{format_number(float(value) * 100.0)} %"
    value = float(value)
    # Training totals in joules or seconds run to 10^8: shown with a prefix or in hours, same quantity.
    if unit == "J" and abs(value) >= 1e4:
        factor, prefix = next((f, p) for f, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if abs(value) >= f * 10)
        return f"{format_number(value / factor)} {prefix}J"
    if unit == "s" and abs(value) >= 7200:
        return f"{format_number(value / 3600.0)} h"
    return f"{format_number(value)} {unit}".strip()


def _letter(value: Any) -> str | None:
    return value if value in RATINGS else None


def _metric_line(key: str, m: dict[str, Any]) -> MetricLine:
    if not isinstance(m, dict):
        raise ResultFormatError(f"rated record: metric {key!r} is not an object",
                                "rate the database again with `mlee rate`")
    unit = str(m.get("unit") or "")
    value = m.get("value")
    measured = finite(value)
    method = m.get("method") if isinstance(m.get("method"), str) else None
    weight = m.get("weight")
    return MetricLine(
        key=key,
        label=str(m.get("label") or key.replace("_", " ").capitalize()),
        text=format_value(key, value, unit) if measured else NOT_MEASURED,
        # A missing value rates E by the rating's own rule: the compound counts that E, the line shows no letter.
        rating=_letter(m.get("rating")) if measured else None,
        method=method,
        weight=float(weight) if finite(weight) else 0.0,
        measured=measured,
    )


def _unrated_lines(kind: str, record: dict[str, Any]) -> tuple[MetricLine, ...]:
    """Figures the database record holds for a block the spec does not rate (shown grey)."""
    per = record.get("per_sample") if isinstance(record.get("per_sample"), dict) else {}
    info = record.get("model_info") if isinstance(record.get("model_info"), dict) else {}
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    rows: list[tuple[str, str, Any, str]] = []
    if kind == "energy":
        energy = per.get("energy_j") if isinstance(per.get("energy_j"), dict) else {}
        # A summary holds {"mean", "std"}, a single record {"total", "cpu", ...}.
        rows.append(("energy_per_sample", "Energy per sample", energy.get("mean", energy.get("total")), "J"))
    elif kind == "time":
        t = per.get("time_ms")
        rows.append(("time_per_sample", "Time per sample", t.get("mean") if isinstance(t, dict) else t, "ms"))
    elif kind == "accuracy":
        rows.append(("top1", "Top-1 accuracy", metrics.get("top1"), ""))
        rows.append(("top5", "Top-5 accuracy", metrics.get("top5"), ""))
    else:
        p, f = info.get("parameters"), info.get("flops")
        rows.append(("parameters", "Parameters", p / 1e6 if finite(p) else None, "M"))
        rows.append(("flops", "FLOPs", f / 1e9 if finite(f) else None, "G"))
    methods = per.get("energy_method") if isinstance(per.get("energy_method"), dict) else {}
    method = methods.get("total") if kind == "energy" and isinstance(methods.get("total"), str) else None
    return tuple(MetricLine(key=k, label=label, text=format_value(k, v, u), rating=None, method=method,
                            weight=0.0) for k, label, v, u in rows)


def _blocks(metrics: dict[str, Any], record: dict[str, Any]) -> tuple[Block, ...]:
    grouped: dict[str, list[MetricLine]] = {b: [] for b in BLOCKS}
    for key in metrics:  # the spec's order (JSON keeps it); ties in weight keep it too
        m = metrics[key]
        grouped[block_of(key, str((m or {}).get("unit") or "") if isinstance(m, dict) else "")].append(
            _metric_line(key, m))
    out = []
    for kind in BLOCKS:
        lines = grouped[kind]
        if lines:
            # The heaviest measured figure leads (max() keeps the first of equal weights); none measured: no letter.
            lead = max([ln for ln in lines if ln.measured] or lines, key=lambda ln: ln.weight)
            out.append(Block(kind, BLOCK_TITLES[kind], lead.rating, tuple(lines)))
        else:
            out.append(Block(kind, BLOCK_TITLES[kind], None, _unrated_lines(kind, record), note="not rated"))
    return tuple(out)


def _split_environment(env: str) -> tuple[str, str]:
    if " - " in env:
        hw, backend = env.rsplit(" - ", 1)
        return hw.strip(), backend.strip()
    return env, NA


def _measured_on(record: dict[str, Any], dates_utc: tuple[str, ...] | None) -> str:
    candidates = list(dates_utc or ())
    for key in ("start_utc", "end_utc"):
        if isinstance(record.get(key), str):
            candidates.append(record[key])
    days = sorted({d[:10] for d in candidates if isinstance(d, str) and re.match(r"\d{4}-\d\d-\d\d", d)})
    if not days:
        return NA
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def _estimate_sources(record: dict[str, Any]) -> list[str]:
    """How the estimated figures were made, e.g. ``["codecarbon cpu_load + ram_power_model"]``."""
    by_tool: dict[str, list[str]] = {}
    for src in record.get("sources") or []:
        if not isinstance(src, dict) or src.get("method") != "estimate":
            continue
        detail = src.get("detail") if isinstance(src.get("detail"), dict) else {}
        name = str(src.get("name") or "estimate")
        tool = "codecarbon" if ("codecarbon_version" in detail or name.startswith("estimate")) else name
        mode = detail.get("codecarbon_method") or detail.get("tracking_mode") or detail.get("mode")
        modes = by_tool.setdefault(tool, [])
        if isinstance(mode, str) and mode and mode not in modes:
            modes.append(mode)
    return [f"{tool} {' + '.join(modes)}".strip() for tool, modes in sorted(by_tool.items())]


def _with_energy_footnote(blocks: tuple[Block, ...], estimated: bool, record: dict[str, Any]) -> tuple[Block, ...]:
    """Put the energy figures' method under them: estimates are labelled where they are shown."""
    out = []
    for b in blocks:
        if b.kind == "energy":
            methods = sorted({ln.method for ln in b.lines if ln.method})
            if estimated or "estimate" in methods:
                how = _estimate_sources(record)
                b = replace(b, footnote="ESTIMATE: " + (", ".join(how) if how else "not measured"),
                            footnote_alert=True)
            elif methods:
                b = replace(b, footnote="measured: " + " + ".join(METHOD_SHORT.get(m, m) for m in methods))
            else:
                b = replace(b, footnote="method not recorded")
        out.append(b)
    return tuple(out)


def _energy_note(rated: dict[str, Any], record: dict[str, Any], blocks: tuple[Block, ...]) -> tuple[bool, str]:
    methods = {ln.method for b in blocks for ln in b.lines if b.kind == "energy" and ln.method}
    rec_methods = record.get("energy_method") if isinstance(record.get("energy_method"), dict) else {}
    if isinstance(rec_methods.get("total"), str):
        methods.add(rec_methods["total"])
    estimated = bool(rated.get("estimated")) or bool(record.get("estimated")) or "estimate" in methods
    if estimated:
        how = _estimate_sources(record)
        detail = ", ".join(how) if how else "codecarbon model of power, not a measurement"
        return True, f"ESTIMATED energy ({detail})"
    measured = sorted(m for m in methods if m in METHOD_SHORT and m != "estimate")
    if not measured:
        return False, "Energy method not recorded"
    names = sorted({str(s.get("name")) for s in record.get("sources") or [] if isinstance(s, dict)
                    and s.get("method") in ("counter", "power_integration") and s.get("name")})
    how = " + ".join(METHOD_SHORT[m] for m in measured)
    return False, f"Energy measured: {how}" + (f" ({', '.join(_compact(names))})" if names else "")


def coverage_note(record: dict[str, Any]) -> str:
    """`` · PARTIAL (valid readings cover 33% of the run)`` and `` · SHARED GPU (whole MIG parent)``, or ""."""
    parts = []
    fraction = (record.get("energy_coverage") or {}).get("total") if isinstance(record.get("energy_coverage"), dict) \
        else None
    if record.get("partial") is True:
        parts.append("PARTIAL" + (f" (valid readings cover {fraction:.0%} of the run)" if finite(fraction) else ""))
    if record.get("shared") is True:
        parts.append("SHARED GPU (whole MIG parent measured)")
    return "".join(f" \u00b7 {p}" for p in parts)


def format_mass_g(grams: float) -> str:
    """A mass of CO2e in g, mg or µg, whichever keeps the figure readable."""
    for factor, unit in ((1.0, "g"), (1e-3, "mg"), (1e-6, "\u00b5g")):
        if abs(grams) >= factor or unit == "\u00b5g":
            return f"{format_number(grams / factor)} {unit}"
    return f"{format_number(grams)} g"  # pragma: no cover - the loop always returns


def _with_carbon(blocks: tuple[Block, ...], carbon: dict[str, Any]) -> tuple[Block, ...]:
    """Emissions per sample under the energy figures (asked for with ``mlee label --carbon``); never rated."""
    pue = float(carbon.get("pue") or 1.0)
    line = MetricLine(key="carbon_per_sample", label=f"CO2e/sample, {carbon.get('country')}"
                      + (f", PUE {pue:g}" if pue != 1.0 else ""),
                      text="\u2248 " + format_mass_g(float(carbon["emissions_g"])), rating=None, method=None,
                      weight=0.0)
    return tuple(replace(b, lines=b.lines + (line,)) if b.kind == "energy" else b for b in blocks)


def _compact(names: list[str]) -> list[str]:
    """``nvml:0 ... nvml:7`` as ``nvml:0-7``: eight GPUs should not crowd out the line."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, suffix = name.rpartition(":")
        groups.setdefault(prefix if suffix.isdigit() else name, []).append(suffix if suffix.isdigit() else "")
    out = []
    for prefix, suffixes in groups.items():
        numbers = sorted(int(x) for x in suffixes if x)
        if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            out.append(f"{prefix}:{numbers[0]}-{numbers[-1]}")
        else:
            out += [f"{prefix}:{n}" for n in numbers] + [prefix for x in suffixes if not x]
    return out


def _text(value: Any) -> str:
    return str(value) if isinstance(value, (str, int, float)) and str(value).strip() else NA


def label_content(rated: dict[str, Any], *, qr_url_template: str | None = None,
                  dates_utc: tuple[str, ...] | None = None) -> LabelContent:
    """Build the label's content from one rated record.

    Args:
        rated: A rated record (docs/design.md section 4).
        qr_url_template: A URL (with optional ``{model}``-style placeholders) for the QR code;
            None puts a compact summary of the record in it.
        dates_utc: Measurement times of the runs behind a summary record (ISO 8601, UTC), used
            when the record itself carries none.

    Raises:
        ResultFormatError: when the rated record lacks its compound rating, model or metrics.
    """
    if not isinstance(rated, dict):
        raise ResultFormatError("rated record is not an object", "rate the database again with `mlee rate`")
    compound = rated.get("compound")
    if compound not in RATINGS:
        raise ResultFormatError(f"rated record {rated.get('id')!r}: compound rating {compound!r} is not A-E",
                                "rate the database again with `mlee rate`")
    metrics = rated.get("metrics")
    if not isinstance(metrics, dict):
        raise ResultFormatError(f"rated record {rated.get('id')!r} has no metrics",
                                "rate the database again with `mlee rate`")
    record = rated.get("record") if isinstance(rated.get("record"), dict) else {}
    spec = rated.get("spec") if isinstance(rated.get("spec"), dict) else {}
    environment = _text(rated.get("environment"))
    hardware, backend = _split_environment(environment)
    blocks = _blocks(metrics, record)
    estimated, note = _energy_note(rated, record, blocks)
    note += coverage_note(record)  # issue 14: partial and shared figures say so on the label
    blocks = _with_energy_footnote(blocks, estimated, record)
    blocks = with_token_lines(blocks, record,  # issue 19: per-token figures and phases of transformers runs
                              lambda k, text, v, u: MetricLine(k, text, format_value(k, v, u), None, None, 0.0))
    if isinstance(rated.get("carbon"), dict) and finite(rated["carbon"].get("emissions_g")):
        blocks = _with_carbon(blocks, rated["carbon"])
    sha = str(spec.get("sha256") or "")
    fields = dict(
        model=_text(rated.get("model")), task=_text(rated.get("task")), dataset=_text(rated.get("dataset")),
        environment=environment, hardware=hardware, backend=backend, compound=compound, blocks=blocks,
        estimated=estimated, energy_note=note, measured_on=_measured_on(record, dates_utc),
        spec_name=_text(spec.get("name")), spec_version=_text(spec.get("version")), spec_sha256=sha,
        reference=str(rated["reference"]) if isinstance(rated.get("reference"), str) else "",
        record_id=_text(rated.get("id")),
        mlee_version=__version__,
    )
    fields["qr_payload"] = qr_url(qr_url_template, fields) if qr_url_template is not None else qr_summary(fields)
    unmeasured = any(not ln.measured for b in blocks for ln in b.lines)
    return LabelContent(**fields, unmeasured_note=NOT_MEASURED_NOTE if unmeasured else "", stars=rated_stars(rated))
