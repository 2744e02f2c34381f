"""The model registry: names, backends, input sizes and parameter counts against the frameworks' own."""

from __future__ import annotations

import pytest

from mlee.errors import UsageError
from mlee.runners import registry

SHARED = ["ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19", "MobileNetV2", "MobileNetV3Small",
          "MobileNetV3Large", *[f"EfficientNetB{i}" for i in range(8)], "DenseNet121", "DenseNet169",
          "DenseNet201", "InceptionV3"]
TF_ONLY = ["Xception", "NASNetMobile", "InceptionResNetV2"]
TORCH_ONLY = ["ResNeXt50", "ResNeXt101", "RegNetX-400MF", "RegNetX-8GF", "RegNetX-32GF", "ConvNeXt-Tiny", "ViT-B/16"]


def test_registry_holds_every_model_of_the_issue_on_the_right_backends() -> None:
    assert sorted(registry.names()) == sorted(SHARED + TF_ONLY + TORCH_ONLY)
    for name in SHARED:
        assert registry.lookup(name).backends == ("pytorch", "tensorflow", "onnx")
    for name in TF_ONLY:
        assert registry.lookup(name).backends == ("tensorflow", "onnx")
    for name in TORCH_ONLY:
        assert registry.lookup(name).backends == ("pytorch", "onnx")
    assert set(registry.names("tensorflow")) == set(SHARED + TF_ONLY)


def test_input_sizes_follow_each_model() -> None:
    tf_sizes = {f"EfficientNetB{i}": s for i, s in enumerate([224, 240, 260, 300, 380, 456, 528, 600])}
    tf_sizes.update(InceptionV3=299, Xception=299, InceptionResNetV2=299, ResNet50=224, NASNetMobile=224)
    for name, size in tf_sizes.items():
        assert registry.lookup(name).tensorflow.input_size == size, name
    assert registry.lookup("InceptionV3").pytorch.input_size == 299
    assert registry.lookup("EfficientNetB7").pytorch.input_size == 600
    assert registry.lookup("ResNet50").tensorflow.resize_size == 256  # 224 / 0.875


@pytest.mark.parametrize("alias, name", [("resnet50", "ResNet50"), ("mobilenet_v3_small", "MobileNetV3Small"),
                                         ("vit-b-16", "ViT-B/16"), ("resnext101_32x8d", "ResNeXt101"),
                                         ("EFFICIENTNETB3", "EfficientNetB3"), ("regnetx400mf", "RegNetX-400MF")])
def test_lookup_accepts_framework_and_loose_names(alias: str, name: str) -> None:
    assert registry.lookup(alias).name == name


def test_unknown_model_names_the_closest() -> None:
    with pytest.raises(UsageError) as info:
        registry.lookup("ResNet51")
    assert "unknown model 'ResNet51'" in str(info.value)
    assert "ResNet50" in str(info.value) and "mlee models" in str(info.value)


def test_backend_only_model_on_the_other_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="Xception has no pytorch version"):
        registry.resolve("Xception", "pytorch")
    with pytest.raises(UsageError, match="ViT-B/16 has no tensorflow version"):
        registry.resolve("ViT-B/16", "onnx", onnx_source="tensorflow")
    assert registry.resolve("Xception", "onnx", onnx_source="tensorflow")[1] == "tensorflow"


def test_unknown_backend_suggests_the_known_one() -> None:
    with pytest.raises(UsageError, match="did you mean onnx"):
        registry.check_backend("onxx")


def test_split_model_args() -> None:
    assert registry.split_model_args(["A,B", "C", " B ", ",", "D"]) == ["A", "B", "C", "D"]


def test_torch_entries_match_torchvision_metadata() -> None:
    """Parameter counts, crop and resize sizes and interpolation as torchvision's default weights state them."""
    from torchvision.models import get_model_weights

    for spec in registry.MODELS:
        entry = spec.pytorch
        if entry is None:
            continue
        weights = get_model_weights(entry.builder).DEFAULT
        transforms = weights.transforms()
        assert entry.parameters == weights.meta["num_params"], spec.name
        assert [entry.input_size] == list(transforms.crop_size), spec.name
        assert [entry.resize_size] == list(transforms.resize_size), spec.name
        assert entry.interpolation == transforms.interpolation.value, spec.name


def test_torch_parameter_count_of_a_built_model() -> None:
    import torchvision

    model = torchvision.models.get_model("regnet_x_400mf", weights=None)
    assert sum(p.numel() for p in model.parameters()) == registry.lookup("RegNetX-400MF").pytorch.parameters


@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB1", "InceptionV3"])
def test_keras_entries_match_keras_applications(name: str) -> None:
    from mlee.runners.tf_backend import import_tf

    tf = import_tf()
    entry = registry.lookup(name).tensorflow
    model = getattr(tf.keras.applications, entry.builder)(weights=None)
    shape = model.input_shape
    assert model.count_params() == entry.parameters
    if shape[1] is not None:  # MobileNetV3 accepts any size; its default is 224
        assert shape[1:3] == (entry.input_size, entry.input_size)
