"""Importers for published per-layer measurements, and the one entry point that reads any training data.

Formats (``--format`` of ``mlee fit`` and ``mlee evaluate``):

- ``mlee``: profiles (a database from ``mlee merge`` or a results folder) or a layer-data CSV
  (:mod:`mlee.predict.layerdata`), told apart by the path.
- ``neuralpower``: the files NeuralPower's ``parser_raw_data.py`` writes from Paleo's layer log
  (caiermao/NeuralPower): comma-separated numbers, no header. ``res_conv.txt`` has 18 columns: output
  (batch, height, width, channels), filter (kh, kw, cin, cout), strides (1, sh, sw, 1), input (batch,
  height, width, channels), runtime (ms), power (W). ``res_fc.txt`` has 7: output batch and features,
  input height, width and channels (their product is the input features), runtime (ms), power (W).
  Convolutions become ``conv-bn-relu`` points (Caffe's conv layers; padding is derived from the sizes).
- ``nn-meter``: kernel-level CSVs in the nn-Meter/DeepEn2023 style, one file per kernel kind, a header
  naming the configuration (``HW``, ``CIN``, ``COUT``, ``KERNEL_SIZE``/``KS``, ``STRIDES``/``STRIDE``,
  optionally ``BATCH``) and the measurements: latency in ms (``latency``, ``latency_ms``), power in mW
  (``power``, ``power_mw``, ``avg_power``), energy in mJ (``energy``, ``energy_mj``); header names are
  matched without case, spaces or a unit in brackets. The kind comes from a ``kernel`` column or the file
  name (``conv-bn-relu.csv``, ``dwconv-bn-relu.csv``, ``fc.csv``, ``maxpool.csv`` ...).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from mlee.errors import MleeError, UsageError
from mlee.predict.kernels import KERNEL_KINDS, KernelConfig
from mlee.predict.layerdata import make_point, read_layer_csv
from mlee.predict.training import Point, load_records, points_from_records

FORMATS = ("auto", "mlee", "neuralpower", "nn-meter")
#: nn-Meter / DeepEn2023 kernel names -> mlee kinds.
_NNMETER_KINDS = {"conv": "conv-bn-relu", "conv-bn-relu": "conv-bn-relu", "conv-relu": "conv-bn-relu",
                  "conv-bn": "conv-bn-relu", "dwconv": "dwconv-bn-relu", "dwconv-bn-relu": "dwconv-bn-relu",
                  "dwconv-bn": "dwconv-bn-relu", "fc": "fc", "fc-relu": "fc", "maxpool": "maxpool",
                  "max-pool": "maxpool", "avgpool": "avgpool", "avg-pool": "avgpool", "bn-relu": "bn-relu",
                  "bnrelu": "bn-relu", "relu": "relu", "add": "add", "concat": "concat"}


def _same_pad(size: int, out: int, k: int, stride: int) -> int:
    return max(0, -(-((out - 1) * stride + k - size) // 2))


def _neuralpower_conv(v: list[float]) -> KernelConfig:
    if len(v) != 18:
        raise ValueError(f"{len(v)} numbers where a conv row has 18")
    n, oh, ow, cout, kh, kw, cin, _, _, sh, _, _, _, ih, iw, _ = (int(x) for x in v[:16])
    return KernelConfig.make("conv-bn-relu", batch=n, cin=cin, h=ih, w=iw, cout=cout, kh=kh, kw=kw, stride=sh,
                             ph=_same_pad(ih, oh, kh, sh), pw=_same_pad(iw, ow, kw, sh))


def _neuralpower_fc(v: list[float]) -> KernelConfig:
    if len(v) != 7:
        raise ValueError(f"{len(v)} numbers where an fc row has 7")
    n, fout, h, w, c = (int(x) for x in v[:5])
    return KernelConfig.make("fc", batch=n, fin=h * w * c, fout=fout)


def read_neuralpower(path: str | Path, device: str, environment: str | None = None,
                     energy_method: str = "power_integration", kind: str | None = None) -> list[Point]:
    """Read a NeuralPower parsed layer file (``res_conv.txt`` or ``res_fc.txt``; see the module docstring).

    Raises:
        UsageError: unknown layer type, or a malformed line (named).
    """
    p = Path(path)
    kind = kind or ("conv-bn-relu" if "conv" in p.stem else "fc" if "fc" in p.stem else None)
    if kind not in ("conv-bn-relu", "fc"):
        raise UsageError(f"{p}: cannot tell conv from fc layers", "name the file res_conv.txt or res_fc.txt, or "
                         "give --kernel conv-bn-relu or --kernel fc (other NeuralPower layer files are not read)")
    parse = _neuralpower_conv if kind == "conv-bn-relu" else _neuralpower_fc
    points = []
    for line_no, line in enumerate(_lines(p), start=1):
        if not line.strip():
            continue
        try:
            values = [float(x) for x in line.replace(",", " ").split()]
            cfg = parse(values)
            points.append(make_point(cfg, values[-2] / 1e3, values[-1], None, energy_method, device,
                                     environment or device, f"{p.name}:{line_no}"))
        except (MleeError, ValueError) as exc:
            detail = exc.message if isinstance(exc, MleeError) else str(exc)
            raise UsageError(f"{p} line {line_no}: {detail}", "is this a NeuralPower parsed layer file?") from None
    return _nonempty(points, p)


def _lines(p: Path) -> list[str]:
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"{p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {p}: {exc}") from None


def _nonempty(points: list[Point], p: Path) -> list[Point]:
    if not points:
        raise UsageError(f"{p} holds no measurements")
    return points


def _norm(name: str) -> str:
    return re.sub(r"\(.*?\)|\[.*?\]|[\s_]", "", name or "").lower()


def _nnmeter_config(kind: str, r: dict[str, float]) -> KernelConfig:
    def get(*names: str, default: float | None = None) -> int:
        for n in names:
            if r.get(n) is not None:
                return int(r[n])
        if default is None:
            raise ValueError(f"no {names[0].upper()} column")
        return int(default)

    batch = get("batch", default=1)
    if kind == "fc":
        return KernelConfig.make("fc", batch=batch, fin=get("cin"), fout=get("cout"))
    hw, cin = get("hw", "inputh"), get("cin")
    if kind in ("bn-relu", "relu", "add"):
        return KernelConfig.make(kind, batch=batch, c=cin, h=hw, w=hw)
    if kind == "concat":
        return KernelConfig.make(kind, batch=batch, c=cin, h=hw, w=hw, n=get("n", default=2))
    k, s = get("kernelsize", "ks"), get("strides", "stride", default=1)
    if kind == "conv-bn-relu":
        return KernelConfig.make(kind, batch=batch, cin=cin, h=hw, w=hw, cout=get("cout"), kh=k, kw=k, stride=s,
                                 ph=k // 2, pw=k // 2)
    if kind == "dwconv-bn-relu":
        return KernelConfig.make(kind, batch=batch, c=cin, h=hw, w=hw, mult=max(1, get("cout", default=cin) // cin),
                                 kh=k, kw=k, stride=s, ph=k // 2, pw=k // 2)
    return KernelConfig.make(kind, batch=batch, c=cin, h=hw, w=hw, kh=k, kw=k, stride=s, ph=0, pw=0, ceil=0)


def _first(r: dict[str, float], *names: str) -> float | None:
    return next((r[n] for n in names if r.get(n) is not None), None)


def read_nnmeter_csv(path: str | Path, device: str, environment: str | None = None,
                     energy_method: str = "power_integration", kind: str | None = None) -> list[Point]:
    """Read a kernel-level CSV in the nn-Meter/DeepEn2023 style (see the module docstring).

    Raises:
        UsageError: unknown kernel kind, missing columns, or a malformed row (named by its line).
    """
    p = Path(path)
    points = []
    try:
        rows = list(csv.DictReader(_lines(p)))
    except csv.Error as exc:
        raise UsageError(f"cannot read {p}: {exc}") from None
    for line_no, raw in enumerate(rows, start=2):
        row_kind = raw.get("kernel") or raw.get("KERNEL") or kind or p.stem.lower()
        mapped = _NNMETER_KINDS.get(str(row_kind).strip().lower())
        if mapped is None:
            raise UsageError(f"{p}: kernel {row_kind!r} has no mlee kind", f"give --kernel, one of "
                             f"{', '.join(KERNEL_KINDS)}, or name the file after the kernel (fc.csv)")
        try:
            r = {_norm(k): float(v) for k, v in raw.items() if k and _norm(k) != "kernel" and (v or "").strip()}
            latency_ms = _first(r, "latency", "latencyms")
            if latency_ms is None:
                raise ValueError("no latency (ms) column")
            power_mw, energy_mj = _first(r, "power", "powermw", "avgpower"), _first(r, "energy", "energymj")
            points.append(make_point(_nnmeter_config(mapped, r), latency_ms / 1e3,
                                     power_mw / 1e3 if power_mw is not None else None,
                                     energy_mj / 1e3 if energy_mj is not None else None, energy_method, device,
                                     environment or device, f"{p.name}:{line_no}"))
        except (MleeError, ValueError) as exc:
            detail = exc.message if isinstance(exc, MleeError) else str(exc)
            raise UsageError(f"{p} line {line_no}: {detail}", "is this an nn-Meter/DeepEn2023 kernel CSV?") from None
    return _nonempty(points, p)


def load_points(path: str | Path, fmt: str = "auto", device: str | None = None, environment: str | None = None,
                energy_method: str = "power_integration", kind: str | None = None
                ) -> tuple[list[Point], list[str], list[dict]]:
    """Training points from any supported source.

    Returns:
        ``(points, notes, records)``: notes on what was left out; records of mlee profiles (else empty).

    Raises:
        UsageError: unknown format, a missing path, or a malformed file.
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise UsageError(f"unknown data format {fmt!r}", f"use --format {' or '.join(FORMATS)}")
    if fmt == "auto":
        fmt = "neuralpower" if p.suffix == ".txt" else "mlee"
        if p.suffix == ".csv" and p.is_file():
            head = (_lines(p) or [""])[0].lower()
            fmt = "mlee" if "time_s" in head.split(",") else "nn-meter"
    if fmt == "neuralpower":
        return read_neuralpower(p, device or "unknown", environment, energy_method, kind), [], []
    if fmt == "nn-meter":
        return read_nnmeter_csv(p, device or "unknown", environment, energy_method, kind), [], []
    if p.suffix == ".csv":
        return read_layer_csv(p), [], []
    records, notes = load_records(p)
    points, more = points_from_records(records)
    return points, notes + more, records
