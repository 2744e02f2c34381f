"""Input data for model runs: seeded synthetic images, scikit-learn's digits, ImageNet folders, tfds records.

Every loader returns an :class:`ImageSet` of uint8 RGB images already resized and cropped to the
model's input size; :func:`mlee.runners.preprocess.normalize` then makes framework input of it.
Data is decoded before the measured window, so decoding never counts as inference.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, DataError, UsageError
from mlee.runners.preprocess import Preprocessing, resize_and_crop

DATASETS = ("synthetic", "digits", "imagenet")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
#: The held-out split of digits is fixed (not --seed) so that accuracies of different runs compare.
DIGITS_SPLIT_SEED = 0
DIGITS_VAL_FRACTION = 0.2
# Batches live in memory during the run; refuse plans that would not fit with room to spare.
_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class ImageSet:
    """Images ready for normalisation.

    Attributes:
        pixels: uint8 numpy array (n, H, W, 3), RGB.
        labels: int64 numpy array (n,), or None when the labels are not real (synthetic data).
        n_classes: classes of the labelled data, or None.
        name: ``synthetic``, ``digits`` or ``imagenet``.
        info: facts to record (layout, path, split, images skipped as corrupt, ...).
    """

    pixels: Any
    labels: Any | None
    n_classes: int | None
    name: str
    info: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Number of images."""
        return int(self.pixels.shape[0])


def check_memory(n_samples: int, prep: Preprocessing, copies: int = 5) -> None:
    """Refuse a plan whose images would not fit in memory (uint8 plus float32 copies).

    Raises:
        DataError: the images need more than half of the available memory; the fix says how many fit.
    """
    import psutil

    per_image = prep.input_size * prep.input_size * 3 * copies
    need = n_samples * per_image
    avail = psutil.virtual_memory().available
    if need > avail * _MEMORY_SHARE:
        fit = max(1, int(avail * _MEMORY_SHARE // per_image))
        raise DataError(
            f"{n_samples} images of {prep.input_size}x{prep.input_size} need about {need / 1e9:.1f} GB "
            f"in memory, more than half of the {avail / 1e9:.1f} GB available",
            fix=f"use --n-samples {fit} or fewer",
        )


def synthetic(n_samples: int, prep: Preprocessing, seed: int) -> ImageSet:
    """Seeded random images of the model's input shape; labels are not real, so accuracy is not measured."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = prep.input_size
    pixels = rng.integers(0, 256, size=(n_samples, size, size, 3), dtype=np.uint8)
    return ImageSet(pixels, None, None, "synthetic", {"layout": "synthetic", "seed": seed})


def digits(split: str, prep: Preprocessing, seed: int, n_samples: int | None = None) -> ImageSet:
    """scikit-learn's 1,797 real 8x8 digit images, upscaled to the model's input size, as RGB.

    Args:
        split: ``train`` (80 %, stratified) or ``val`` (the held-out 20 %).
        seed: Order of the images within the split (the split itself is fixed).
        n_samples: At most this many images (all when None).

    Raises:
        BackendMissing: scikit-learn is not installed.
    """
    import numpy as np
    from PIL import Image

    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise BackendMissing("--dataset digits needs scikit-learn, which is not installed",
                             fix='pip install "mlee[data]"') from exc
    bunch = load_digits()
    images = np.asarray(bunch.images)  # (1797, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    idx = _stratified_split(labels, split)
    idx = np.random.default_rng(seed).permutation(idx)
    if n_samples is not None:
        idx = idx[:n_samples]
    size = prep.input_size
    out = np.empty((len(idx), size, size, 3), dtype=np.uint8)
    for row, i in enumerate(idx):
        gray = Image.fromarray(np.round(images[i] * (255.0 / 16.0)).astype(np.uint8), mode="L")
        out[row] = np.asarray(gray.resize((size, size), Image.Resampling.BILINEAR).convert("RGB"))
    info = {"layout": "sklearn-digits", "split": split, "split_seed": DIGITS_SPLIT_SEED,
            "val_fraction": DIGITS_VAL_FRACTION, "source_size_px": 8}
    return ImageSet(out, labels[idx], 10, "digits", info)


def _stratified_split(labels: Any, split: str) -> Any:
    import numpy as np

    if split not in ("train", "val"):
        raise UsageError(f"unknown split {split!r}", fix="use train or val")
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    chosen = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = int(round(len(members) * DIGITS_VAL_FRACTION))
        chosen.append(members[:n_val] if split == "val" else members[n_val:])
    return np.sort(np.concatenate(chosen))


def _split_dir(root: Path, split: str) -> Path:
    """The folder of ``split`` under an ImageFolder root (``val`` also answers to ``validation``)."""
    names = ("val", "validation") if split == "val" else (split,)
    for name in names:
        if (root / name).is_dir():
            return root / name
    if any(p.is_dir() for p in root.iterdir()) and not any((root / n).is_dir() for n in ("train", "val")):
        return root  # the root itself holds the class folders
    raise DataError(f"no {split}/ folder under {root}",
                    fix=f"use the ImageFolder layout {root}/{names[0]}/<class>/*.JPEG")


def scan_image_folder(root: Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """Files and class indices of an ImageFolder split; classes are the sorted folder names.

    The class list is taken from ``train/`` when it exists, so that a partial ``val/`` keeps the
    indices the model was trained with.

    Raises:
        DataError: missing path, missing split folder, or no image in it.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data path {root} does not exist", fix="pass --data-path to an ImageNet folder")
    if not root.is_dir():
        raise DataError(f"data path {root} is not a folder", fix="pass the folder that holds val/<class>/")
    folder = _split_dir(root, split)
    class_root = root / "train" if (root / "train").is_dir() and folder != root else folder
    classes = sorted(p.name for p in class_root.iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    for cls in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        if cls not in index:
            index[cls] = len(classes)
            classes.append(cls)
        for path in sorted((folder / cls).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append((path, index[cls]))
    if not files:
        raise DataError(f"no images under {folder}",
                        fix=f"expected {folder}/<class>/*.JPEG (suffixes: {', '.join(IMAGE_SUFFIXES)})")
    return files, classes


def _decode_file(path: Path, prep: Preprocessing) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return resize_and_crop(img, prep.resize_size, prep.input_size, prep.interpolation)


def _decode_bytes(data: bytes, prep: Preprocessing) -> Any:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return resize_and_crop(img, prep.resize_size, prep.input_size, prep.interpolation)


def _decode_many(items: list, decode: Any, prep: Preprocessing, want: int,
                 max_corrupt_fraction: float, where: str) -> tuple[Any, Any, dict]:
    """Decode ``(key, label)`` items until ``want`` images are good; count and report corrupt ones."""
    import numpy as np
    from PIL import Image

    good: list[Any] = []
    labels: list[int] = []
    bad: list[str] = []
    tried = 0

    def one(item: tuple) -> tuple[Any, str | None]:
        try:
            return decode(item[0], prep), None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return None, f"{exc.__class__.__name__}: {exc}"

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pos = 0
        while len(good) < want and pos < len(items):
            chunk = items[pos: pos + max(want - len(good), workers)]
            pos += len(chunk)
            for item, (arr, why) in zip(chunk, pool.map(one, chunk)):
                tried += 1
                if arr is None:
                    bad.append(f"{item[2]}: {why}")
                else:
                    good.append(arr)
                    labels.append(item[1])
    fraction = len(bad) / tried if tried else 0.0
    if fraction > max_corrupt_fraction or not good:
        raise DataError(
            f"{len(bad)} of {tried} images under {where} could not be read ({fraction:.1%}, "
            f"allowed {max_corrupt_fraction:.1%}); first: {bad[0] if bad else 'none'}",
            fix="repair or remove the broken files, or raise --max-corrupt",
        )
    info = {"images_tried": tried, "corrupt": len(bad), "corrupt_examples": bad[:5]}
    return np.stack(good), np.asarray(labels, dtype=np.int64), info


def image_folder(root: Path, split: str, prep: Preprocessing, n_samples: int | None, seed: int,
                 max_corrupt_fraction: float) -> ImageSet:
    """Images of an ImageFolder split (``<root>/val/<class>/*.JPEG``), a seeded sample of ``n_samples``.

    Raises:
        DataError: missing/empty folder, or more corrupt images than ``max_corrupt_fraction``.
    """
    import numpy as np

    files, classes = scan_image_folder(root, split)
    order = np.random.default_rng(seed).permutation(len(files))
    items = [(files[i][0], files[i][1], str(files[i][0])) for i in order]
    want = len(items) if n_samples is None else min(n_samples, len(items))
    check_memory(want, prep)
    pixels, labels, info = _decode_many(items, _decode_file, prep, want, max_corrupt_fraction, str(root))
    info.update({"layout": "imagefolder", "path": str(Path(root).expanduser().resolve()), "split": split,
                 "n_classes": len(classes), "images_available": len(files)})
    return ImageSet(pixels, labels, len(classes), "imagenet", info)


def find_tfds_files(root: Path, split: str) -> list[Path]:
    """TFRecord shards of the tfds ``imagenet2012`` layout for ``split`` (``val`` = ``validation``)."""
    name = "validation" if split == "val" else split
    pattern = f"imagenet2012-{name}.tfrecord*"
    found = sorted(Path(root).expanduser().glob(pattern))
    for depth in ("*", "*/*", "*/*/*"):
        if found:
            break
        found = sorted(Path(root).expanduser().glob(f"{depth}/{pattern}"))
    return found


def tfds_imagenet(root: Path, split: str, prep: Preprocessing, n_samples: int | None, seed: int,
                  max_corrupt_fraction: float) -> ImageSet:
    """Images of the tfds ``imagenet2012`` layout (``imagenet2012/<version>/*.tfrecord-*``), read with TensorFlow.

    Raises:
        BackendMissing: TensorFlow is not installed.
        DataError: no shard for the split, unreadable records, too many corrupt images.
    """
    import numpy as np

    files = find_tfds_files(root, split)
    if not files:
        raise DataError(f"no imagenet2012 {split} records under {root}",
                        fix="point --data-path at a tfds data_dir holding imagenet2012/<version>/")
    from mlee.runners.tf_backend import import_tf

    tf = import_tf()
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    items = []
    try:
        for i, raw in enumerate(tf.data.TFRecordDataset([str(f) for f in files])):
            ex = tf.io.parse_single_example(raw, spec)
            items.append((ex["image"].numpy(), int(ex["label"].numpy()), f"record {i}"))
    except (tf.errors.OpError, ValueError) as exc:
        raise DataError(f"tfds records under {root} cannot be read: {exc.__class__.__name__}: {exc}",
                        fix="re-create them with tensorflow_datasets") from exc
    if not items:
        raise DataError(f"the imagenet2012 {split} records under {root} are empty", fix="re-create them")
    order = np.random.default_rng(seed).permutation(len(items))
    items = [items[i] for i in order]
    want = len(items) if n_samples is None else min(n_samples, len(items))
    check_memory(want, prep)
    pixels, labels, info = _decode_many(items, _decode_bytes, prep, want, max_corrupt_fraction, str(root))
    info.update({"layout": "tfds-imagenet2012", "path": str(Path(root).expanduser().resolve()),
                 "split": split, "n_classes": 1000, "shards": len(files), "images_available": len(items)})
    return ImageSet(pixels, labels, 1000, "imagenet", info)


def load(dataset: str, prep: Preprocessing, *, split: str, n_samples: int | None, seed: int,
         data_path: Path | None = None, framework: str = "pytorch",
         max_corrupt_fraction: float = 0.01) -> ImageSet:
    """The images of one run.

    ``imagenet`` reads ``data_path``: the tfds ``imagenet2012`` layout when it holds records and the
    framework is tensorflow, else the ImageFolder layout. ``n_samples`` None means every image of the
    split (real datasets only).

    Raises:
        UsageError: unknown dataset, or ``imagenet`` without ``--data-path``.
        DataError: see the loaders.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}", fix=f"choose one of: {', '.join(DATASETS)}")
    if dataset == "synthetic":
        if n_samples is None:
            raise UsageError("synthetic data needs a number of samples", fix="pass --n-batches or --n-samples")
        check_memory(n_samples, prep)
        return synthetic(n_samples, prep, seed)
    if dataset == "digits":
        return digits(split, prep, seed, n_samples)
    if data_path is None:
        raise UsageError("--dataset imagenet needs --data-path", fix="pass --data-path DIR (ImageFolder or tfds layout)")
    root = Path(data_path).expanduser()
    if not root.exists():
        raise DataError(f"data path {root} does not exist", fix="pass --data-path to an ImageNet folder")
    if framework == "tensorflow" and root.is_dir() and find_tfds_files(root, split):
        return tfds_imagenet(root, split, prep, n_samples, seed, max_corrupt_fraction)
    return image_folder(root, split, prep, n_samples, seed, max_corrupt_fraction)
