#!/usr/bin/env python3
"""Benchmark of `mlee infer`: throughput against a plain loop, and the sampler's memory over a long run.

Targets (issue 3):
- throughput: `mlee infer` keeps at least 98 % of the throughput of a plain PyTorch loop over the same
  model, the same batches and the same threads. Runs alternate (plain, mlee, plain, mlee, ...) so
  that a busy shared machine slows both alike; the median of each side is compared. The mlee side
  is the measured window of a real run (`mlee.runners.modelrun.run_model`, the path the CLI takes):
  power sources open, background sampler running, progress callback off as on a pipe.
- memory: the peak RSS of a measured session stays flat over a long run (``--duration-s``, 600 for
  the issue's 10 minutes). The run samples RSS every second and prints the first, peak and last
  values and the growth rate fitted over the second half (after warm-up allocations).

Power comes from a powercap tree whose counters move in real time (``--fake-rapl``, default) so the
sampler reads files as it would on a RAPL machine; ``--no-fake-rapl`` auto-detects (codecarbon here).

Usage: .venv/bin/python scripts/bench_infer.py [--model MobileNetV3Small] [--batch-size 8]
       [--n-batches 20] [--rounds 5] [--threads 2] [--duration-s 600] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the ticking powercap tree the tests use


def plain_loop(model_name: str, batch_size: int, n_batches: int, input_size: int, threads: int,
               warmup: int) -> float:
    """Throughput (samples/s) of the simplest honest loop: the same torchvision model and batches."""
    import torch

    from mlee.runners import registry
    from mlee.runners.data import synthetic
    from mlee.runners.preprocess import batch_bounds, for_entry, normalize

    torch.set_num_threads(threads)
    spec = registry.lookup(model_name)
    prep = for_entry(spec.pytorch, input_size)
    torch.manual_seed(0)
    import torchvision

    model = torchvision.models.get_model(spec.pytorch.builder, weights=None).eval()
    data = synthetic(batch_size * n_batches, prep, seed=0)
    batches = [torch.from_numpy(normalize(data.pixels[a:b], prep)) for a, b in batch_bounds(data.n_samples,
                                                                                             batch_size)]
    with torch.inference_mode():
        for i in range(warmup):
            model(batches[i % len(batches)])
        start = time.perf_counter()
        outputs = [model(x) for x in batches]  # kept, as mlee keeps them for accuracy
        elapsed = time.perf_counter() - start
    del outputs
    return data.n_samples / elapsed


def mlee_run(model_name: str, batch_size: int, n_batches: int, input_size: int, threads: int, warmup: int,
             out: Path) -> float:
    """Throughput (samples/s) of the measured window of a real `mlee infer` run."""
    from mlee.runners.modelrun import run_model
    from mlee.runners.options import RunOptions

    options = RunOptions(backend="pytorch", batch_size=batch_size, n_batches=n_batches, input_size=input_size,
                         threads=threads, warmup_batches=warmup)
    outcome = run_model(model_name, options, {"output_dir": out, "interval_s": 0.1})
    if outcome.error is not None:
        raise SystemExit(f"mlee run failed: {outcome.error}")
    return float(outcome.results["per_sample"]["throughput_per_s"])


def throughput(args: argparse.Namespace, out: Path) -> None:
    plain, measured = [], []
    for r in range(args.rounds):
        plain.append(plain_loop(args.model, args.batch_size, args.n_batches, args.input_size, args.threads,
                                args.warmup))
        measured.append(mlee_run(args.model, args.batch_size, args.n_batches, args.input_size, args.threads,
                                 args.warmup, out))
        print(f"round {r + 1}: plain {plain[-1]:8.1f} samples/s   mlee infer {measured[-1]:8.1f} samples/s",
              flush=True)
    p, m = statistics.median(plain), statistics.median(measured)
    print(f"\nthroughput ({args.model}, batch {args.batch_size} x {args.n_batches}, {args.input_size} px, "
          f"{args.threads} threads), median of {args.rounds}:")
    print(f"  plain loop   {p:10.1f} samples/s")
    print(f"  mlee infer   {m:10.1f} samples/s")
    print(f"  ratio        {m / p:10.3f}   (target >= 0.98)")
    print(f"  per-round ratios: {', '.join(f'{b / a:.3f}' for a, b in zip(plain, measured))}")


def memory(args: argparse.Namespace, out: Path) -> None:
    """Peak RSS over a long measured session running inference continuously."""
    import psutil
    import torch

    from mlee.runners import registry
    from mlee.runners.engine import WeightsChoice
    from mlee.runners.torch_backend import make_engine
    from mlee.measure.session import Measurement

    spec = registry.lookup(args.model)
    engine = make_engine(spec.pytorch, WeightsChoice("none"), 1000, args.input_size, spec.name, "cpu",
                         args.threads, 0)
    x = engine.inputs(torch.zeros(args.batch_size, 3, args.input_size, args.input_size).numpy())
    proc = psutil.Process()
    rss: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            rss.append((time.monotonic() - t0, proc.memory_info().rss))
            stop.wait(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    with Measurement(f"bench-memory-{spec.name}", kind="infer", output_dir=out, interval_s=0.1) as m:
        watcher.start()
        deadline = time.monotonic() + args.duration_s
        batches = 0
        # One window over the whole loop: per-batch windows would grow the session's own records.
        with m.window("long-run", measured=True):
            while time.monotonic() < deadline:
                engine.infer([x])
                batches += 1
        stop.set()
        watcher.join()
    n_rows = sum(1 for _ in open(m.folder / "power" / "host.csv")) - 1
    mb = [v / 2**20 for _, v in rss]
    half = len(rss) // 2
    ts = [t for t, _ in rss[half:]]
    ys = mb[half:]
    slope = 0.0
    if len(ts) > 1:
        mt, my = statistics.fmean(ts), statistics.fmean(ys)
        slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / sum((t - mt) ** 2 for t in ts) * 60
    print(f"\nmemory over {args.duration_s:g} s ({batches} batches, {n_rows} host samples):")
    print(f"  RSS first {mb[0]:8.1f} MiB   peak {max(mb):8.1f} MiB   last {mb[-1]:8.1f} MiB")
    print(f"  growth over the second half: {slope:+.3f} MiB/min   (flat: |growth| well under 1 MiB/min)")
    sampler = m.result.results.get("sampler") or {}
    print(f"  sampler: {json.dumps(sampler)}")
    if sampler.get("thread_cpu_s") is not None:
        share = sampler["thread_cpu_s"] / m.result.duration_s
        print(f"  sampler thread CPU: {sampler['thread_cpu_s']:.3f} s over {m.result.duration_s:.1f} s "
              f"= {share:.2%} of one core (the most it can take from the model)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="MobileNetV3Small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n-batches", type=int, default=20)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--no-fake-rapl", dest="fake_rapl", action="store_false")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlee-bench-infer-") as tmp:
        out = Path(tmp) / "results"
        tree = None
        if args.fake_rapl:
            from test_runners_support import TickingRapl

            tree = TickingRapl(Path(tmp) / "powercap").__enter__()
            os.environ["MLEE_POWERCAP_ROOT"] = str(tree.root)
        try:
            if not args.skip_throughput:
                throughput(args, out)
            if not args.skip_memory:
                memory(args, out)
        finally:
            if tree is not None:
                tree.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
