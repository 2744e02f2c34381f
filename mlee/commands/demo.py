"""CLI: `mlee demo` - the main job end to end on embedded data: train, measure inference, merge, rate, label, report.

Each step is the ordinary command, run in this process with the same options a user would type, so the demo
shows exactly what the commands print and writes what they write. With ``--dataset digits`` (the default) every
model is trained under measurement on scikit-learn's digits (`mlee train --save-weights`), then its inference is
measured from that checkpoint on the held-out split (`mlee infer --weights`): every rated figure of both tasks is
measured, accuracy included. ``--dataset synthetic`` measures inference of randomly initialised models on
ImageNet-shaped random inputs, as the demo did before (energy and time only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

#: Synthetic demo: the reference of the default spec (`mlee`: ResNet50) plus models that spread over the scale.
DEMO_MODELS = ("ResNet50", "MobileNetV3Small", "EfficientNetB0", "VGG16")
#: Digits demo: the reference (C), a model far cheaper to train and run on 32 px (A) and one about twice as dear
#: (D), each above 0.7 top-1 after two epochs. Measured alternatives: MobileNetV3Small stays at chance there,
#: EfficientNetB0 reaches 0.5 and adds half a minute; VGG16 or ResNet152 would take minutes more.
DIGITS_MODELS = ("ResNet50", "MobileNetV2", "ResNet101")
DATASETS = ("digits", "synthetic")


@dataclass(frozen=True)
class DemoPlan:
    """What one `mlee demo` runs: the models and every option of the commands it calls.

    Units: ``input_size`` pixels; ``lr`` learning rate.
    """

    dataset: str
    models: tuple[str, ...]
    spec: str
    backend: str
    runs: Path
    weights: Path
    database: Path
    labels: Path
    report: Path
    batch_size: int
    n_batches: Optional[int]
    repeat: int
    threads: Optional[int]
    epochs: int
    lr: float
    input_size: Optional[int]
    train_samples: Optional[int]

    def weights_path(self, model: str) -> Path:
        """The checkpoint `mlee train` writes for ``model`` and `mlee infer --weights` reads.

        TensorFlow saves the whole model (``.keras``), so that inference gets the 10-class head it was trained with.
        """
        suffix = ".keras" if self.backend == "tensorflow" else ".pt"
        return self.weights / (re.sub(r"[^A-Za-z0-9_.-]+", "-", model) + suffix)

    def steps(self) -> list[tuple[str, list[str]]]:
        """(title, mlee arguments) of every step, in order."""
        common = ["--backend", self.backend, "-o", str(self.runs)]
        if self.threads:
            common += ["--threads", str(self.threads)]
        if self.input_size:
            common += ["--input-size", str(self.input_size)]
        steps: list[tuple[str, list[str]]] = []
        if self.dataset == "synthetic":
            n_batches = self.n_batches if self.n_batches is not None else 4
            steps.append(("measure inference", ["infer", "-m", ",".join(self.models), "--dataset", "synthetic",
                                                "--batch-size", str(self.batch_size), "--n-batches", str(n_batches),
                                                "--repeat", str(self.repeat), "--warmup-batches", "1", *common]))
        else:
            for model in self.models:
                train = ["train", "-m", model, "--dataset", "digits", "--epochs", str(self.epochs),
                         "--optimizer", "adam", "--lr", f"{self.lr:g}", "--batch-size", str(self.batch_size),
                         "--warmup-batches", "1", "--save-weights", str(self.weights_path(model)), *common]
                if self.train_samples:
                    train += ["--n-samples", str(self.train_samples)]
                steps.append((f"train {model}", train))
            for model in self.models:
                infer = ["infer", "-m", model, "--weights", str(self.weights_path(model)), "--dataset", "digits",
                         "--batch-size", str(self.batch_size), "--repeat", str(self.repeat),
                         "--warmup-batches", "1", *common]
                if self.n_batches is not None:
                    infer += ["--n-batches", str(self.n_batches)]
                steps.append((f"measure inference of {model}", infer))
        steps += [
            ("merge", ["merge", str(self.runs), "-o", str(self.database), "--update", "--include-traces"]),
            ("rate", ["rate", str(self.database), "--spec", self.spec]),
            ("label", ["label", str(self.database), "--all", "--spec", self.spec, "-o", str(self.labels)]),
            ("report", ["report", str(self.database), "--spec", self.spec, "-o", str(self.report)]),
        ]
        return steps


def rating_summary(rated: list[dict[str, Any]], dataset: str) -> list[str]:
    """One line per task: every model of ``dataset`` with its compound rating, best first.

    A rating built on estimated energy is marked, so the summary never passes an estimate off as measured.
    """
    lines = []
    for task in sorted({r["task"] for r in rated if r.get("dataset") == dataset}):
        rows = sorted((r for r in rated if r["task"] == task and r.get("dataset") == dataset),
                      key=lambda r: (r["compound"], r["model"]))
        estimated = any(r.get("estimated") for r in rows)
        text = ", ".join(f"{r['model']} {r['compound']}" for r in rows)
        lines.append(f"{task} ({dataset}): {text}" + (" (energy estimated)" if estimated else ""))
    return lines


def _plan(dataset: str, models: Optional[str], spec: str, backend: str, output_dir: Path, labels_dir: Path,
          numbers: dict[str, Any]) -> DemoPlan:
    """Check the options (nothing is written before this passes) and build the plan.

    Raises:
        UsageError: unknown dataset, a number that is not positive, or a model list without the spec's reference.
    """
    from mlee.errors import UsageError
    from mlee.rating import load_spec

    if dataset not in DATASETS:
        raise UsageError(f"unknown demo dataset {dataset!r}", f"use --dataset {' or --dataset '.join(DATASETS)}")
    if dataset == "digits" and backend == "onnx":
        raise UsageError("the digits demo trains its models, and the onnx backend runs inference only",
                         "use --backend pytorch or tensorflow, or --dataset synthetic --backend onnx")
    default = DIGITS_MODELS if dataset == "digits" else DEMO_MODELS
    chosen = [m.strip() for m in (models or ",".join(default)).split(",") if m.strip()]
    loaded = load_spec(spec)
    tasks = ("inference",) if dataset == "synthetic" else ("inference", "training")
    for task in tasks:
        reference = loaded.task(task).reference if task in loaded.task_names else None
        if reference and reference.lower() not in (m.lower() for m in chosen):
            raise UsageError(f"the models {', '.join(chosen) or '(none)'} lack the reference {reference} of spec "
                             f"{spec}", f"add it: --models {reference},{','.join(chosen)}")
    for flag, key in (("--batch-size", "batch_size"), ("--n-batches", "n_batches"), ("--repeat", "repeat"),
                      ("--epochs", "epochs"), ("--train-samples", "train_samples"), ("--threads", "threads")):
        if numbers[key] is not None and numbers[key] <= 0:
            raise UsageError(f"{flag} {numbers[key]} must be a positive whole number", f"use {flag} 1 or more")
    if not numbers["lr"] > 0:
        raise UsageError(f"--lr {numbers['lr']} is not a positive number", "use e.g. --lr 0.001")
    digits = dataset == "digits"
    batch_size = numbers["batch_size"] or (32 if digits else 8)
    input_size = numbers["input_size"] or (32 if digits else None)
    return DemoPlan(dataset, tuple(chosen), spec, backend, output_dir / "runs", output_dir / "weights",
                    output_dir / "merged.json", labels_dir, labels_dir / "report.html", batch_size,
                    numbers["n_batches"], numbers["repeat"], numbers["threads"], numbers["epochs"], numbers["lr"],
                    input_size, numbers["train_samples"])


def _run(plan: DemoPlan, command: Any) -> list[str]:
    """Run every step of ``plan`` through ``command`` (the root `mlee` command the demo was called from, so that
    commands never import the CLI); the rating summary lines of the result.

    Raises:
        MleeError: a step failed (what it and earlier steps wrote is kept).
    """
    from mlee.console import message
    from mlee.errors import MleeError
    from mlee.rating import rate_database
    from mlee.results import load_database

    if plan.dataset == "digits":
        plan.weights.mkdir(parents=True, exist_ok=True)
    steps = plan.steps()
    for i, (title, args) in enumerate(steps, 1):
        message(f"[{i}/{len(steps)}] {title}: mlee {' '.join(args)}")
        code = command.main(args=args, prog_name="mlee", standalone_mode=False)
        if code:
            raise MleeError(f"demo step {title!r} failed with exit code {code}; what it wrote is kept",
                            f"see the message above, then rerun `mlee {' '.join(args)}`")
    return rating_summary(rate_database(load_database(plan.database), plan.spec), plan.dataset)


def demo(
    ctx: typer.Context,
    dataset: str = typer.Option("digits", "--dataset",
                                help="digits: train and measure on scikit-learn's digits (real accuracy); "
                                     "synthetic: inference only, random weights and ImageNet-shaped inputs."),
    output_dir: Path = typer.Option(Path("results/demo"), "--output-dir", "-o",
                                    help="Experiment folders go to OUTPUT_DIR/runs, checkpoints to "
                                         "OUTPUT_DIR/weights, the database to OUTPUT_DIR/merged.json."),
    labels_dir: Path = typer.Option(Path("labels/demo"), "--labels-dir",
                                    help="Where the labels and the HTML report go."),
    models: Optional[str] = typer.Option(None, "--models", "-m", show_default=False,
                                         help=f"Comma-separated models; must include the spec's reference "
                                              f"(default: digits {','.join(DIGITS_MODELS)}; synthetic "
                                              f"{','.join(DEMO_MODELS)})."),
    spec: str = typer.Option("mlee", "--spec", "-s", help="Rating spec: preset name or spec file."),
    backend: str = typer.Option("pytorch", "--backend", "-b",
                                help="pytorch or tensorflow (digits trains); synthetic also onnx."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", show_default=False,
                                             help="Samples per batch (default: digits 32, synthetic 8)."),
    n_batches: Optional[int] = typer.Option(None, "--n-batches", show_default=False,
                                            help="Measured inference batches per repeat (default: digits the "
                                                 "whole held-out split, synthetic 4)."),
    repeat: int = typer.Option(2, "--repeat", help="Measured inference windows per model (mean, std and CV)."),
    epochs: int = typer.Option(2, "--epochs", help="digits: training epochs per model."),
    lr: float = typer.Option(0.001, "--lr", help="digits: learning rate of adam."),
    input_size: Optional[int] = typer.Option(None, "--input-size", show_default=False,
                                             help="Input size in pixels (default: digits 32, synthetic "
                                                  "each model's own)."),
    train_samples: Optional[int] = typer.Option(None, "--train-samples", show_default=False,
                                                help="digits: training samples per epoch, and held-out "
                                                     "samples evaluated after each (default: all); for quick "
                                                     "runs."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads of the framework (default: all)."),
) -> int:
    """Train, measure, merge, rate and label a few models on data shipped with scikit-learn, then write a report.

    Each model is trained under measurement on the digits (8x8 images upscaled to 32 px), its inference is
    measured from the trained checkpoint on the held-out split, and both tasks are rated against the
    reference trained in the same run: energy (a labelled estimate where no counter is readable), time,
    accuracy, parameters and FLOPs are all measured. No downloads. Running it again adds repeats to the
    same database. `--dataset synthetic` measures inference only, on random inputs.
    """
    from mlee.console import message

    numbers = {"batch_size": batch_size, "n_batches": n_batches, "repeat": repeat, "threads": threads,
               "epochs": epochs, "lr": lr, "input_size": input_size, "train_samples": train_samples}
    plan = _plan(dataset, models, spec, backend, output_dir, labels_dir, numbers)
    summary = _run(plan, ctx.find_root().command)
    message(f"labels: {plan.labels.resolve()}")
    message(f"report: {plan.report.resolve()}")
    message(f"database: {plan.database.resolve()}")
    for line in summary:
        message(line)
    return 0
