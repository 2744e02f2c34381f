"""The options of a model run (``mlee infer`` / ``mlee train``), their validation and their config.json form."""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from mlee.errors import UsageError
from mlee.runners.data import DATASETS
from mlee.runners.engine import WeightsChoice, parse_device
from mlee.runners.registry import BACKENDS, ONNX_SOURCES

TASKS = ("inference", "training")
#: Largest --input-size accepted (one 3 x 4096 x 4096 image is 200 MB as float32). Units: pixels.
MAX_INPUT_SIZE = 4096
OPTIMIZERS = ("sgd", "adam")
#: Default number of batches when neither --n-batches nor --n-samples is given (synthetic and imagenet).
DEFAULT_N_BATCHES = 10
DEFAULT_WARMUP_BATCHES = 2
#: Backends whose layers `--per-layer` can time (onnxruntime runs the whole graph in C++: no layer edges).
PER_LAYER_BACKENDS = ("pytorch", "tensorflow", "transformers")
#: Backends of a model run: the registry's, plus Hugging Face models given by folder or hub id.
RUN_BACKENDS = (*BACKENDS, "transformers")
#: Longest synthetic prompt and most new tokens accepted by ``--input-tokens`` / ``--max-new-tokens``.
MAX_TOKENS = 1 << 16


@dataclass(frozen=True)
class RunOptions:
    """Everything a model run was asked for (recorded whole in config.json).

    Units: ``max_seconds`` seconds; ``lr`` learning rate (dimensionless); ``input_size`` pixels;
    ``max_corrupt_fraction`` fraction in [0, 1].
    """

    task: str = "inference"
    backend: str = "pytorch"
    onnx_source: str = "pytorch"
    weights: str = "none"
    device: str = "cpu"
    dataset: str | None = None
    data_path: Path | None = None
    batch_size: int = 32
    n_batches: int | None = None
    n_samples: int | None = None
    seed: int = 0
    warmup_batches: int = DEFAULT_WARMUP_BATCHES
    repeat: int = 1
    input_size: int | None = None
    threads: int | None = None
    max_corrupt_fraction: float = 0.01
    epochs: int = 1
    lr: float = 0.01
    optimizer: str = "sgd"
    max_seconds: float | None = None
    save_weights: Path | None = None
    per_layer: bool = False
    hf_task: str | None = None
    max_new_tokens: int = 16
    input_tokens: int = 32
    dtype: str = "float32"

    @property
    def dataset_name(self) -> str:
        """The dataset actually used: the option, else imagenet with --data-path, else the task's default."""
        if self.backend == "transformers":
            return "local" if self.data_path is not None else (self.dataset or "synthetic")
        if self.dataset:
            return self.dataset
        if self.data_path is not None:
            return "imagenet"
        return "synthetic" if self.task == "inference" else "digits"

    def validate(self) -> WeightsChoice:
        """Check every option; returns the parsed ``--weights``.

        Raises:
            UsageError: the first option that cannot be used as given, with the fix.
        """
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}", fix=f"one of {', '.join(TASKS)}")
        if self.backend == "transformers":
            self._validate_transformers()
        elif self.backend not in BACKENDS:
            close = difflib.get_close_matches(str(self.backend).lower(), RUN_BACKENDS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"unknown backend {self.backend!r}",
                             fix=f"{hint}choose one of: {', '.join(RUN_BACKENDS)}")
        elif (self.hf_task, self.max_new_tokens, self.input_tokens, self.dtype) != (None, 16, 32, "float32"):
            raise UsageError("--task, --max-new-tokens, --input-tokens and --dtype go with --backend transformers",
                             fix=f"drop them, or use --backend transformers instead of {self.backend}")
        if self.onnx_source not in ONNX_SOURCES:
            raise UsageError(f"unknown --onnx-source {self.onnx_source!r}", fix="use pytorch or tensorflow")
        if self.per_layer and self.task != "inference":
            raise UsageError("--per-layer breaks down inference only, not training",
                             fix="drop --per-layer, or use it with `mlee infer`")
        if self.per_layer and self.backend not in PER_LAYER_BACKENDS:
            raise UsageError(f"--per-layer cannot time layers inside the {self.backend} backend",
                             fix=f"use --backend {' or '.join(PER_LAYER_BACKENDS)} with --per-layer")
        if self.task == "training" and self.backend == "onnx":
            raise UsageError("the onnx backend runs inference only", fix="train with --backend pytorch or tensorflow")
        parse_device(self.device)
        if self.backend != "transformers" and self.dataset_name not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset_name!r}", fix=f"choose one of: {', '.join(DATASETS)}")
        if self.dataset_name == "imagenet" and self.data_path is None:
            raise UsageError("--dataset imagenet needs --data-path", fix="pass --data-path DIR")
        if self.data_path is not None and not Path(self.data_path).exists():
            raise UsageError(f"--data-path {self.data_path} does not exist",
                             fix="give the ImageNet folder (val/<class>/*.JPEG) or a tfds data_dir")
        if self.data_path is not None and self.dataset_name != "imagenet" and self.backend != "transformers":
            raise UsageError(f"--data-path does not go with --dataset {self.dataset_name}",
                             fix="drop --dataset (the path means imagenet) or drop --data-path")
        _positive("--batch-size", self.batch_size)
        if self.n_batches is not None and self.n_samples is not None:
            raise UsageError("--n-batches and --n-samples both given", fix="give one of them")
        if self.n_batches is not None:
            _positive("--n-batches", self.n_batches)
        if self.n_samples is not None:
            _positive("--n-samples", self.n_samples)
        if self.warmup_batches < 0:
            raise UsageError(f"--warmup-batches {self.warmup_batches} is negative", fix="use 0 or more")
        _positive("--repeat", self.repeat)
        if self.threads is not None:
            _positive("--threads", self.threads)
        if self.input_size is not None and self.input_size < 32:
            raise UsageError(f"--input-size {self.input_size} is too small", fix="use 32 pixels or more")
        if self.input_size is not None and self.input_size > MAX_INPUT_SIZE:
            raise UsageError(f"--input-size {self.input_size} is too large",
                             fix=f"use at most {MAX_INPUT_SIZE} pixels")
        if not (0.0 <= self.max_corrupt_fraction <= 1.0):
            raise UsageError(f"--max-corrupt {self.max_corrupt_fraction} is not a fraction",
                             fix="use a value from 0 to 1, e.g. 0.01")
        _positive("--epochs", self.epochs)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr {self.lr} is not a positive number", fix="use e.g. --lr 0.01")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}", fix=f"use {' or '.join(OPTIMIZERS)}")
        if self.max_seconds is not None and not (self.max_seconds > 0 and math.isfinite(self.max_seconds)):
            raise UsageError(f"--max-seconds {self.max_seconds} is not positive", fix="use a budget in seconds > 0")
        if self.save_weights is not None and not Path(self.save_weights).parent.is_dir():
            raise UsageError(f"cannot save weights to {self.save_weights}: its folder does not exist",
                             fix="create the folder or choose another --save-weights path")
        return WeightsChoice.parse(self.weights)

    def _validate_transformers(self) -> None:
        """The options only ``--backend transformers`` takes (its models are folders or hub ids, not registry names)."""
        from mlee.runners.hf_inputs import TASK_INPUTS
        from mlee.runners.transformers_backend import DTYPES

        if self.task == "training" and self.hf_task not in (None, "text-classification"):
            raise UsageError(f"`mlee train --backend transformers` fine-tunes text classifiers, not {self.hf_task}",
                             fix="train a ...ForSequenceClassification model")
        if self.hf_task is not None and self.hf_task not in TASK_INPUTS:
            raise UsageError(f"unknown --task {self.hf_task!r}", fix=f"use one of: {', '.join(TASK_INPUTS)}")
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown --dtype {self.dtype!r}", fix=f"use one of: {', '.join(DTYPES)}")
        for flag, value in (("--max-new-tokens", self.max_new_tokens), ("--input-tokens", self.input_tokens)):
            _positive(flag, value)
            if value > MAX_TOKENS:
                raise UsageError(f"{flag} {value} is too large", fix=f"use at most {MAX_TOKENS}")
        if self.dataset not in (None, "synthetic"):
            raise UsageError(f"--dataset {self.dataset} does not go with --backend transformers",
                             fix="drop --dataset (synthetic inputs), or give --data-path FILE_OR_FOLDER")

    def planned_samples(self, available: int | None = None) -> int | None:
        """Samples to run (per epoch when training): --n-samples, --n-batches x --batch-size, or the default.

        ``available`` caps real datasets; None asks for every sample of a real dataset.
        """
        if self.n_samples is not None:
            want: int | None = self.n_samples
        elif self.n_batches is not None:
            want = self.n_batches * self.batch_size
        elif self.backend == "transformers" and self.data_path is not None:
            want = None  # every prompt, image or clip of the given file or folder
        elif self.dataset_name == "digits":
            want = None  # the whole split: it is small
        elif self.dataset_name == "synthetic" or self.task == "inference":
            want = DEFAULT_N_BATCHES * self.batch_size
        else:
            want = None
        if available is not None and want is not None:
            return min(want, available)
        return want

    def to_config(self, model: str) -> dict:
        """Every argument, JSON-ready, for config.json."""
        data = asdict(self)
        data["data_path"] = str(self.data_path) if self.data_path is not None else None
        data["save_weights"] = str(self.save_weights) if self.save_weights is not None else None
        data["dataset"] = self.dataset_name
        data["model"] = model
        return data


def _positive(flag: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UsageError(f"{flag} {value} must be a positive whole number", fix=f"use {flag} 1 or more")
