"""The model registry: canonical names shared by the backends, input sizes, preprocessing, parameter counts.

Pure data and look-ups; no framework is imported here, so ``mlee models`` answers at once.
The figures are the frameworks' own (torchvision weight metadata, ``keras.applications`` defaults);
``tests/test_runners_registry.py`` checks them against the installed frameworks.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from mlee.errors import UsageError

#: Backends a model run can use; ``onnx`` runs a torchvision or keras model exported to ONNX.
BACKENDS = ("pytorch", "tensorflow", "onnx")
#: Frameworks an ONNX model can be exported from.
ONNX_SOURCES = ("pytorch", "tensorflow")

# Keras evaluates ImageNet models on a centre crop of 87.5 % of the resized image.
_KERAS_CROP_FRACTION = 0.875


@dataclass(frozen=True)
class TorchEntry:
    """How torchvision builds and feeds one model.

    Units: ``input_size`` and ``resize_size`` in pixels (square crop, shorter side before the crop).
    """

    builder: str
    input_size: int
    resize_size: int
    interpolation: str
    parameters: int


@dataclass(frozen=True)
class KerasEntry:
    """How ``tf.keras.applications`` builds and feeds one model.

    ``preprocessing`` is the mode of the model's ``preprocess_input``: ``caffe`` (BGR, mean subtracted),
    ``tf`` (scaled to [-1, 1]), ``torch`` (ImageNet mean/std) or ``raw`` (the model rescales 0-255 itself).
    ``cache_token`` is part of the file name keras gives the downloaded weights (offline cache check).

    Units: ``input_size`` in pixels.
    """

    builder: str
    input_size: int
    preprocessing: str
    parameters: int
    cache_token: str

    @property
    def resize_size(self) -> int:
        """Shorter side before the centre crop (pixels)."""
        return int(round(self.input_size / _KERAS_CROP_FRACTION))


@dataclass(frozen=True)
class ModelSpec:
    """One model of the registry, under its canonical name, with its entry per framework."""

    name: str
    family: str
    pytorch: TorchEntry | None = None
    tensorflow: KerasEntry | None = None

    @property
    def backends(self) -> tuple[str, ...]:
        """Backends that can run this model (``onnx`` whenever a framework can export it)."""
        found = tuple(b for b in ONNX_SOURCES if getattr(self, b) is not None)
        return found + ("onnx",) if found else found

    def entry(self, framework: str) -> TorchEntry | KerasEntry:
        """The entry of ``framework`` (``pytorch`` or ``tensorflow``); UsageError when it has none."""
        found = getattr(self, framework, None) if framework in ONNX_SOURCES else None
        if found is None:
            have = ", ".join(self.backends)
            raise UsageError(
                f"model {self.name} has no {framework} version (it runs on: {have})",
                fix=f"choose --backend {self.backends[0]} or another model (see `mlee models`)",
            )
        return found


def _t(builder: str, size: int, resize: int, params: int, interp: str = "bilinear") -> TorchEntry:
    return TorchEntry(builder, size, resize, interp, params)


def _k(builder: str, size: int, prep: str, params: int, token: str) -> KerasEntry:
    return KerasEntry(builder, size, prep, params, token)


_EFF_TORCH = [  # (crop, resize, interpolation, parameters) of torchvision's default weights
    (224, 256, "bicubic", 5288548), (240, 255, "bilinear", 7794184), (288, 288, "bicubic", 9109994),
    (300, 320, "bicubic", 12233232), (380, 384, "bicubic", 19341616), (456, 456, "bicubic", 30389784),
    (528, 528, "bicubic", 43040704), (600, 600, "bicubic", 66347960),
]
_EFF_KERAS = [(224, 5330571), (240, 7856239), (260, 9177569), (300, 12320535), (380, 19466823),
              (456, 30562527), (528, 43265143), (600, 66658687)]

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("ResNet50", "resnet", _t("resnet50", 224, 232, 25557032),
              _k("ResNet50", 224, "caffe", 25636712, "resnet50_")),
    ModelSpec("ResNet101", "resnet", _t("resnet101", 224, 232, 44549160),
              _k("ResNet101", 224, "caffe", 44707176, "resnet101_")),
    ModelSpec("ResNet152", "resnet", _t("resnet152", 224, 232, 60192808),
              _k("ResNet152", 224, "caffe", 60419944, "resnet152_")),
    ModelSpec("VGG16", "vgg", _t("vgg16", 224, 256, 138357544),
              _k("VGG16", 224, "caffe", 138357544, "vgg16_")),
    ModelSpec("VGG19", "vgg", _t("vgg19", 224, 256, 143667240),
              _k("VGG19", 224, "caffe", 143667240, "vgg19_")),
    ModelSpec("MobileNetV2", "mobilenet", _t("mobilenet_v2", 224, 232, 3504872),
              _k("MobileNetV2", 224, "tf", 3538984, "mobilenet_v2_")),
    ModelSpec("MobileNetV3Small", "mobilenet", _t("mobilenet_v3_small", 224, 256, 2542856),
              _k("MobileNetV3Small", 224, "raw", 2554968, "mobilenet_v3_small")),
    ModelSpec("MobileNetV3Large", "mobilenet", _t("mobilenet_v3_large", 224, 232, 5483032),
              _k("MobileNetV3Large", 224, "raw", 5507432, "mobilenet_v3_large")),
    *(
        ModelSpec(f"EfficientNetB{i}", "efficientnet", _t(f"efficientnet_b{i}", t[0], t[1], t[3], t[2]),
                  _k(f"EfficientNetB{i}", k[0], "raw", k[1], f"efficientnetb{i}"))
        for i, (t, k) in enumerate(zip(_EFF_TORCH, _EFF_KERAS))
    ),
    ModelSpec("DenseNet121", "densenet", _t("densenet121", 224, 256, 7978856),
              _k("DenseNet121", 224, "torch", 8062504, "densenet121_")),
    ModelSpec("DenseNet169", "densenet", _t("densenet169", 224, 256, 14149480),
              _k("DenseNet169", 224, "torch", 14307880, "densenet169_")),
    ModelSpec("DenseNet201", "densenet", _t("densenet201", 224, 256, 20013928),
              _k("DenseNet201", 224, "torch", 20242984, "densenet201_")),
    ModelSpec("InceptionV3", "inception", _t("inception_v3", 299, 342, 27161264),
              _k("InceptionV3", 299, "tf", 23851784, "inception_v3_")),
    # Backend-only models.
    ModelSpec("Xception", "xception", None, _k("Xception", 299, "tf", 22910480, "xception_")),
    ModelSpec("NASNetMobile", "nasnet", None, _k("NASNetMobile", 224, "tf", 5326716, "nasnet-mobile")),
    ModelSpec("InceptionResNetV2", "inception", None,
              _k("InceptionResNetV2", 299, "tf", 55873736, "inception_resnet_v2_")),
    ModelSpec("ResNeXt50", "resnext", _t("resnext50_32x4d", 224, 232, 25028904)),
    ModelSpec("ResNeXt101", "resnext", _t("resnext101_32x8d", 224, 232, 88791336)),
    ModelSpec("RegNetX-400MF", "regnet", _t("regnet_x_400mf", 224, 232, 5495976)),
    ModelSpec("RegNetX-8GF", "regnet", _t("regnet_x_8gf", 224, 232, 39572648)),
    ModelSpec("RegNetX-32GF", "regnet", _t("regnet_x_32gf", 224, 232, 107811560)),
    ModelSpec("ConvNeXt-Tiny", "convnext", _t("convnext_tiny", 224, 236, 28589128)),
    ModelSpec("ViT-B/16", "vit", _t("vit_b_16", 224, 256, 86567656)),
)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _index() -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in MODELS:
        index[_norm(spec.name)] = spec
        for entry in (spec.pytorch, spec.tensorflow):
            if entry is not None:
                index.setdefault(_norm(entry.builder), spec)
    return index


_INDEX = _index()


def names(backend: str | None = None) -> list[str]:
    """Canonical model names in registry order, optionally only those ``backend`` can run."""
    return [s.name for s in MODELS if backend is None or backend in s.backends]


def check_backend(backend: str) -> str:
    """``backend`` if known, else UsageError listing the known ones."""
    if backend not in BACKENDS:
        close = difflib.get_close_matches(backend.lower(), BACKENDS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown backend {backend!r}", fix=f"{hint}choose one of: {', '.join(BACKENDS)}")
    return backend


def lookup(name: str) -> ModelSpec:
    """The model called ``name`` (case, dashes and underscores ignored; torchvision/keras names accepted).

    Raises:
        UsageError: unknown name; the message lists the closest known names.
    """
    spec = _INDEX.get(_norm(name))
    if spec is not None:
        return spec
    canon = {_norm(s.name): s.name for s in MODELS}
    close = difflib.get_close_matches(_norm(name), list(canon), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(canon[c] for c in close)}? " if close else ""
    raise UsageError(f"unknown model {name!r}", fix=f"{hint}`mlee models` lists every model")


def resolve(name: str, backend: str, onnx_source: str = "pytorch") -> tuple[ModelSpec, str]:
    """The spec of ``name`` and the framework that builds it for ``backend``.

    Raises:
        UsageError: unknown model or backend, or a model the backend cannot run.
    """
    check_backend(backend)
    if onnx_source not in ONNX_SOURCES:
        raise UsageError(f"unknown ONNX source {onnx_source!r}", fix="choose pytorch or tensorflow")
    spec = lookup(name)
    framework = onnx_source if backend == "onnx" else backend
    spec.entry(framework)
    return spec, framework


def split_model_args(values: list[str]) -> list[str]:
    """``--model A --model B,C`` -> ``[A, B, C]`` in order, duplicates dropped, blanks ignored."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out
