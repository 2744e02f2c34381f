"""``--backend transformers``: Hugging Face models from a local ``save_pretrained`` folder or a hub id.

Text generation runs each repeat as two measured windows, ``prefill-<r>`` (the prompts through the model, the
first new token) and ``decode-<r>`` (the other ``max_new_tokens - 1`` tokens, one step at a time from the KV
cache), so the two phases have their own energy, time and tokens. The other tasks run one forward pass per
batch in ``repeat-<r>``. ``per_sample`` holds the per-query figures, so merge and rating treat a query as a
sample; the ``transformers`` block holds the per-token figures, the phases and the latency percentiles.
transformers and torch are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import MleeError, UsageError
from mlee.runners import hf_figures, hf_inputs, hf_seq2seq, stats
from mlee.runners.engine import check_reachable, parse_device

DTYPES = ("float32", "float16", "bfloat16")
#: Suffixes of ``config.architectures`` and the task they imply when ``--task`` is not given.
_ARCH_TASKS = (("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"),
               ("ForSequenceClassification", "text-classification"),
               ("ForImageClassification", "image-classification"), ("ForCTC", "automatic-speech-recognition"),
               ("WhisperForConditionalGeneration", "automatic-speech-recognition"))
_AUTO_CLASSES = {"text-generation": "AutoModelForCausalLM", "text-classification": "AutoModelForSequenceClassification",
                 "image-classification": "AutoModelForImageClassification",
                 "automatic-speech-recognition": "AutoModelForCTC"}
HUB_HOST = "huggingface.co"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` asks for no network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_model(model: str) -> str:
    """A local model folder (with config.json) as given, or a hub id when the hub may be used.

    Raises:
        UsageError: a path that is not a model folder, or a hub id while offline.
    """
    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise UsageError(f"{model} is not a model folder (no config.json)",
                             fix="give a folder written by save_pretrained, or a hub id such as gpt2")
        return model
    if hub_offline():
        raise UsageError(f"{model} is not a local folder and the hub is offline (HF_HUB_OFFLINE=1)",
                         fix="give the path of a save_pretrained folder, or unset HF_HUB_OFFLINE")
    return model


def task_of(config: Any, asked: str | None) -> str:
    """``--task`` if given, else the task the config's architecture implies."""
    if asked:
        return asked
    for arch in getattr(config, "architectures", None) or []:
        for suffix, task in _ARCH_TASKS:
            if arch.endswith(suffix):
                return task
    raise UsageError("cannot tell the task from the model's config.architectures",
                     fix=f"pass --task ({', '.join(hf_inputs.TASK_INPUTS)})")


def _optional(loader: Any, source: str) -> Any:
    try:
        return loader.from_pretrained(source)
    except Exception:  # noqa: BLE001 - a folder without a tokenizer/processor is normal; inputs then say so
        return None


@dataclass
class HfModel:
    """A loaded model with its helpers."""

    model: Any
    task: str
    tokenizer: Any
    processor: Any
    device: Any
    dtype: Any
    source: str

    @property
    def pad_id(self) -> int:
        """The id padding uses: the tokenizer's pad, else EOS, else the config's, else 0."""
        for owner, attr in ((self.tokenizer, "pad_token_id"), (self.tokenizer, "eos_token_id"),
                            (self.model.config, "pad_token_id"), (self.model.config, "eos_token_id")):
            value = getattr(owner, attr, None) if owner is not None else None
            if isinstance(value, int):
                return value
        return 0


def load_model(source: str, task: str | None, dtype: str, device: str, threads: int | None, seed: int) -> HfModel:
    """Load config, model, tokenizer and processor from ``source`` onto ``device``.

    Raises:
        MleeError: transformers missing, the hub unreachable, or a model the task cannot use.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MleeError("the transformers backend needs transformers and torch",
                        fix="pip install 'mlee[transformers]'") from exc
    if not Path(source).expanduser().exists():
        check_reachable(HUB_HOST)
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars would bury mlee's own lines
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config = transformers.AutoConfig.from_pretrained(source)
    task = task_of(config, task)
    kind, index = parse_device(device)
    where = torch.device("cpu" if kind == "cpu" else f"cuda:{index or 0}")
    torch_dtype = getattr(torch, dtype)
    auto = _AUTO_CLASSES[task] if not hf_seq2seq.is_seq2seq(config) else "AutoModelForSpeechSeq2Seq"  # Whisper
    model = getattr(transformers, auto).from_pretrained(source, dtype=torch_dtype).to(where).eval()
    tokenizer = _optional(transformers.AutoTokenizer, source) if task.startswith("text") else None
    processor = None
    if task == "image-classification":
        processor = _optional(transformers.AutoImageProcessor, source)
    elif task == "automatic-speech-recognition":
        processor = _optional(transformers.AutoFeatureExtractor, source)
    return HfModel(model, task, tokenizer, processor, where, torch_dtype, source)


def make_queries(hf: HfModel, options: Any, n: int) -> hf_inputs.Queries:
    """The run's queries: from ``--data-path`` or synthetic (``n`` of them)."""
    kind = hf_inputs.TASK_INPUTS[hf.task]
    config = hf.model.config
    path = Path(options.data_path) if options.data_path is not None else None
    if kind == "text":
        if path is not None:
            return hf_inputs.local_text(path, hf.tokenizer, options.n_samples, options.input_tokens)
        return hf_inputs.synthetic_text(n, options.input_tokens, config.vocab_size, options.seed)
    if kind == "image":
        if path is not None:
            return hf_inputs.local_images(path, hf.processor, options.n_samples)
        return hf_inputs.synthetic_images(n, getattr(config, "num_channels", 3), config.image_size, options.seed)
    rate = int(getattr(hf.processor, "sampling_rate", 0) or hf_inputs.DEFAULT_SAMPLING_RATE_HZ)
    if path is not None:
        return hf_inputs.local_audio(path, hf.processor, options.n_samples, rate)
    return hf_inputs.synthetic_audio(n, rate, options.seed)


def make_batches(hf: HfModel, queries: hf_inputs.Queries, batch_size: int) -> list[dict]:
    """Model inputs on the device, one dict per batch, plus ``_tokens`` (input tokens without padding)."""
    import numpy as np
    import torch

    batches = []
    for start in range(0, queries.n, batch_size):
        part = queries.items[start:start + batch_size]
        if queries.kind == "text":
            ids, mask = hf_inputs.pad_text(part, hf.pad_id, left=hf.task == "text-generation")
            batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
            tokens = int(mask.sum())
        elif queries.kind == "image":
            batch = {"pixel_values": torch.from_numpy(np.stack(part)).to(hf.dtype)}
            tokens = 0
        elif hf_seq2seq.is_seq2seq(hf.model.config):
            batch = {"input_features": torch.from_numpy(hf_seq2seq.features(hf.processor, part)).to(hf.dtype)}
            tokens = 0
        else:
            values, _mask = hf_inputs.pad_audio(part)
            batch = {"input_values": torch.from_numpy(values).to(hf.dtype)}
            tokens = 0
        moved: dict = {k: v.to(hf.device) for k, v in batch.items()}
        moved["_tokens"] = tokens
        moved["_rows"] = len(part)
        batches.append(moved)
    return batches


def model_inputs(batch: dict) -> dict:
    """The tensors of ``batch`` the model takes (without mlee's ``_tokens`` and ``_rows`` counts)."""
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def synchronize(hf: HfModel) -> None:
    """Wait for queued device work (window edges)."""
    if hf.device.type == "cuda":
        import torch

        torch.cuda.synchronize(hf.device)


def forward(hf: HfModel, batches: list[dict], latencies: list[float]) -> None:
    """One forward pass per batch (classification, CTC); appends each batch's latency in seconds."""
    import torch

    with torch.inference_mode():
        for batch in batches:
            t0 = time.perf_counter()
            hf.model(**model_inputs(batch))
            synchronize(hf)
            latencies.append(time.perf_counter() - t0)


def prefill(hf: HfModel, batch: dict) -> tuple[Any, Any, Any, Any]:
    """The prompts of ``batch`` through the model: (first new tokens, cache, attention mask, next positions)."""
    import torch

    if hf_seq2seq.is_seq2seq(hf.model.config):
        return hf_seq2seq.prefill(hf.model, batch["input_features"])
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = hf.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions, use_cache=True)
        token = out.logits[:, -1, :].argmax(-1, keepdim=True)
    return token, _cache_of(out), mask, positions[:, -1:] + 1


def _cache_of(out: Any) -> Any:
    # transformers 5.x names the KV cache ``cache``; earlier releases ``past_key_values``.
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _cache_argument(model: Any) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def decode(hf: HfModel, state: tuple[Any, Any, Any, Any], steps: int) -> Any:
    """``steps`` greedy steps from the KV cache (EOS does not stop: every query makes the same number of tokens)."""
    import torch

    if hf_seq2seq.is_seq2seq(hf.model.config):
        return hf_seq2seq.decode(hf.model, state, steps, _cache_argument(hf.model))
    token, cache, mask, position = state
    tokens = [token]
    cache_arg = _cache_argument(hf.model)
    with torch.inference_mode():
        for _ in range(steps):
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            out = hf.model(input_ids=token, attention_mask=mask, position_ids=position, use_cache=True,
                           **{cache_arg: cache})
            cache, position = _cache_of(out), position + 1
            token = out.logits[:, -1, :].argmax(-1, keepdim=True)
            tokens.append(token)
    return torch.cat(tokens, dim=-1)


def generate_repeat(m: Any, hf: HfModel, batches: list[dict], r: int, max_new_tokens: int,
                    latencies: list[float]) -> tuple[dict, dict]:
    """One repeat of text generation as a prefill window and a decode window; returns both records."""
    n = sum(b["_rows"] for b in batches)
    states, started = [], []
    synchronize(hf)
    with m.window(f"prefill-{r}", measured=True, n_samples=n) as pw:
        for batch in batches:
            t0 = time.perf_counter()
            states.append(prefill(hf, batch))
            synchronize(hf)
            started.append(time.perf_counter() - t0)
    with m.window(f"decode-{r}", measured=True, n_samples=n) as dw:
        for state, t_prefill in zip(states, started):
            t0 = time.perf_counter()
            decode(hf, state, max_new_tokens - 1)
            synchronize(hf)
            latencies.append(t_prefill + time.perf_counter() - t0)
    return pw.record, dw.record


def model_info(hf: HfModel) -> dict:
    """The ``model_info`` block: parameters and weight bytes (FLOPs depend on the tokens: not claimed)."""
    params = sum(p.numel() for p in hf.model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in hf.model.parameters())
    return {"parameters": int(params), "flops": None, "macs": None, "weights_bytes": int(nbytes),
            "flops_counter": "none"}


def backend_info() -> dict:
    """The ``backend`` block: transformers' and torch's versions."""
    import torch
    import transformers

    return {"name": "transformers", "version": transformers.__version__, "torch": torch.__version__}


def infer(m: Any, model: str, options: Any, progress: Any = None) -> None:
    """The inference run of ``model`` inside the started session ``m``."""
    with m.window("build", measured=False):
        hf = load_model(check_model(model), options.hf_task, options.dtype, options.device, options.threads,
                        options.seed)
    m.add_results(backend=backend_info(), model_info=model_info(hf))
    with m.window("data", measured=False):
        queries = make_queries(hf, options, options.planned_samples() or options.batch_size)
        batches = make_batches(hf, queries, options.batch_size)
    generating = hf.task == "text-generation" or hf_seq2seq.is_seq2seq(hf.model.config)  # Whisper decodes text
    if generating and options.per_layer and hf.task != "text-generation":
        raise UsageError("--per-layer does not break sequence-to-sequence models (Whisper) down yet",
                         fix="leave out --per-layer")
    n = queries.n
    input_tokens = sum(b["_tokens"] for b in batches)
    output_tokens = n * options.max_new_tokens if generating else 0
    m.add_results(n_samples=n, dataset=f"{hf.task}:{'synthetic' if queries.synthetic else Path(queries.source).name}")
    warm = batches[:max(0, options.warmup_batches)]
    if warm:
        with m.window("warmup", measured=False, n_samples=sum(b["_rows"] for b in warm)):
            if generating:
                for b in warm:
                    decode(hf, prefill(hf, b), min(2, options.max_new_tokens - 1))
            else:
                forward(hf, warm, [])
            synchronize(hf)
    latencies: list[float] = []
    prefills, decodes, windows = [], [], []
    for r in range(options.repeat):
        if progress is not None:
            progress.phase(f"repeat {r + 1}/{options.repeat}", len(batches))
        if generating:
            p, d = generate_repeat(m, hf, batches, r, options.max_new_tokens, latencies)
            prefills.append(p)
            decodes.append(d)
            windows.append(hf_figures.add_windows([p, d], n))
        else:
            synchronize(hf)
            with m.window(f"repeat-{r}", measured=True, n_samples=n) as w:
                forward(hf, batches, latencies)
            windows.append(stats.WindowFigures(w.record["energy_j"], w.record["energy_method"],
                                               w.record["duration_s"], n))
    per_sample, repeats = stats.combine_repeats(windows)
    per_sample["valid"] = all(rec.get("valid", True) for rec in m.windows if rec["measured"])
    block = figures_block(hf, options, queries, windows, input_tokens, output_tokens, latencies)
    if generating:
        block["phases"] = {"prefill": hf_figures.phase_block(prefills, [input_tokens] * len(prefills)),
                           "decode": hf_figures.phase_block(decodes, [output_tokens - n] * len(decodes))}
    m.add_results(per_sample=per_sample, repeats=repeats, transformers=block)
    if options.per_layer:
        from mlee.runners.hf_layers import per_layer

        m.add_results(per_layer=per_layer(m, hf, batches))


def figures_block(hf: HfModel, options: Any, queries: hf_inputs.Queries, windows: list[stats.WindowFigures],
                  input_tokens: int, output_tokens: int, latencies: list[float]) -> dict:
    """The ``transformers`` block of results.json without the phases."""
    energies = [w.energy_j for w in windows]
    methods = [w.energy_method for w in windows]
    total_s = sum(w.duration_s for w in windows)
    tokens = output_tokens or input_tokens
    return {
        "task": hf.task, "source": hf.source, "architecture": (hf.model.config.architectures or [None])[0],
        "dtype": options.dtype, "batch_size": options.batch_size,
        "max_new_tokens": options.max_new_tokens if output_tokens else None,
        "inputs": {"synthetic": queries.synthetic, "source": queries.source, "kind": queries.kind, **queries.info},
        "queries": queries.n, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "per_query": hf_figures.per_unit(energies, methods, [queries.n] * len(windows)),
        "per_input_token": hf_figures.per_unit(energies, methods, [input_tokens] * len(windows)),
        "per_output_token": hf_figures.per_unit(energies, methods, [output_tokens] * len(windows)),
        "tokens_per_s": (tokens * len(windows) / total_s) if tokens and total_s > 0 else None,
        "latency": hf_figures.latency_block(latencies),
    }
