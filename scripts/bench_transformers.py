#!/usr/bin/env python3
"""Benchmark of `mlee infer --backend transformers`: tokens/s of a tiny GPT-2 against a plain `generate` loop.

Target (issue 19): the measured text generation of `mlee infer` (prefill and decode windows, power sources
open, the sampler running) keeps at least 97 % of the tokens per second of a plain greedy ``model.generate``
over the same prompts, the same batches, the same threads and the same number of new tokens.

Robust on a busy shared machine: the two sides run in pairs, back to back, their order alternating from round to
round (plain then mlee, mlee then plain) so that a slow stretch of the machine hits both alike; the first
``--warmup-rounds`` pairs are run and discarded (first-call allocations, caches); each pair gives one ratio, and
the verdict is the median of the per-round ratios (with their spread), not a ratio of medians. Both sides run in
this one process with the same ``torch`` thread count, which is checked after each side and printed.
The mlee side is a real run (`mlee.runners.modelrun.run_model`, the path the CLI takes); its tokens/s is
``output tokens / (prefill + decode time)`` from results.json.

The model is a random GPT-2 built from a config and saved under a temporary folder (no hub access). Power comes
from a powercap tree whose counters move in real time (``--no-fake-rapl`` auto-detects instead).

Usage: .venv/bin/python scripts/bench_transformers.py [--layers 4] [--width 256] [--batch-size 4]
       [--n-batches 8] [--input-tokens 32] [--max-new-tokens 32] [--rounds 7] [--warmup-rounds 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def paired_rounds(plain: Any, measured: Any, rounds: int, warmup: int, threads: int) -> list[tuple[float, float]]:
    """``(plain, mlee)`` tokens/s of each kept round; the sides alternate which goes first, warm-ups are dropped."""
    import torch

    kept = []
    for r in range(warmup + rounds):
        first, second = ("plain", "mlee") if r % 2 == 0 else ("mlee", "plain")
        got = {}
        for side in (first, second):
            got[side] = plain() if side == "plain" else measured()
            if torch.get_num_threads() != threads:
                raise SystemExit(f"{side} ran with {torch.get_num_threads()} threads, not {threads}")
        label = f"warm-up {r + 1}" if r < warmup else f"round {r - warmup + 1}"
        print(f"{label:>10} ({first} first): plain generate {got['plain']:8.1f} tokens/s   mlee infer "
              f"{got['mlee']:8.1f} tokens/s   ratio {got['mlee'] / got['plain']:.3f}", flush=True)
        if r >= warmup:
            kept.append((got["plain"], got["mlee"]))
    return kept


def verdict(pairs: list[tuple[float, float]], target: float = 0.97) -> dict[str, float | bool]:
    """Median of the per-round ratios (mlee / plain), their quartiles, and the medians of both sides."""
    ratios = sorted(m / p for p, m in pairs)
    q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) >= 2 else [ratios[0]] * 3
    median = statistics.median(ratios)
    return {"plain": statistics.median(p for p, _ in pairs), "mlee": statistics.median(m for _, m in pairs),
            "ratio": median, "q1": q[0], "q3": q[2], "min": ratios[0], "max": ratios[-1], "ok": median >= target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--n-batches", type=int, default=8)
    parser.add_argument("--input-tokens", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup-rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-fake-rapl", dest="fake_rapl", action="store_false")
    args = parser.parse_args()
    if args.rounds < 1 or args.warmup_rounds < 0 or args.threads < 1:
        parser.error("--rounds and --threads must be at least 1, --warmup-rounds at least 0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tree = None
        if args.fake_rapl:
            from test_runners_support import TickingRapl

            tree = TickingRapl(Path(tmp) / "powercap").__enter__()
            os.environ["MLEE_POWERCAP_ROOT"] = str(tree.root)
        folder = build(Path(tmp) / "gpt2", args.layers, args.width)
        try:
            pairs = paired_rounds(lambda: plain_generate(folder, args),
                                  lambda: mlee_run(folder, args, Path(tmp) / "out"),
                                  args.rounds, args.warmup_rounds, args.threads)
        finally:
            if tree is not None:
                tree.__exit__(None, None, None)
    v = verdict(pairs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ntokens/s (GPT-2 {args.layers} x {args.width}, batch {args.batch_size} x {args.n_batches}, "
          f"{args.input_tokens} + {args.max_new_tokens} tokens, {args.threads} thread(s) on both sides), "
          f"{args.rounds} paired rounds after {args.warmup_rounds} warm-up:")
    print(f"  plain generate   {v['plain']:10.1f} tokens/s (median)")
    print(f"  mlee infer       {v['mlee']:10.1f} tokens/s (median)")
    print(f"  ratio            {v['ratio']:10.3f}   median of per-round ratios; target >= 0.97: "
          f"{'met' if v['ok'] else 'NOT met'}")
    print(f"  spread           quartiles {v['q1']:.3f} - {v['q3']:.3f}, range {v['min']:.3f} - {v['max']:.3f}")
    print(f"  load average     {load:.2f} on {os.cpu_count()} CPUs (a busy machine widens the spread)")


if __name__ == "__main__":
    main()
