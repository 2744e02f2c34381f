"""Each model's standard preprocessing: resize, centre crop, normalisation, tensor layout.

Images travel as uint8 RGB arrays (n, H, W, 3) until :func:`normalize` turns them into the float32
input a framework expects. numpy and PIL are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlee.errors import UsageError
from mlee.runners.registry import KerasEntry, TorchEntry

#: ImageNet channel statistics of torchvision (on 0-1 pixels) and of keras's ``caffe`` mode (BGR, 0-255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

MODES = ("imagenet", "caffe", "tf", "torch", "raw")


@dataclass(frozen=True)
class Preprocessing:
    """The standard preprocessing of one model on one framework.

    ``mode``: ``imagenet``/``torch`` (scale to 0-1, ImageNet mean/std), ``caffe`` (BGR minus mean),
    ``tf`` (scale to [-1, 1]), ``raw`` (0-255 floats, the model rescales). ``layout`` is ``nchw``
    (PyTorch) or ``nhwc`` (TensorFlow).

    Units: ``input_size``, ``resize_size`` in pixels.
    """

    input_size: int
    resize_size: int
    interpolation: str
    mode: str
    layout: str

    def to_json(self) -> dict:
        """The JSON form recorded in config.json."""
        return {"input_size": self.input_size, "resize_size": self.resize_size,
                "interpolation": self.interpolation, "mode": self.mode, "layout": self.layout}


def for_entry(entry: TorchEntry | KerasEntry, input_size: int | None = None) -> Preprocessing:
    """The standard preprocessing of a registry entry; ``input_size`` overrides the crop size.

    An override keeps the model's resize-to-crop ratio, so a smaller input sees the same framing.

    Raises:
        UsageError: ``input_size`` below 32 pixels (the networks downsample by 32).
    """
    size = entry.input_size
    resize = entry.resize_size
    if input_size is not None:
        if input_size < 32:
            raise UsageError(f"--input-size {input_size} is too small", fix="use 32 pixels or more")
        resize = int(round(resize * input_size / size))
        size = input_size
    if isinstance(entry, TorchEntry):
        return Preprocessing(size, resize, entry.interpolation, "imagenet", "nchw")
    return Preprocessing(size, resize, "bilinear", entry.preprocessing, "nhwc")


def resize_and_crop(image: object, resize_size: int, input_size: int, interpolation: str) -> object:
    """Resize a PIL image's shorter side to ``resize_size`` and cut the centre ``input_size`` square.

    Returns:
        uint8 numpy array (input_size, input_size, 3), RGB.
    """
    import numpy as np
    from PIL import Image

    resample = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
    img = image.convert("RGB")  # type: ignore[attr-defined]
    w, h = img.size
    scale = resize_size / min(w, h)
    # Never below the crop: a very elongated image still has to cover the square.
    new_w = max(input_size, int(round(w * scale)))
    new_h = max(input_size, int(round(h * scale)))
    img = img.resize((new_w, new_h), resample=resample)
    left = (new_w - input_size) // 2
    top = (new_h - input_size) // 2
    img = img.crop((left, top, left + input_size, top + input_size))
    return np.asarray(img, dtype=np.uint8)


def normalize(pixels: object, prep: Preprocessing) -> object:
    """uint8 RGB images (n, H, W, 3) -> float32 model input in ``prep``'s mode and layout."""
    import numpy as np

    x = np.asarray(pixels, dtype=np.float32)
    if prep.mode in ("imagenet", "torch"):
        x = (x / 255.0 - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    elif prep.mode == "caffe":
        x = x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
    elif prep.mode == "tf":
        x = x / 127.5 - 1.0
    elif prep.mode != "raw":
        raise UsageError(f"unknown preprocessing mode {prep.mode!r}", fix=f"one of {', '.join(MODES)}")
    if prep.layout == "nchw":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def batch_bounds(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``n_samples`` in batches of ``batch_size`` (the last may be short)."""
    return [(i, min(i + batch_size, n_samples)) for i in range(0, n_samples, batch_size)]
