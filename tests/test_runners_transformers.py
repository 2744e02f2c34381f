"""`mlee infer --backend transformers`: tiny random models saved under tmp_path, measured by path (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runners_support import TickingRapl
from typer.testing import CliRunner

pytest.importorskip("transformers")
import hf_builders as hb  # noqa: E402

from mlee.cli import app  # noqa: E402
from mlee.label.content import format_value, label_content  # noqa: E402
from mlee.results.schema import problem  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "120", "HF_HUB_OFFLINE": "1"}
QUICK = ["--batch-size", "2", "--warmup-batches", "1", "--threads", "1"]


@pytest.fixture
def rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with TickingRapl(tmp_path / "powercap") as tree:
        monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(tree.root))
        yield tree


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {"gpt2": hb.gpt2(root / "gpt2"), "bert": hb.bert(root / "bert"), "vit": hb.vit(root / "vit"),
            "wav2vec2": hb.wav2vec2(root / "wav2vec2"), "whisper": hb.whisper(root / "whisper")}


def _infer(model: Path, out: Path, *args: str):
    return CliRunner().invoke(app, ["infer", "--backend", "transformers", "-m", str(model), "-o", str(out),
                                    *QUICK, *args], env=ENV)


def _only_results(out: Path) -> dict:
    [folder] = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((folder / "results.json").read_text())


def _total(block: dict) -> float:
    return block["energy_j"]["total"]


def test_text_generation_measures_prefill_and_decode_apart(tmp_path: Path, rapl: TickingRapl, models: dict) -> None:
    out = tmp_path / "out"
    res = _infer(models["gpt2"], out, "--n-samples", "4", "--input-tokens", "12", "--max-new-tokens", "5",
                 "--repeat", "2")
    assert res.exit_code == 0, res.output
    r = _only_results(out)
    assert problem("results", r) is None
    measured = [w["name"] for w in r["windows"] if w["measured"]]
    assert measured == ["prefill-0", "decode-0", "prefill-1", "decode-1"]
    hf = r["transformers"]
    assert hf["task"] == "text-generation" and hf["inputs"]["synthetic"] is True
    assert hf["input_tokens"] == 4 * 12 and hf["output_tokens"] == 4 * 5 and hf["max_new_tokens"] == 5
    assert hf["phases"]["prefill"]["tokens"] == 48 and hf["phases"]["decode"]["tokens"] == 4 * 4
    assert r["dataset"] == "text-generation:synthetic" and r["n_samples"] == 4
    windows = {w["name"]: w for w in r["windows"]}
    # A query's energy is its share of the prefill and the decode window of each repeat, averaged over repeats.
    per_repeat = [_total(windows[f"prefill-{i}"]) + _total(windows[f"decode-{i}"]) for i in range(2)]
    assert _total(r["per_sample"]) == pytest.approx(sum(per_repeat) / 2 / 4)
    assert _total(hf["per_query"]) == pytest.approx(_total(r["per_sample"]))
    assert _total(hf["per_output_token"]) == pytest.approx(sum(per_repeat) / 2 / 20)
    decode = hf["phases"]["decode"]
    assert _total(decode["per_token"]) == pytest.approx(
        (_total(windows["decode-0"]) + _total(windows["decode-1"])) / 2 / 16)
    assert decode["energy_method"]["total"] == "counter" and decode["tokens_per_s"] > 0
    assert 0 < hf["latency"]["p50_ms"] <= hf["latency"]["p95_ms"] and hf["latency"]["n_batches"] == 4
    assert r["model_info"]["parameters"] > 0 and r["backend"]["name"] == "transformers"
    lines = {ln.key: ln.text for b in label_content({"compound": "B", "metrics": {}, "record": r}).blocks
             for ln in b.lines}
    assert lines["decode_energy_per_token"] == format_value("", _total(decode["per_token"]), "J")
    assert "energy_per_output_token" in lines and "prefill_energy_per_token" not in lines  # three lines fit a block
    assert lines["latency_p95"] == format_value("", hf["latency"]["p95_ms"], "ms")


def test_greedy_decode_makes_the_tokens_generate_makes(models: dict) -> None:
    import torch

    from mlee.runners import transformers_backend as tb
    from mlee.runners.options import RunOptions

    hf = tb.load_model(str(models["gpt2"]), None, "float32", "cpu", 1, 0)
    options = RunOptions(backend="transformers", input_tokens=7, n_samples=3, seed=3)
    [batch] = tb.make_batches(hf, tb.make_queries(hf, options, 3), 3)
    ours = tb.decode(hf, tb.prefill(hf, batch), 5)
    with torch.inference_mode():
        theirs = hf.model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=False,
                                   max_new_tokens=6, min_new_tokens=6, pad_token_id=0)[:, 7:]
    assert torch.equal(ours, theirs)


def test_text_classification_from_jsonl(tmp_path: Path, rapl: TickingRapl, models: dict) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"text": "the cat sat on the mat"}\n{"text": "a dog"}\n\n{"prompt": "energy is joule"}\n')
    res = _infer(models["bert"], tmp_path / "out", "--data-path", str(data))
    assert res.exit_code == 0, res.output
    r = _only_results(tmp_path / "out")
    hf = r["transformers"]
    assert hf["task"] == "text-classification" and hf["queries"] == 3 and hf["inputs"]["synthetic"] is False
    assert hf["input_tokens"] == 6 + 2 + 3  # words of the prompts, padding not counted
    assert hf["per_output_token"] is None and "phases" not in hf  # no tokens made: no figure, never a zero
    assert _total(hf["per_input_token"]) == pytest.approx(_total(r["per_sample"]) * 3 / 11)
    assert [w["name"] for w in r["windows"] if w["measured"]] == ["repeat-0"]
    assert r["dataset"] == "text-classification:prompts.jsonl"


def test_image_classification_from_a_folder_and_synthetic(tmp_path: Path, rapl: TickingRapl, models: dict) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (40 + i, 50), (i * 60, 90, 200)).save(images / f"{i}.png")
    res = _infer(models["vit"], tmp_path / "local", "--data-path", str(images))
    assert res.exit_code == 0, res.output
    assert _only_results(tmp_path / "local")["transformers"]["queries"] == 3
    res = _infer(models["vit"], tmp_path / "synthetic", "--n-batches", "2")
    assert res.exit_code == 0, res.output
    hf = _only_results(tmp_path / "synthetic")["transformers"]
    assert hf["inputs"] == {"synthetic": True, "source": "synthetic", "kind": "image", "image_size_px": 32,
                            "channels": 3}
    assert hf["queries"] == 4 and hf["per_input_token"] is None


def test_speech_recognition_from_wav_files(tmp_path: Path, rapl: TickingRapl, models: dict) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    hb.write_wav(clips / "a.wav", 0.5)
    hb.write_wav(clips / "b.wav", 0.3)
    res = _infer(models["wav2vec2"], tmp_path / "out", "--data-path", str(clips))
    assert res.exit_code == 0, res.output
    hf = _only_results(tmp_path / "out")["transformers"]
    assert hf["task"] == "automatic-speech-recognition" and hf["queries"] == 2
    assert hf["inputs"]["sampling_rate_hz"] == 16000
    hb.write_wav(clips / "c.wav", 0.2, rate_hz=8000)
    res = _infer(models["wav2vec2"], tmp_path / "bad", "--data-path", str(clips))
    assert res.exit_code == 2 and "8000 Hz" in res.stderr and "Traceback" not in res.output


def test_whisper_decodes_speech_in_a_prefill_and_a_decode_window(tmp_path: Path, rapl: TickingRapl,
                                                                   models: dict) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, seconds in (("a", 0.5), ("b", 0.3), ("c", 1.4)):  # shorter and longer than the 1 s window
        hb.write_wav(clips / f"{name}.wav", seconds)
    res = _infer(models["whisper"], tmp_path / "out", "--data-path", str(clips), "--max-new-tokens", "4")
    assert res.exit_code == 0, res.output
    r = _only_results(tmp_path / "out")
    assert problem("results", r) is None
    assert [w["name"] for w in r["windows"] if w["measured"]] == ["prefill-0", "decode-0"]
    hf = r["transformers"]
    assert hf["task"] == "automatic-speech-recognition" and hf["architecture"] == "WhisperForConditionalGeneration"
    assert hf["queries"] == 3 and hf["output_tokens"] == 12 and hf["max_new_tokens"] == 4
    assert hf["input_tokens"] == 0 and hf["per_input_token"] is None  # audio: no input tokens, no made-up figure
    assert _total(hf["per_output_token"]) == pytest.approx(
        (_total(hf["phases"]["prefill"]) + _total(hf["phases"]["decode"])) / 12)
    assert hf["phases"]["decode"]["tokens"] == 9 and hf["phases"]["prefill"]["per_token"] is None
    assert r["dataset"] == "automatic-speech-recognition:clips"
    res = _infer(models["whisper"], tmp_path / "synthetic", "--n-samples", "2", "--max-new-tokens", "3")
    assert res.exit_code == 0, res.output
    assert _only_results(tmp_path / "synthetic")["transformers"]["inputs"]["synthetic"] is True
    res = _infer(models["whisper"], tmp_path / "layers", "--per-layer", "--n-samples", "2")
    assert res.exit_code == 2 and "--per-layer does not break sequence-to-sequence" in res.stderr


def test_whisper_greedy_decode_makes_the_tokens_generate_makes(models: dict) -> None:
    import numpy as np
    import torch

    from mlee.runners import hf_seq2seq
    from mlee.runners import transformers_backend as tb

    hf = tb.load_model(str(models["whisper"]), None, "float32", "cpu", 1, 0)
    rng = np.random.default_rng(1)
    clips = [0.1 * rng.standard_normal(12000).astype(np.float32) for _ in range(2)]
    x = torch.from_numpy(hf_seq2seq.features(hf.processor, clips))
    mine = tb.decode(hf, tb.prefill(hf, {"input_features": x}), 4)
    with torch.inference_mode():
        theirs = hf.model.generate(x, do_sample=False, max_new_tokens=5, min_new_tokens=5)
    assert mine.shape == (2, 5)
    assert torch.equal(mine, theirs[:, -5:])


def test_a_hub_id_fails_at_once_offline(tmp_path: Path) -> None:
    res = _infer(Path("openai-community/gpt2"), tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert res.stderr.count("error:") == 1 and "HF_HUB_OFFLINE" in res.stderr
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


@pytest.mark.parametrize(("args", "needle"), [
    (["--task", "translation"], "unknown --task 'translation'"),
    (["--dtype", "float8"], "unknown --dtype 'float8'"),
    (["--max-new-tokens", "0"], "--max-new-tokens 0 must be a positive"),
    (["--dataset", "digits"], "--dataset digits does not go with --backend transformers"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, models: dict, args: list[str], needle: str) -> None:
    res = _infer(models["gpt2"], tmp_path / "out", *args)
    assert res.exit_code == 2 and needle in " ".join(res.stderr.split()), res.output
    assert not (tmp_path / "out").exists()


def test_a_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = _infer(tmp_path / "empty", tmp_path / "out")
    assert res.exit_code == 2 and "no config.json" in res.stderr


def test_merge_summarises_the_per_token_figures_and_relative_rates_them(tmp_path: Path, rapl: TickingRapl,
                                                                         models: dict) -> None:
    out = tmp_path / "out"
    for _ in range(2):
        assert _infer(models["gpt2"], out, "--n-batches", "1", "--max-new-tokens", "3").exit_code == 0
    assert _infer(models["bert"], out, "--n-batches", "1").exit_code == 0
    db_path = tmp_path / "db.json"
    res = CliRunner().invoke(app, ["merge", str(out), "-o", str(db_path)], env=ENV)
    assert res.exit_code == 0, res.output
    db = json.loads(db_path.read_text())
    assert problem("database", db) is None
    by_model = {s["model"]: s for s in db["summaries"]}
    gpt2 = by_model["gpt2"]
    assert gpt2["n"] == 2 and gpt2["dataset"] == "text-generation:synthetic"
    records = [r for r in db["records"] if r["model"] == "gpt2"]
    figures = [r["transformers"]["per_output_token"]["energy_j"]["total"] for r in records]
    assert gpt2["transformers"]["output_token_energy_j"]["mean"] == pytest.approx(sum(figures) / 2)
    assert by_model["bert"]["transformers"]["output_token_energy_j"]["mean"] is None  # classifiers make no tokens
    res = CliRunner().invoke(app, ["rate", str(db_path), "--spec", "relative", "--json"], env=ENV)
    assert res.exit_code == 0, res.output
    rated = {r["model"]: r for r in json.loads(res.stdout)}
    assert rated["gpt2"]["dataset"] == "text-generation:synthetic" and rated["gpt2"]["n"] == 2
    # Issue 19: a transformers run is rated under its pipeline task, on energy per query and per token.
    assert rated["gpt2"]["task"] == "text-generation" and rated["bert"]["task"] == "text-classification"
    energy = rated["gpt2"]["metrics"]["energy_per_query"]["value"]
    assert energy == pytest.approx(gpt2["per_sample"]["energy_j"]["mean"])
    # The label shows the per-token figures: rated where the spec rates them, the others unrated (no letter).
    content = label_content(rated["gpt2"])
    lines = {ln.key: ln for b in content.blocks for ln in b.lines}
    per_token = gpt2["transformers"]["output_token_energy_j"]["mean"]
    assert lines["energy_per_output_token"].text == format_value("", per_token, "J")
    assert lines["energy_per_output_token"].rating == "A" and lines["tokens_per_s"].rating is None
    assert sum(ln.key == "energy_per_output_token" for b in content.blocks for ln in b.lines) == 1
    assert "decode_energy_per_token" not in lines  # a summary keeps no phases: no line rather than a made-up one
    single = label_content(rated["bert"])
    keys = {ln.key for b in single.blocks for ln in b.lines}
    assert "energy_per_input_token" in keys and "energy_per_output_token" not in keys
    res = CliRunner().invoke(app, ["label", str(db_path), "--all", "--spec", "relative", "-o", str(tmp_path / "l")],
                             env=ENV)
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "l").glob("*.pdf"))) == 2


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_per_layer_breaks_a_transformer_down(tmp_path: Path, rapl: TickingRapl, models: dict, name: str) -> None:
    res = _infer(models[name], tmp_path / "out", "--n-batches", "1", "--per-layer", "--max-new-tokens", "2")
    assert res.exit_code == 0, res.output
    r = _only_results(tmp_path / "out")
    breakdown = r["per_layer"]
    assert [w for w in r["windows"] if w["name"] == "per-layer"][0]["measured"] is False
    assert breakdown["layers_sum"]["energy_j"] + breakdown["outside_layers"]["energy_j"] == pytest.approx(
        breakdown["energy_j"], rel=1e-6)
    categories = breakdown["categories"]
    assert {"attention", "mlp", "embedding", "norm", "head", "other"} == set(categories), categories
    assert categories["head"]["layers"] == (4 if name == "bert" else 1)  # BERT: classifier and pooler (3)
    # Every layer is in one category: the categories add up to the layers, nothing counted twice.
    assert sum(c["layers"] for c in categories.values()) == len(breakdown["layers"])
    assert sum(c["energy_j"] for c in categories.values()) == pytest.approx(
        sum(layer["energy_j"] for layer in breakdown["layers"]))


def test_fine_tuning_measures_each_epoch_and_the_energy_per_training_token(tmp_path: Path, rapl: TickingRapl,
                                                                           models: dict) -> None:
    data = tmp_path / "train.jsonl"
    rows = [("the cat sat on the mat", 0), ("a dog was slow", 1), ("energy is joule", 2), ("the model is fast", 1),
            ("watt", 0)]
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["train", "--backend", "transformers", "-m", str(models["bert"]), "-o", str(out),
                                   "--data-path", str(data), "--epochs", "2", "--batch-size", "2", "--lr", "0.001",
                                   "--optimizer", "adam", "--threads", "1", "--warmup-batches", "0"], env=ENV)
    assert res.exit_code == 0, res.output
    r = _only_results(out)
    assert problem("results", r) is None
    assert [w["name"] for w in r["windows"] if w["measured"]] == ["epoch-1", "epoch-2"]
    training = r["training"]
    assert training["tokens_per_epoch"] == 6 + 4 + 3 + 4 + 1 and training["epochs"] == 2
    windows = [w for w in r["windows"] if w["measured"]]
    assert _total(training["per_token"]) == pytest.approx(sum(_total(w) for w in windows) / 2 / 18)
    assert training["per_epoch"]["energy_j"] == pytest.approx(sum(_total(w) for w in windows) / 2)
    assert [h["epoch"] for h in training["history"]] == [1, 2] and r["dataset"] == "text-classification:train.jsonl"
    assert r["metrics"]["top1"] is None  # no held-out split: training accuracy stays in the history
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a cat", "label": 7}\n')
    res = CliRunner().invoke(app, ["train", "--backend", "transformers", "-m", str(models["bert"]), "-o",
                                   str(tmp_path / "bad"), "--data-path", str(bad)], env=ENV)
    assert res.exit_code == 2 and "the model has 3 classes" in " ".join(res.stderr.split()), res.output


def test_transformers_options_need_the_transformers_backend(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["infer", "-m", "ResNet50", "--max-new-tokens", "8", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "go with --backend transformers" in " ".join(res.stderr.split()), res.output
    res = CliRunner().invoke(app, ["infer", "-m", "ResNet50", "--backend", "transformer", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "did you mean transformers?" in res.stderr
