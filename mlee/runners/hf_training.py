"""``mlee train --backend transformers``: sequence-classification fine-tuning, one measured window per epoch.

The data set is a JSONL file of ``{"text": ..., "label": <int>}`` lines, or seeded synthetic prompts with random
labels (recorded as synthetic). Besides the ``training`` block every model run has, the run records its training
tokens (without padding) and the energy per training token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.runners import hf_figures, hf_inputs, stats
from mlee.runners import transformers_backend as tb


def read_labelled(path: Path) -> tuple[list[str], list[int]]:
    """Texts and integer labels of a JSONL file (``text`` and ``label`` on every line).

    Raises:
        UsageError: a line without them, or no line at all.
    """
    if path.suffix != ".jsonl" or not path.is_file():
        raise UsageError(f"training data {path} is not a .jsonl file", fix='give lines of {"text": ..., "label": N}')
    texts, labels = [], []
    for number, row in hf_inputs.jsonl_rows(path):
        if not (isinstance(row, dict) and isinstance(row.get("text"), str) and isinstance(row.get("label"), int)):
            raise UsageError(f"{path}:{number} needs a text string and an integer label",
                             fix='write {"text": "...", "label": 0}')
        texts.append(row["text"])
        labels.append(row["label"])
    if not texts:
        raise UsageError(f"no example in {path}", fix='give lines of {"text": ..., "label": N}')
    return texts, labels


def _data(hf: tb.HfModel, options: Any) -> tuple[hf_inputs.Queries, list[int]]:
    import numpy as np

    n_labels = int(hf.model.config.num_labels)
    if options.data_path is None:
        n = options.planned_samples() or options.batch_size
        queries = hf_inputs.synthetic_text(n, options.input_tokens, hf.model.config.vocab_size, options.seed)
        labels = np.random.default_rng(options.seed + 1).integers(0, n_labels, size=n).tolist()
        return queries, labels
    texts, labels = read_labelled(Path(options.data_path))
    if max(labels) >= n_labels or min(labels) < 0:
        raise UsageError(f"labels run from {min(labels)} to {max(labels)}, the model has {n_labels} classes",
                         fix="save the model with num_labels covering every label")
    if hf.tokenizer is None:
        raise UsageError("the model folder has no tokenizer, so the texts cannot be tokenised",
                         fix="save the tokenizer beside the model (tokenizer.save_pretrained)")
    limit = options.n_samples or len(texts)
    items = [hf.tokenizer(t)["input_ids"][:options.input_tokens] or [hf.pad_id] for t in texts[:limit]]
    return hf_inputs.Queries("text", items, False, str(options.data_path), {}), labels[:limit]


def _optimizer(hf: tb.HfModel, name: str, lr: float) -> Any:
    import torch

    params = [p for p in hf.model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=0.9) if name == "sgd" else torch.optim.AdamW(params, lr=lr)


def _epoch(hf: tb.HfModel, batches: list[dict], order: list[int], optimizer: Any) -> tuple[float, float]:
    """One pass; returns mean loss (nats) and the fraction of training examples right."""
    losses, right, seen = [], 0, 0
    for i in order:
        batch = batches[i]
        out = hf.model(**tb.model_inputs(batch))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()) * batch["_rows"])
        right += int((out.logits.argmax(-1) == batch["labels"]).sum())
        seen += batch["_rows"]
    tb.synchronize(hf)
    return math.fsum(losses) / seen, right / seen


def train(m: Any, model: str, options: Any, progress: Any = None) -> None:
    """The fine-tuning run of ``model`` inside the started session ``m``."""
    import numpy as np
    import torch

    with m.window("build", measured=False):
        hf = tb.load_model(tb.check_model(model), "text-classification", options.dtype, options.device,
                           options.threads, options.seed)
        hf.model.train()
        optimizer = _optimizer(hf, options.optimizer, options.lr)
    m.add_results(backend=tb.backend_info(), model_info=tb.model_info(hf))
    with m.window("data", measured=False):
        queries, labels = _data(hf, options)
        batches = tb.make_batches(hf, queries, options.batch_size)
        for start, batch in zip(range(0, queries.n, options.batch_size), batches):
            batch["labels"] = torch.tensor(labels[start:start + options.batch_size], device=hf.device)
    n, tokens = queries.n, sum(b["_tokens"] for b in batches)
    source = "synthetic" if queries.synthetic else Path(queries.source).name
    m.add_results(n_samples=n, dataset=f"text-classification:{source}")
    if options.warmup_batches > 0:
        with m.window("warmup", measured=False):
            _epoch(hf, batches, list(range(min(options.warmup_batches, len(batches)))), optimizer)
    rng = np.random.default_rng(options.seed)
    records, history = [], []
    for epoch in range(1, options.epochs + 1):
        if progress is not None:
            progress.phase(f"epoch {epoch}/{options.epochs}", len(batches))
        with m.window(f"epoch-{epoch}", measured=True, n_samples=n) as w:
            loss, top1 = _epoch(hf, batches, rng.permutation(len(batches)).tolist(), optimizer)
        records.append(w.record)
        history.append({"epoch": epoch, "samples": n, "loss": loss, "top1": None if queries.synthetic else top1,
                        "energy_j": w.record["energy_j"].get("total"),
                        "energy_method": w.record["energy_method"].get("total"), "time_s": w.record["duration_s"]})
    m.add_results(**_figures(records, history, n, tokens, options))


def _figures(records: list[dict], history: list[dict], n: int, tokens: int, options: Any) -> dict:
    """``per_sample``, ``repeats``, ``metrics`` and ``training`` (with per-token figures) of the epochs."""
    total = hf_figures.add_windows(records, n * len(records))
    per_sample = stats.per_sample(total)
    per_sample["valid"] = all(r.get("valid", True) for r in records)
    _, repeats = stats.combine_repeats([stats.WindowFigures(r["energy_j"], r["energy_method"], r["duration_s"], n)
                                        for r in records])
    energy, method, epochs = total.energy_j["total"], total.energy_method["total"], len(records)
    per_token = hf_figures.per_unit([r["energy_j"] for r in records], [r["energy_method"] for r in records],
                                    [tokens] * epochs)
    training = {
        "epochs": epochs, "nominal_epochs": options.epochs, "epochs_run": float(epochs), "stopped_by": None,
        "optimizer": options.optimizer, "lr": options.lr, "train_samples_per_epoch": n, "history": history,
        "per_epoch": {"energy_j": energy / epochs if energy is not None else None, "energy_method": method,
                      "time_s": total.duration_s / epochs},
        "total": {"energy_j": energy, "energy_method": method, "time_s": total.duration_s, "samples": n * epochs},
        "tokens_per_epoch": tokens, "per_token": per_token,
    }
    # No held-out split here: the training accuracy stays in the history, never in ``metrics``.
    metrics = {"top1": None, "top5": None, "loss": None}
    return {"per_sample": per_sample, "repeats": repeats, "metrics": metrics, "training": training}
