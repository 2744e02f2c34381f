"""CLI: `mlee demo` - the main job end to end on embedded defaults: measure, merge, rate, label, report.

Each step is the ordinary command, run in this process with the same options a user would type, so the demo
shows exactly what the commands print and writes what they write.
"""

from __future__ import annotations

from pathlib import Path

import typer

#: The reference of the default spec (`mlee`: ResNet50) plus models that spread over the rating scale.
DEMO_MODELS = ("ResNet50", "MobileNetV3Small", "EfficientNetB0", "VGG16")


def register(app: typer.Typer) -> None:
    """Register `mlee demo`."""

    @app.command("demo")
    def demo(
        output_dir: Path = typer.Option(Path("results/demo"), "--output-dir", "-o",
                                        help="Experiment folders go to OUTPUT_DIR/runs, the database to "
                                             "OUTPUT_DIR/merged.json."),
        labels_dir: Path = typer.Option(Path("labels/demo"), "--labels-dir",
                                        help="Where the labels and the HTML report go."),
        models: str = typer.Option(",".join(DEMO_MODELS), "--models", "-m",
                                   help="Comma-separated models; must include the spec's reference model."),
        spec: str = typer.Option("mlee", "--spec", "-s", help="Rating spec: preset name or spec file."),
        backend: str = typer.Option("pytorch", "--backend", "-b", help="pytorch, tensorflow or onnx."),
        batch_size: int = typer.Option(8, "--batch-size", help="Samples per batch."),
        n_batches: int = typer.Option(4, "--n-batches", help="Measured batches per repeat."),
        repeat: int = typer.Option(2, "--repeat", help="Measured windows per model (mean, std and CV)."),
        threads: int = typer.Option(None, "--threads", help="CPU threads of the framework (default: all)."),
    ) -> int:
        """Measure, merge, rate and label a few models on synthetic inputs (no downloads), then write a report.

        Inputs are seeded random ImageNet-shaped tensors and weights are randomly initialised: energy and time
        are real measurements (or labelled estimates where RAPL is not readable); accuracy is not measured.
        Running it again adds repeats to the same database.
        """
        from mlee.cli import app as root
        from mlee.console import message
        from mlee.errors import MleeError, UsageError
        from mlee.rating import load_spec

        chosen = [m.strip() for m in models.split(",") if m.strip()]
        loaded = load_spec(spec)
        reference = loaded.task("inference").reference if "inference" in loaded.task_names else None
        if reference and reference.lower() not in (m.lower() for m in chosen):
            raise UsageError(f"the models {', '.join(chosen) or '(none)'} lack the reference {reference} of spec "
                             f"{spec}", f"add it: --models {reference},{','.join(chosen)}")
        runs = output_dir / "runs"
        database = output_dir / "merged.json"
        report = labels_dir / "report.html"
        infer = ["infer", "-m", ",".join(chosen), "--backend", backend, "--dataset", "synthetic",
                 "--batch-size", str(batch_size), "--n-batches", str(n_batches), "--repeat", str(repeat),
                 "--warmup-batches", "1", "-o", str(runs)]
        if threads:
            infer += ["--threads", str(threads)]
        steps = [
            ("measure", infer),
            ("merge", ["merge", str(runs), "-o", str(database), "--update", "--include-traces"]),
            ("rate", ["rate", str(database), "--spec", spec]),
            ("label", ["label", str(database), "--all", "--spec", spec, "-o", str(labels_dir)]),
            ("report", ["report", str(database), "--spec", spec, "-o", str(report)]),
        ]
        command = typer.main.get_command(root)
        for i, (title, args) in enumerate(steps, 1):
            message(f"[{i}/{len(steps)}] {title}: mlee {' '.join(args)}")
            code = command.main(args=args, prog_name="mlee", standalone_mode=False)
            if code:
                raise MleeError(f"demo step {title!r} failed with exit code {code}; what it wrote is kept",
                                f"see the message above, then rerun `mlee {' '.join(args)}`")
        message(f"labels: {labels_dir.resolve()}")
        message(f"report: {report.resolve()}")
        message(f"database: {database.resolve()}")
        return 0
