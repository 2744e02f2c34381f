"""Predicting a decomposed model: per-layer and total runtime and energy, without running it.

Each kernel's runtime comes from its kind's runtime model; its energy is that runtime times the kind's
power model. A convolution without its batch norm or ReLU (VGG's conv-relu, ResNet's conv-bn before
the residual addition) is predicted as the fused kernel less the missing parts, each predicted at the
output's size; it is never predicted below half the fused kernel, since the convolution itself
dominates. A prediction outside the profiled range is flagged ``extrapolated``; a polynomial that
turns non-positive there is evaluated at the nearest profiled point instead and flagged ``clipped``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlee.predict.decompose import Decomposition, Layer
from mlee.predict.kernels import KernelConfig
from mlee.predict.predictor import KindModel, Predictor, positive

#: A partial convolution is predicted at no less than this fraction of the fused kernel.
MIN_VARIANT_FRACTION = 0.5


@dataclass(frozen=True)
class LayerPrediction:
    """Prediction for one kernel of a model.

    ``status``: ``ok``, ``extrapolated`` (features outside the profiled range), ``clipped`` (evaluated at
    the nearest profiled point), ``no model`` (the predictor has no model of this kind), ``no prediction``
    (the model is not positive even at the nearest profiled point), ``unsupported`` (no kernel covers
    the call).

    Units: ``time_s`` and ``energy_j`` per call on the whole batch; ``power_w`` watts.
    """

    name: str
    kind: str | None
    config: str | None
    variant: str
    approx: str
    status: str
    time_s: float | None
    power_w: float | None
    energy_j: float | None
    flops: float | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "config": self.config, "variant": self.variant,
                "approx": self.approx, "status": self.status, "time_s": self.time_s, "power_w": self.power_w,
                "energy_j": self.energy_j, "flops": self.flops}


@dataclass(frozen=True)
class ModelPrediction:
    """A whole model's prediction.

    ``complete`` is False when a layer could not be predicted; totals then cover the predicted layers
    only and say so. ``energy_basis`` is the method of the measurements the predictor was fit on.

    Units: ``time_s``/``energy_j`` per forward pass of the batch; ``per_sample`` time in ms, energy in J.
    """

    model: str
    batch: int
    layers: tuple[LayerPrediction, ...]
    time_s: float
    energy_j: float | None
    complete: bool
    energy_basis: str | None
    macs: float
    clock: str = "wall"

    @property
    def per_sample_time_ms(self) -> float:
        return self.time_s * 1e3 / self.batch

    @property
    def per_sample_energy_j(self) -> float | None:
        return self.energy_j / self.batch if self.energy_j is not None else None

    @property
    def flops_coverage(self) -> float | None:
        """Share of the model's known FLOPs in layers with a prediction (None when no FLOPs are known)."""
        known = [(lp.flops, lp.time_s is not None) for lp in self.layers if lp.flops is not None]
        total = sum(f for f, _ in known)
        return sum(f for f, ok in known if ok) / total if total > 0 else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lp in self.layers:
            out[lp.status] = out.get(lp.status, 0) + 1
        return dict(sorted(out.items()))

    def to_json(self) -> dict:
        return {"model": self.model, "batch_size": self.batch, "complete": self.complete,
                "status_counts": self.counts(), "macs": self.macs, "flops_coverage": self.flops_coverage,
                "per_batch": {"time_s": self.time_s, "energy_j": self.energy_j},
                "per_sample": {"time_ms": self.per_sample_time_ms, "energy_j": self.per_sample_energy_j,
                               "energy_method": "predicted", "energy_basis": self.energy_basis,
                               "clock": self.clock},
                "layers": [lp.to_json() for lp in self.layers]}


def _eval(km: KindModel, cfg: KernelConfig) -> tuple[float | None, str]:
    status = "ok" if km.in_range(cfg) else "extrapolated"
    value = km.predict_time(cfg)
    if not positive(value):
        value = km.predict_time(cfg, clip=True)
        status = "clipped"
    return (value if positive(value) else None), status


def _power(km: KindModel, cfg: KernelConfig) -> float | None:
    return km.power_for(cfg)


def _elementwise_at_output(kind: str, cfg: KernelConfig) -> KernelConfig:
    n, c, h, w = cfg.output_shape()
    return KernelConfig.make(kind, batch=n, c=c, h=h, w=w)


def predict_layer(predictor: Predictor, layer: Layer) -> LayerPrediction:
    """Predict one kernel (see the module docstring for variants and statuses)."""
    base = dict(name=layer.name, kind=layer.kind, config=layer.config.key() if layer.config else None,
                variant=layer.variant, approx=layer.approx, flops=layer.total_flops)
    if layer.kind is None or layer.config is None:
        return LayerPrediction(**base, status="unsupported", time_s=None, power_w=None, energy_j=None)
    km = predictor.kinds.get(layer.kind)
    if km is None:
        return LayerPrediction(**base, status="no model", time_s=None, power_w=None, energy_j=None)
    time_s, status = _eval(km, layer.config)
    if time_s is not None and layer.variant:
        less = 0.0
        if layer.has_bn:  # conv-bn: the fused kernel less a ReLU
            parts = [("relu", 1.0)]
        elif layer.has_relu:  # conv-relu: less a batch norm, i.e. bn-relu less relu
            parts = [("bn-relu", 1.0), ("relu", -1.0)]
        else:  # a bare conv: less bn-relu
            parts = [("bn-relu", 1.0)]
        for kind, sign in parts:
            part = predictor.kinds.get(kind)
            if part is None:
                base["approx"] = "; ".join(filter(None, [layer.approx, f"no {kind} model to remove"]))
                less = 0.0
                break
            value, _ = _eval(part, _elementwise_at_output(kind, layer.config))
            less += sign * (value or 0.0)
        time_s = max(time_s - less, MIN_VARIANT_FRACTION * time_s)
    power_w = _power(km, layer.config) if time_s is not None else None
    energy_j = power_w * time_s if power_w is not None and time_s is not None else None
    if time_s is None:
        status = "no prediction"
        base["approx"] = "; ".join(filter(None, [base["approx"], "the runtime model is not positive here, even at "
                                                 "the edge of the profiled range"]))
    return LayerPrediction(**base, status=status, time_s=time_s, power_w=power_w, energy_j=energy_j)


def predict_model(predictor: Predictor, decomposition: Decomposition) -> ModelPrediction:
    """Predict every kernel of ``decomposition`` and sum them."""
    layers = tuple(predict_layer(predictor, layer) for layer in decomposition.layers)
    time_s = sum(lp.time_s for lp in layers if lp.time_s is not None)
    complete = all(lp.time_s is not None for lp in layers)
    energies = [lp.energy_j for lp in layers if lp.time_s is not None]
    energy_j = sum(energies) if energies and all(e is not None for e in energies) else None  # type: ignore[misc]
    return ModelPrediction(decomposition.model, decomposition.batch, layers, time_s, energy_j, complete,
                           predictor.basis.get("energy_method"), decomposition.macs,
                           predictor.basis.get("clock") or "wall")
