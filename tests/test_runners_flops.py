"""FLOPs and MACs: known layers counted exactly in both frameworks, and a whole model agreeing across them."""

from __future__ import annotations

import pytest

# Conv 3x3, 3 -> 8 channels, 'same' padding on 32x32: every output element is 3*3*3 multiply-adds.
CONV_MACS = 32 * 32 * 8 * 3 * 3 * 3
# Depthwise 3x3 over 8 channels on 32x32: 3*3 multiply-adds per output element.
DEPTHWISE_MACS = 32 * 32 * 8 * 3 * 3
# Dense 8 -> 10 after global pooling.
DENSE_MACS = 8 * 10


def test_torch_conv_layer_exact() -> None:
    import torch

    from mlee.runners.torch_backend import count_flops

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False))
    flops, macs = count_flops(model, 32, torch.device("cpu"))
    assert macs == CONV_MACS
    assert flops == 2 * CONV_MACS


def test_torch_depthwise_and_linear_exact() -> None:
    import torch

    from mlee.runners.torch_backend import count_flops

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    _, macs = count_flops(model, 32, torch.device("cpu"))
    assert macs == CONV_MACS + DEPTHWISE_MACS + DENSE_MACS


def test_tensorflow_layers_exact_including_depthwise() -> None:
    from mlee.runners.tf_backend import import_tf
    from mlee.runners.tf_flops import count_flops

    tf = import_tf()
    inp = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(10)(x)
    flops, macs = count_flops(tf.keras.Model(inp, out), 32)
    assert macs == CONV_MACS + DEPTHWISE_MACS + DENSE_MACS
    assert flops == 2 * macs


def test_mobilenet_v3_small_macs_agree_across_frameworks() -> None:
    """Both frameworks' MobileNetV3Small do 56.5 M multiply-adds at 224 px (torchvision states 0.057 G)."""
    import torch
    import torchvision

    from mlee.runners.tf_backend import import_tf
    from mlee.runners.tf_flops import count_flops as tf_count
    from mlee.runners.torch_backend import count_flops as torch_count

    tf = import_tf()
    _, torch_macs = torch_count(torchvision.models.mobilenet_v3_small(), 224, torch.device("cpu"))
    _, tf_macs = tf_count(tf.keras.applications.MobileNetV3Small(weights=None), 224)
    assert torch_macs == pytest.approx(56.5e6, rel=0.01)
    assert tf_macs == torch_macs
