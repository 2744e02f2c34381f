"""Per-layer breakdown of a transformers model (``--per-layer``): layers timed one by one, grouped in categories."""

from __future__ import annotations

from typing import Any


def per_layer(m: Any, hf: Any, batches: list[dict]) -> dict:
    """The ``per_layer`` block: one forward pass per batch timed layer by layer in an unmeasured window."""
    from mlee.runners.layers import profile_layers

    first_input = {"text": "input_ids", "image": "pixel_values", "audio": "input_values"}
    key = next(k for k in first_input.values() if k in batches[0])
    breakdown = profile_layers(hf.model, [(b[key],) for b in batches], m, "per-layer", device=str(hf.device))
    breakdown["categories"] = layer_categories(breakdown["layers"])
    return breakdown


#: Layer categories by the type or name of a module (first match wins), as the breakdown groups them.
_CATEGORIES = (("attention", ("attention", "attn", "selfattn")), ("embedding", ("embedding", "wte", "wpe")),
               ("norm", ("norm", "ln_")), ("mlp", ("mlp", "intermediate", "feedforward", "feed_forward", "ffn")),
               ("head", ("lm_head", "classifier", "pooler", "score", "head")))


def _category(layer: dict) -> str | None:
    if layer.get("name") == "(model)":
        return None  # the whole model's own work (its type names the head it carries: GPT2LMHeadModel)
    text = f"{layer.get('type', '')} {str(layer.get('name', '')).rsplit('.', 1)[-1]}".lower()
    for category, needles in _CATEGORIES:
        if any(n in text for n in needles):
            return category
    return None


def layer_categories(layers: list[dict]) -> dict:
    """Energy and time of the layers summed per category: attention, mlp, embedding, norm, head, other.

    A layer falls in its own category, else its nearest named ancestor's (a Linear inside an attention block is
    attention), else ``other``. The layers' figures are their own (children excluded), so nothing counts twice.
    Units: ``energy_j`` joules, ``time_s`` seconds.
    """
    own = {str(layer.get("name")): _category(layer) for layer in layers}
    totals: dict[str, dict] = {}
    for layer in layers:
        name = str(layer.get("name"))
        parts = name.split(".")
        category = next((own.get(".".join(parts[:i])) for i in range(len(parts), 0, -1)
                         if own.get(".".join(parts[:i]))), None) or "other"
        slot = totals.setdefault(category, {"energy_j": 0.0, "time_s": 0.0, "layers": 0})
        slot["energy_j"] += float(layer.get("energy_j") or 0.0)
        slot["time_s"] += float(layer.get("time_s") or 0.0)
        slot["layers"] += 1
    return dict(sorted(totals.items()))
