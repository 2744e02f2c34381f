"""Data loaders and preprocessing: synthetic, digits, ImageFolder (corrupt images), tfds records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlee.errors import DataError, UsageError
from mlee.runners import data
from mlee.runners.preprocess import Preprocessing, batch_bounds, for_entry, normalize, resize_and_crop
from mlee.runners.registry import lookup

TORCH_PREP = Preprocessing(32, 36, "bilinear", "imagenet", "nchw")
KERAS_PREP = Preprocessing(32, 37, "bilinear", "caffe", "nhwc")


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _folder(root: Path, per_class: int = 3, classes: tuple[str, ...] = ("n01", "n02")) -> Path:
    for c, cls in enumerate(classes):
        _image(root / "train" / cls / "t0.JPEG", (c * 100, 0, 0))
        for i in range(per_class):
            _image(root / "val" / cls / f"v{i}.JPEG", (c * 100, i * 50, 0))
    return root


def test_synthetic_is_seeded_and_shaped() -> None:
    a = data.synthetic(3, TORCH_PREP, seed=7)
    b = data.synthetic(3, TORCH_PREP, seed=7)
    assert a.pixels.shape == (3, 32, 32, 3) and a.pixels.dtype == np.uint8
    assert np.array_equal(a.pixels, b.pixels)
    assert not np.array_equal(a.pixels, data.synthetic(3, TORCH_PREP, seed=8).pixels)
    assert a.labels is None  # accuracy on random inputs is not measured


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    train = data.digits("train", TORCH_PREP, seed=0)
    val = data.digits("val", TORCH_PREP, seed=0)
    assert train.n_samples + val.n_samples == 1797
    assert val.n_samples == pytest.approx(1797 * 0.2, abs=10)
    assert set(np.unique(val.labels)) == set(range(10))
    assert train.pixels.shape[1:] == (32, 32, 3)
    # --seed reorders the held-out split but does not change it
    other = data.digits("val", TORCH_PREP, seed=5)
    assert sorted(other.labels.tolist()) == sorted(val.labels.tolist())
    assert not np.array_equal(other.labels, val.labels)
    # upscaled real digits: the images are not blank and not identical
    assert train.pixels.max() > 200 and train.pixels.std() > 10


def test_resize_and_crop_centre() -> None:
    img = Image.new("RGB", (100, 50), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 50))  # a blue band on the left edge falls outside the centre crop
    out = resize_and_crop(img, 40, 32, "bilinear")
    assert out.shape == (32, 32, 3)
    assert out[:, :, 2].max() == 0


def test_normalize_modes_and_layout() -> None:
    px = np.full((1, 2, 2, 3), 255, np.uint8)
    torch_in = normalize(px, TORCH_PREP)
    assert torch_in.shape == (1, 3, 2, 2)
    assert torch_in[0, 0, 0, 0] == pytest.approx((1.0 - 0.485) / 0.229, rel=1e-6)
    caffe = normalize(np.array([[[[10, 20, 30]]]], np.uint8), KERAS_PREP)
    assert caffe[0, 0, 0].tolist() == pytest.approx([30 - 103.939, 20 - 116.779, 10 - 123.68], rel=1e-5)
    tf_mode = normalize(px, Preprocessing(2, 2, "bilinear", "tf", "nhwc"))
    assert tf_mode.max() == pytest.approx(1.0)


def test_for_entry_standard_and_override() -> None:
    prep = for_entry(lookup("InceptionV3").pytorch)
    assert (prep.input_size, prep.resize_size, prep.layout) == (299, 342, "nchw")
    small = for_entry(lookup("InceptionV3").pytorch, input_size=75)
    assert small.input_size == 75 and small.resize_size == round(342 * 75 / 299)
    assert for_entry(lookup("DenseNet121").tensorflow).mode == "torch"
    with pytest.raises(UsageError):
        for_entry(lookup("ResNet50").pytorch, input_size=8)


def test_batch_bounds() -> None:
    assert batch_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]


def test_image_folder_reads_val_with_train_class_indices(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imagenet")
    (root / "train" / "n03").mkdir()  # a class with no val images still takes its index
    s = data.image_folder(root, "val", TORCH_PREP, None, seed=0, max_corrupt_fraction=0.0)
    assert s.n_samples == 6 and s.n_classes == 3
    assert sorted(s.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    # class n02 images are red = 100
    assert all(s.pixels[i, 0, 0, 0] == (100 if s.labels[i] == 1 else 0) for i in range(6))
    assert s.info["corrupt"] == 0


def test_image_folder_counts_corrupt_images_and_fails_over_threshold(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imagenet", per_class=5)
    (root / "val" / "n01" / "broken.JPEG").write_bytes(b"not a jpeg")
    s = data.image_folder(root, "val", TORCH_PREP, None, seed=0, max_corrupt_fraction=0.2)
    assert s.n_samples == 10 and s.info["corrupt"] == 1
    assert "broken.JPEG" in s.info["corrupt_examples"][0]
    with pytest.raises(DataError, match=r"1 of 11 images .* could not be read") as info:
        data.image_folder(root, "val", TORCH_PREP, None, seed=0, max_corrupt_fraction=0.05)
    assert "--max-corrupt" in str(info.value)


def test_image_folder_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        data.load("imagenet", TORCH_PREP, split="val", n_samples=4, seed=0, data_path=tmp_path / "nope")
    (tmp_path / "empty" / "val" / "n01").mkdir(parents=True)
    with pytest.raises(DataError, match="no images under"):
        data.load("imagenet", TORCH_PREP, split="val", n_samples=4, seed=0, data_path=tmp_path / "empty")
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataError, match="no val/ folder"):
        data.load("imagenet", TORCH_PREP, split="val", n_samples=4, seed=0, data_path=tmp_path / "bare")


def test_memory_guard_names_a_size_that_fits() -> None:
    with pytest.raises(DataError, match=r"use --n-samples \d+ or fewer"):
        data.check_memory(10**9, Preprocessing(600, 600, "bicubic", "raw", "nhwc"))


def test_tfds_imagenet2012_layout(tmp_path: Path) -> None:
    from mlee.runners.tf_backend import import_tf

    tf = import_tf()
    shard_dir = tmp_path / "tfds" / "imagenet2012" / "5.1.0"
    shard_dir.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(shard_dir / "imagenet2012-validation.tfrecord-00000-of-00001")) as writer:
        for label, color in [(3, (250, 0, 0)), (7, (0, 250, 0)), (5, (0, 0, 0))]:
            buf = tf.io.encode_jpeg(tf.constant(np.full((40, 50, 3), color, np.uint8))).numpy()
            ex = tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buf])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "file_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x.JPEG"]))}))
            writer.write(ex.SerializeToString())
    s = data.load("imagenet", KERAS_PREP, split="val", n_samples=None, seed=0, data_path=tmp_path / "tfds",
                  framework="tensorflow")
    assert s.info["layout"] == "tfds-imagenet2012" and s.n_samples == 3
    by_label = {int(lbl): s.pixels[i] for i, lbl in enumerate(s.labels)}
    assert by_label[3][16, 16, 0] > 200 and by_label[7][16, 16, 1] > 200
