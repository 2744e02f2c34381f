"""Checkpoints are loaded with weights_only=True: unsafe and foreign files get their own message, and never the
advice to turn the check off (issue 15, item 5)."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest

from mlee.errors import MleeError
from test_cli_infer import QUICK, TickingRapl, _assert_failed_run, _invoke, rapl  # noqa: F401 - fixture

torch = pytest.importorskip("torch")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _unsafe_zip(path: Path) -> Path:
    torch.save({"features.0.weight": torch.zeros(2), "extra": _RunsCode()}, path)
    return path


def _unsafe_pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"a": _RunsCode()}))
    return path


def _foreign_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "x")
    return path


@pytest.mark.parametrize("make,needle", [
    (_unsafe_zip, "holds more than tensors (it asks for posix.system)"),
    (_unsafe_pickle, "holds more than tensors"),
    (_foreign_zip, "the file is a zip archive but not a PyTorch checkpoint"),
    (lambda p: (p.write_text("hello"), p)[1], "the file is not a PyTorch checkpoint"),
    (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
])
def test_unusable_checkpoints_get_their_own_message(tmp_path, make, needle, monkeypatch):
    from mlee.runners.torch_backend import load_checkpoint

    monkeypatch.chdir(tmp_path)
    path = make(tmp_path / "ckpt.pt")
    with pytest.raises(MleeError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert needle in text and "weights_only=False" not in text and "arbitrary code" not in text
    assert "torch.save(model.state_dict(), PATH)" in text
    assert not (tmp_path / "PWNED").exists()


def test_infer_with_an_unsafe_checkpoint_fails_in_one_line(tmp_path, rapl, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    ckpt = _unsafe_zip(tmp_path / "evil.pt")
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--weights", str(ckpt), *QUICK])
    _assert_failed_run(result, out, 1, "holds more than tensors", "weights_only=True")
    assert "weights_only=False" not in result.output and "arbitrary code" not in result.output
    assert not (tmp_path / "PWNED").exists()


def test_pretrained_weights_in_the_cache_are_loaded_weights_only(tmp_path, rapl, monkeypatch):  # noqa: F811
    """torchvision loads pretrained weights with weights_only=False; mlee forces True around it."""
    import torchvision

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # a user's setting does not reopen the hole
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    _unsafe_zip(cached)
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--weights", "pretrained", *QUICK])
    _assert_failed_run(result, out, 1, "holds more than tensors", "delete that file")
    assert "weights_only=False" not in result.output and not (tmp_path / "PWNED").exists()
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") is None
    assert os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1"
