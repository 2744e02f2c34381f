"""The layer-data format: one measured kernel per CSV row, so predictors can be fit on anyone's measurements.

Columns (a header row is required; order is free; unknown columns are ignored):

- ``kind``: a kernel kind (:data:`mlee.predict.kernels.KERNEL_KINDS`).
- shape columns, those of the kind (:data:`mlee.predict.kernels.KIND_FIELDS`), integers: ``batch``,
  ``cin``, ``cout``, ``c``, ``mult``, ``h``, ``w``, ``kh``, ``kw``, ``stride``, ``ph``, ``pw``, ``ceil``,
  ``fin``, ``fout``, ``n``; a column another kind needs is left empty.
- ``device`` (``cpu``, ``cuda:0``, ``Jetson AGX Xavier``) and ``environment`` (the machine and software
  stack; points of one environment make one predictor; default: the device).
- ``time_s``: runtime of one call on the whole batch, seconds (required); ``cpu_time_s`` optional.
- ``power_w`` (mean power while it runs, watts) and/or ``energy_j`` (energy of one call, joules); with
  either, ``energy_method`` is required: ``counter``, ``power_integration`` or ``estimate``.
- ``stable`` (1 or 0, default 1) and ``source`` (where the row comes from; default the file name).

Importers for published layer measurements (:mod:`mlee.predict.importers`) produce the same points.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from mlee.errors import MleeError, UsageError
from mlee.fsutil import atomic_write_text
from mlee.predict.kernels import KIND_FIELDS, KernelConfig
from mlee.predict.training import Point

SHAPE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(f for fields in KIND_FIELDS.values() for f in fields))
COLUMNS: tuple[str, ...] = (("kind",) + SHAPE_COLUMNS + ("device", "environment", "time_s", "cpu_time_s",
                                                        "power_w", "energy_j", "energy_method", "stable", "source"))
METHODS = ("counter", "power_integration", "estimate")


def fingerprint_for(device: str) -> dict:
    """The fingerprint of imported points: only the device is known."""
    return {"cpu_model": None, "torch_version": None, "mlee_version": None, "device": device, "torch_threads": None}


def make_point(cfg: KernelConfig, time_s: float, power_w: float | None, energy_j: float | None,
               method: str | None, device: str, environment: str, source: str, stable: bool = True,
               cpu_time_s: float | None = None) -> Point:
    """A point from published figures; power comes from energy / runtime when only energy is given.

    Raises:
        UsageError: a non-positive runtime, power or energy, or energy figures without a known method.
    """
    if not (time_s > 0):
        raise UsageError(f"runtime {time_s!r} s is not positive")
    for name, value in (("power_w", power_w), ("energy_j", energy_j)):
        if value is not None and not value > 0:
            raise UsageError(f"{name} {value!r} is not positive")
    if power_w is None and energy_j is not None:
        power_w = energy_j / time_s
    if power_w is not None and method not in METHODS:
        raise UsageError(f"energy_method {method!r} is not one of {', '.join(METHODS)}",
                         "say how the energy was measured (counter, power_integration or estimate)")
    return Point(cfg, float(time_s), cpu_time_s, power_w, method if power_w is not None else None, stable,
                 source, environment or device, fingerprint_for(device), "wall")


def _num(row: dict, name: str) -> float | None:
    text = (row.get(name) or "").strip()
    return float(text) if text else None


def read_layer_csv(path: str | Path) -> list[Point]:
    """Read a layer-data CSV (see the module docstring).

    Raises:
        UsageError: missing file or columns, or a bad row (named by its line).
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in ("kind", "time_s") if c not in header]
            if missing:
                raise UsageError(f"{p}: no column {', '.join(missing)}",
                                 "a layer-data CSV needs a header with kind, the shape columns and time_s "
                                 "(docs/prediction.md)")
            points = []
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): v for k, v in raw.items()}
                try:
                    kind = (row.get("kind") or "").strip()
                    fields = {f: int(float(row[f])) for f in KIND_FIELDS.get(kind, ()) if (row.get(f) or "").strip()}
                    cfg = KernelConfig.make(kind, **fields)
                    device = (row.get("device") or "").strip() or "unknown"
                    points.append(make_point(
                        cfg, _num(row, "time_s") or 0.0, _num(row, "power_w"), _num(row, "energy_j"),
                        (row.get("energy_method") or "").strip() or None, device,
                        (row.get("environment") or "").strip() or device,
                        (row.get("source") or "").strip() or p.name,
                        (row.get("stable") or "1").strip() not in ("0", "false", "False"), _num(row, "cpu_time_s")))
                except (MleeError, ValueError) as exc:
                    detail = exc.message if isinstance(exc, MleeError) else str(exc)
                    raise UsageError(f"{p} line {line}: {detail}", "fix the row or leave it out") from None
    except FileNotFoundError:
        raise UsageError(f"{p} does not exist", "give a layer-data CSV") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {p}: {exc}") from None
    if not points:
        raise UsageError(f"{p} holds no rows", "a layer-data CSV needs one row per measured kernel")
    return points


def point_row(p: Point) -> dict[str, object]:
    """One CSV row of a point (energy per call = runtime x power)."""
    row: dict[str, object] = {c: "" for c in COLUMNS}
    row.update(p.config.as_dict())
    energy = p.time_s * p.power_w if p.power_w is not None else None
    row.update(kind=p.config.kind, device=p.fingerprint.get("device") or "", environment=p.environment,
               time_s=repr(p.time_s), cpu_time_s=repr(p.cpu_time_s) if p.cpu_time_s else "",
               power_w=repr(p.power_w) if p.power_w is not None else "",
               energy_j=repr(energy) if energy is not None else "", energy_method=p.energy_method or "",
               stable=int(p.stable), source=p.record_id)
    return row


def write_layer_csv(points: Iterable[Point], path: str | Path) -> Path:
    """Write points as a layer-data CSV, atomically, rows in a stable order."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for p in sorted(points, key=lambda q: (q.config.kind, q.config.key(), q.record_id)):
        writer.writerow(point_row(p))
    return atomic_write_text(path, buf.getvalue())
