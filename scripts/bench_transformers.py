#!/usr/bin/env python3
"""Benchmark of `mlee infer --backend transformers`: tokens/s of a tiny GPT-2 against a plain `generate` loop.

Target (issue 19): the measured text generation of `mlee infer` (prefill and decode windows, power sources
open, the sampler running) keeps at least 97 % of the tokens per second of a plain greedy ``model.generate``
over the same prompts, the same batches, the same threads and the same number of new tokens. Runs alternate
(plain, mlee, plain, mlee, ...) so that a busy shared machine slows both alike; the medians are compared.
The mlee side is a real run (`mlee.runners.modelrun.run_model`, the path the CLI takes); its tokens/s is
``output tokens / (prefill + decode time)`` from results.json.

The model is a random GPT-2 built from a config and saved under a temporary folder (no hub access). Power comes
from a powercap tree whose counters move in real time (``--no-fake-rapl`` auto-detects instead).

Usage: .venv/bin/python scripts/bench_transformers.py [--layers 4] [--width 256] [--batch-size 4]
       [--n-batches 4] [--input-tokens 32] [--max-new-tokens 32] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the ticking powercap tree the tests use


def build(folder: Path, layers: int, width: int) -> Path:
    """A random GPT-2 of ``layers`` blocks and ``width`` channels, saved with save_pretrained."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=5000, n_positions=1024, n_embd=width, n_layer=layers, n_head=max(1, width // 64),
                        bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def options(args: argparse.Namespace):
    from mlee.runners.options import RunOptions

    return RunOptions(backend="transformers", batch_size=args.batch_size, n_batches=args.n_batches,
                      threads=args.threads, warmup_batches=1, input_tokens=args.input_tokens,
                      max_new_tokens=args.max_new_tokens)


def plain_generate(folder: Path, args: argparse.Namespace) -> float:
    """Tokens/s of greedy ``generate`` over the prompts `mlee infer` makes (the same seed, the same batches)."""
    import torch

    from mlee.runners import transformers_backend as tb

    opts = options(args)
    hf = tb.load_model(str(folder), None, "float32", "cpu", args.threads, 0)
    batches = tb.make_batches(hf, tb.make_queries(hf, opts, opts.planned_samples()), args.batch_size)
    n = args.max_new_tokens
    with torch.inference_mode():
        b = batches[0]
        hf.model.generate(b["input_ids"], attention_mask=b["attention_mask"], do_sample=False, max_new_tokens=3,
                          min_new_tokens=3, pad_token_id=hf.pad_id)
        start = time.perf_counter()
        for b in batches:
            hf.model.generate(b["input_ids"], attention_mask=b["attention_mask"], do_sample=False,
                              max_new_tokens=n, min_new_tokens=n, pad_token_id=hf.pad_id)
        elapsed = time.perf_counter() - start
    return sum(b["_rows"] for b in batches) * n / elapsed


def mlee_run(folder: Path, args: argparse.Namespace, out: Path) -> float:
    """Tokens/s of the measured windows of a real `mlee infer --backend transformers` run."""
    from mlee.runners.modelrun import run_model

    outcome = run_model(str(folder), options(args), {"output_dir": out, "interval_s": 0.1})
    if outcome.error is not None:
        raise SystemExit(f"mlee run failed: {outcome.error}")
    return float(outcome.results["transformers"]["tokens_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--n-batches", type=int, default=4)
    parser.add_argument("--input-tokens", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-fake-rapl", dest="fake_rapl", action="store_false")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tree = None
        if args.fake_rapl:
            from test_runners_support import TickingRapl

            tree = TickingRapl(Path(tmp) / "powercap").__enter__()
            os.environ["MLEE_POWERCAP_ROOT"] = str(tree.root)
        folder = build(Path(tmp) / "gpt2", args.layers, args.width)
        plain, measured = [], []
        try:
            for r in range(args.rounds):
                plain.append(plain_generate(folder, args))
                measured.append(mlee_run(folder, args, Path(tmp) / "out"))
                print(f"round {r + 1}: plain generate {plain[-1]:8.1f} tokens/s   mlee infer {measured[-1]:8.1f} "
                      "tokens/s", flush=True)
        finally:
            if tree is not None:
                tree.__exit__(None, None, None)
    p, m = statistics.median(plain), statistics.median(measured)
    print(f"\ntokens/s (GPT-2 {args.layers} x {args.width}, batch {args.batch_size} x {args.n_batches}, "
          f"{args.input_tokens} + {args.max_new_tokens} tokens, {args.threads} threads), median of {args.rounds}:")
    print(f"  plain generate {p:10.1f} tokens/s")
    print(f"  mlee infer     {m:10.1f} tokens/s")
    print(f"  ratio          {m / p:10.3f}   (target >= 0.97)")
    print(f"  per-round ratios: {', '.join(f'{b / a:.3f}' for a, b in zip(plain, measured))}")


if __name__ == "__main__":
    main()
