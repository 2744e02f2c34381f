"""Environment names: hardware plus backend and version, as the 2022 paper named them."""

from __future__ import annotations

import pytest

from mlee.results import environment_name
from mlee.results.environment import short_cpu_name, short_gpu_name


@pytest.mark.parametrize("raw, short", [
    ("NVIDIA A100-SXM4-40GB", "A100"), ("NVIDIA A100-PCIE-40GB", "A100"), ("NVIDIA H100 80GB HBM3", "H100"),
    ("Quadro RTX 5000", "RTX 5000"), ("NVIDIA GeForce RTX 3090", "RTX 3090"), ("Tesla V100-SXM2-16GB", "V100"),
    ("NVIDIA H200", "H200"), ("NVIDIA L4", "L4"),
])
def test_short_gpu_names(raw, short):
    assert short_gpu_name(raw) == short


@pytest.mark.parametrize("raw, short", [
    ("Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz", "Xeon(R) W-2155"),
    ("AMD EPYC 7B13 64-Core Processor", "AMD EPYC 7B13"),
    ("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz", "Core(TM) i7-8650U"),
    ("Apple M2", "Apple M2"),
])
def test_short_cpu_names(raw, short):
    assert short_cpu_name(raw) == short


def test_keyword_form():
    assert environment_name(gpus=["NVIDIA A100-SXM4-40GB"] * 8, backend="tensorflow", version="2.8.0") == \
        "A100 x8 - TensorFlow 2.8.0"
    assert environment_name(cpu="AMD EPYC 7B13 64-Core Processor", backend="pytorch", version="2.14.1") == \
        "AMD EPYC 7B13 - PyTorch 2.14.1"
    assert environment_name(cpu="AMD EPYC 7B13", backend="onnx_tensorflow", version="1.10.0") == \
        "AMD EPYC 7B13 - ONNX TF 1.10.0"
    assert environment_name(cpu="AMD EPYC 7B13") == "AMD EPYC 7B13"  # a plain command run has no backend


def _record(device, sources, gpus=2):
    env = {"cpu": {"model": "AMD EPYC 7B13 64-Core Processor"},
           "gpus": [{"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{i}"} for i in range(gpus)]}
    return {"device": device, "backend": {"name": "pytorch", "version": "2.14.1"}, "sources": sources,
            "environment_info": env}


def test_record_form_counts_the_gpus_that_were_measured():
    srcs = [{"name": f"nvml:{i}", "domain": "gpu", "detail": {"uuid": f"GPU-{i}", "index": i}} for i in range(2)]
    assert environment_name(_record("cuda", srcs)) == "H100 x2 - PyTorch 2.14.1"
    assert environment_name(_record("cuda:0", srcs[:1])) == "H100 - PyTorch 2.14.1"
    # A CPU run on a GPU machine is named by the CPU, even if the GPUs were sampled.
    assert environment_name(_record("cpu", srcs)) == "AMD EPYC 7B13 - PyTorch 2.14.1"
    # cuda without GPU sources (NVML unavailable): the machine's GPUs.
    assert environment_name(_record("cuda", [])) == "H100 x2 - PyTorch 2.14.1"


def test_multi_node_jobs_say_so():
    rec = _record("cpu", [])
    rec["rank"] = {"hosts": ["a", "b"], "world_size": 4}
    assert environment_name(rec) == "AMD EPYC 7B13 (2 nodes) - PyTorch 2.14.1"
