"""Rating specs: presets, JSON/TOML loading, canonical hashing and the errors bad specs give."""

from __future__ import annotations

import copy
import json
import random

import pytest

from mlee.errors import UsageError
from mlee.rating import PRESETS, Spec, load_spec, spec_from_dict
from mlee.rating.spec import PRESET_DIR

#: The issue's mlee-2022 inference weights and boundaries, in the paper's metric order.
PAPER_INFERENCE = {
    "parameters": (0.4, [8.38693941043089, 4.890141530279823, 2.2085269642064627, 0.7401076886128988]),
    "gflops": (0.2, [19.202413664139083, 2.672784226215358, 0.6778094910273934, 0.0]),
    "fsize": (0.4, [8.220889289073853, 4.846457648811878, 2.1757111878022473, 0.7399062909502832]),
    "energy_per_sample": (0.7, [1.8052095901385745, 1.1358154469107322, 0.8662052302144096, 0.49503222117931994]),
    "time_per_sample": (0.3, [1.7313204215431415, 1.15037553829267, 0.8826389701854338, 0.49431878902092663]),
    "top1": (0.8, [1.0214309865015994, 1.0, 0.9534968399698301, 0.9289148797920729]),
    "top5": (0.2, [1.0124626126278988, 1.0, 0.9741456338868539, 0.9658507486124669]),
}


def minimal(**over) -> dict:
    data = {
        "name": "tiny", "version": 1, "compound": "median-optimistic", "reference": "RefNet",
        "tasks": {"inference": {"metrics": {
            "energy_per_sample": {"unit": "J", "direction": "lower", "weight": 1, "boundaries": [2, 1.25, 0.8, 0.5],
                                  "value": "per_sample.energy_j.total"},
            "top1": {"unit": "%", "direction": "higher", "weight": 1, "boundaries": [1.05, 1.01, 0.99, 0.95],
                     "value": "metrics.top1", "scale": 100},
        }}},
    }
    data.update(over)
    return data


# ------------------------------------------------------------------------------------------------------ presets


HF_TASKS = ("text-generation", "text-classification", "image-classification", "automatic-speech-recognition")


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "ai-energy-score"])
def test_presets_load_and_are_complete(name):
    spec = load_spec(name)
    assert spec.name == name and spec.version >= 1 and spec.source == f"preset:{name}"
    assert spec.task_names[:2] == ("inference", "training")
    assert spec.task_names[2:] in ((), HF_TASKS)  # issue 19: the transformers pipeline tasks, where rated
    assert len(spec.sha256) == 64
    inference_keys = [m.key for m in spec.task("inference").metrics]
    # The keys labels and the report look for are the same in every preset.
    for key in ("energy_per_sample", "time_per_sample", "top1", "top5", "parameters", "gflops"):
        assert key in inference_keys
    for key in ("energy_per_epoch", "energy_total", "time_per_epoch", "time_total", "top1", "top5"):
        assert key in [m.key for m in spec.task("training").metrics]


def test_default_spec_is_the_mlee_preset():
    assert load_spec().name == "mlee"
    assert load_spec(None).sha256 == load_spec("mlee").sha256


def test_mlee_2022_inference_is_exactly_the_papers():
    spec = load_spec("mlee-2022")
    task = spec.task("inference")
    assert spec.compound == "paper-median" and task.reference == "ResNet101"
    assert [m.key for m in task.metrics] == list(PAPER_INFERENCE)
    for metric in task.metrics:
        weight, bounds = PAPER_INFERENCE[metric.key]
        assert metric.weight == weight
        assert list(metric.boundaries) == bounds  # bit-exact, not approximately
    directions = {m.key: m.direction for m in task.metrics}
    assert directions == {"parameters": "lower", "gflops": "lower", "fsize": "lower", "energy_per_sample": "lower",
                          "time_per_sample": "lower", "top1": "higher", "top5": "higher"}
    units = {m.key: m.unit for m in task.metrics}
    assert units["energy_per_sample"] == "Ws" and units["time_per_sample"] == "ms" and units["parameters"] == "M"


def test_mlee_2022_training_uses_kwh_and_hours_and_nominal_epochs():
    task = load_spec("mlee-2022").task("training")
    by_key = {m.key: m for m in task.metrics}
    assert by_key["energy_per_epoch"].unit == "kWh" and by_key["energy_total"].unit == "kWh"
    assert by_key["time_per_epoch"].unit == "h" and by_key["time_total"].unit == "h"
    assert by_key["energy_total"].times == "training.nominal_epochs"
    # The paper's code: GPU (NVML) energy / epochs / 3600000 * nominal epochs, divided in that order.
    assert (by_key["energy_per_epoch"].value, by_key["energy_per_epoch"].per) == ("energy_j.gpu", "training.epochs")
    assert by_key["energy_per_epoch"].divisor == 3.6e6 and by_key["energy_per_epoch"].scale == 1.0
    assert by_key["time_per_epoch"].divisor == 3600
    # The paper rated training with the inference run's accuracy.
    assert by_key["top1"].from_task == "inference"
    weights = {k: m.weight for k, m in by_key.items()}
    assert weights == {"parameters": 0.4, "gflops": 0.2, "fsize": 0.4, "energy_per_epoch": 0.2, "energy_total": 0.7,
                       "time_per_epoch": 0.2, "time_total": 0.3, "top1": 0.8, "top5": 0.2}


def test_mlee_preset_reference_is_rated_c_on_every_metric():
    # Boundaries straddle 1: the reference is the middle of the scale, by design.
    from mlee.rating import rate_index

    for task in load_spec("mlee").tasks:
        for metric in task.metrics:
            assert rate_index(1.0, metric.boundaries) == "C", metric.key
        assert sum(m.weight for m in task.metrics) == pytest.approx(1.0)


def test_relative_preset_uses_quantiles_and_no_reference():
    spec = load_spec("relative")
    assert spec.index_base == "best"
    for task in spec.tasks:
        assert task.reference is None
        assert all(m.quantiles == (0.8, 0.6, 0.4, 0.2) and m.boundaries is None for m in task.metrics)


# ------------------------------------------------------------------------------------------------------ hashing


def test_hash_is_pinned_for_the_paper_preset():
    # A change to the shipped mlee-2022 file changes every label's printed hash: it must be deliberate.
    assert load_spec("mlee-2022").sha256 == PINNED_2022


PINNED_2022 = "7e30b96870a09373951889312fd3fa2bae174c5c43e60b33b3361476f4d59eb1"


def test_hash_ignores_key_order_and_int_vs_float(tmp_path):
    base = spec_from_dict(minimal())
    data = minimal()
    data["tasks"]["inference"]["metrics"]["energy_per_sample"]["weight"] = 1.0
    data["tasks"]["inference"]["metrics"]["top1"]["boundaries"] = [1.05, 1.01, 0.99, 0.95]
    shuffled = {k: data[k] for k in random.Random(3).sample(list(data), len(data))}
    metric = shuffled["tasks"]["inference"]["metrics"]["energy_per_sample"]
    shuffled["tasks"]["inference"]["metrics"]["energy_per_sample"] = dict(reversed(list(metric.items())))
    assert spec_from_dict(shuffled).sha256 == base.sha256


def test_hash_is_the_same_for_json_and_toml(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(minimal()), encoding="utf-8")
    (tmp_path / "s.toml").write_text("""
name = "tiny"
version = 1
compound = "median-optimistic"
reference = "RefNet"

[tasks.inference.metrics.energy_per_sample]
unit = "J"
direction = "lower"
weight = 1
boundaries = [2, 1.25, 0.8, 0.5]
value = "per_sample.energy_j.total"

[tasks.inference.metrics.top1]
unit = "%"
direction = "higher"
weight = 1
boundaries = [1.05, 1.01, 0.99, 0.95]
value = "metrics.top1"
scale = 100
""", encoding="utf-8")
    from_json = load_spec(str(tmp_path / "s.json"))
    from_toml = load_spec(str(tmp_path / "s.toml"))
    assert from_json.sha256 == from_toml.sha256
    assert from_json.to_dict() == from_toml.to_dict()


def test_hash_changes_with_anything_that_changes_a_rating():
    base = spec_from_dict(minimal()).sha256
    tweaks = []
    d = minimal()
    d["tasks"]["inference"]["metrics"]["top1"]["boundaries"][3] = 0.9500000000001
    tweaks.append(d)
    d = minimal()
    d["tasks"]["inference"]["metrics"]["top1"]["weight"] = 2
    tweaks.append(d)
    tweaks.append(minimal(compound="median-pessimistic"))
    tweaks.append(minimal(reference="OtherNet"))
    tweaks.append(minimal(version=2))
    d = minimal()
    metrics = d["tasks"]["inference"]["metrics"]
    d["tasks"]["inference"]["metrics"] = dict(reversed(list(metrics.items())))  # metric order matters
    tweaks.append(d)
    hashes = {spec_from_dict(t).sha256 for t in tweaks}
    assert base not in hashes and len(hashes) == len(tweaks)


def test_to_dict_round_trips_to_the_same_hash_and_is_canonical():
    for name in PRESETS:
        spec = load_spec(name)
        again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again.sha256 == spec.sha256
        assert again.to_dict() == spec.to_dict()


def test_spec_is_frozen():
    spec = load_spec("mlee")
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    assert isinstance(spec, Spec)


def test_shipped_preset_files_are_plain_json():
    for name in PRESETS:
        data = json.loads((PRESET_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert data["name"] == name


# ------------------------------------------------------------------------------------------------------ bad specs


def broken(path: list, value) -> dict:
    data = copy.deepcopy(minimal())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()
M = ["tasks", "inference", "metrics"]
E = M + ["energy_per_sample"]


@pytest.mark.parametrize("path, value, fragment", [
    (M, {}, "tasks.inference.metrics is missing or empty"),
    (["tasks"], {}, "tasks is missing or empty"),
    (E + ["unit"], DELETE, "tasks.inference.metrics.energy_per_sample.unit is missing"),
    (E + ["value"], DELETE, "tasks.inference.metrics.energy_per_sample.value must be a dotted record path"),
    (E + ["boundaries"], [2, 2, 0.8, 0.5], "energy_per_sample.boundaries must be strictly descending"),
    (E + ["boundaries"], [0.5, 0.8, 1.25, 2], "energy_per_sample.boundaries must be strictly descending"),
    (E + ["boundaries"], [2, 1, 0.5], "energy_per_sample.boundaries must be a list of four finite numbers"),
    (E + ["boundaries"], [2, 1, 0.5, -0.1], "energy_per_sample.boundaries must not be negative"),
    (E + ["boundaries"], DELETE, "energy_per_sample.boundaries is missing"),
    (E + ["weight"], -0.1, "energy_per_sample.weight must not be negative"),
    (E + ["weight"], "heavy", "energy_per_sample.weight must be a finite number"),
    (E + ["weight"], DELETE, "energy_per_sample.weight is missing"),
    (E + ["direction"], "up", "energy_per_sample.direction must be \"higher\" or \"lower\""),
    (E + ["weigth"], 1, "energy_per_sample.weigth: unknown field"),
    (E + ["scale"], 0, "energy_per_sample.scale must be positive"),
    (E + ["divisor"], 0, "energy_per_sample.divisor must be positive"),
    (E + ["per"], "training..epochs", "energy_per_sample.per must be a dotted record path"),
    (E + ["fallback"], 3, "energy_per_sample.fallback must be a dotted record path"),
    (["zero_division_index"], 1, "zero_division_index must be null or 0"),
    (E + ["quantiles"], [0.8, 0.6, 0.4, 0.2], "not both"),
    (["compound"], "plurality", "compound: unknown compound mode 'plurality'"),
    (["compound"], DELETE, "compound: unknown compound mode None"),
    (["reference"], DELETE, "tasks.inference.reference is missing"),
    (["version"], 0, "version must be a positive integer"),
    (["version"], "1", "version must be a positive integer"),
    (["name"], "", "name is missing"),
    (["index_base"], "median", "index_base must be one of"),
    (["colour"], "red", "colour: unknown field"),
])
def test_bad_spec_names_the_field(path, value, fragment):
    with pytest.raises(UsageError) as info:
        spec_from_dict(broken(path, value), source="bad.json")
    assert fragment in str(info.value)
    assert str(info.value).startswith("spec bad.json: ")


def test_new_value_steps_change_the_hash_and_leave_specs_without_them_as_they_were():
    base = spec_from_dict(minimal())
    assert "divisor" not in base.to_dict()["tasks"]["inference"]["metrics"][0]
    assert "zero_division_index" not in base.to_dict()
    for path, value in ((E + ["divisor"], 1000), (E + ["per"], "n_samples"), (E + ["fallback"], "energy_j.total"),
                        (["zero_division_index"], 0)):
        changed = spec_from_dict(broken(path, value))
        assert changed.sha256 != base.sha256
        assert spec_from_dict(changed.to_dict()).sha256 == changed.sha256  # the canonical form reads back


def test_all_zero_weights_is_an_error():
    data = minimal()
    for metric in data["tasks"]["inference"]["metrics"].values():
        metric["weight"] = 0
    with pytest.raises(UsageError, match="every weight is 0"):
        spec_from_dict(data)


def test_from_task_must_name_a_task_of_the_spec():
    data = minimal()
    data["tasks"]["inference"]["metrics"]["top1"]["from_task"] = "training"
    with pytest.raises(UsageError, match="top1.from_task: the spec has no task 'training'"):
        spec_from_dict(data)


def test_best_index_base_forbids_a_reference():
    with pytest.raises(UsageError, match="reference must be absent"):
        spec_from_dict(minimal(index_base="best"))


def test_metrics_as_a_list_keep_their_order_and_need_keys():
    data = minimal()
    items = data["tasks"]["inference"]["metrics"]
    data["tasks"]["inference"]["metrics"] = [dict(v, key=k) for k, v in reversed(list(items.items()))]
    spec = spec_from_dict(data)
    assert [m.key for m in spec.task("inference").metrics] == ["top1", "energy_per_sample"]
    data["tasks"]["inference"]["metrics"].append({"unit": "x"})
    with pytest.raises(UsageError, match=r"metrics\[2\] must be an object with a \"key\""):
        spec_from_dict(data)
    data["tasks"]["inference"]["metrics"][2] = dict(data["tasks"]["inference"]["metrics"][0])
    with pytest.raises(UsageError, match="metric 'top1' appears twice"):
        spec_from_dict(data)


def test_unknown_preset_or_missing_file_lists_the_presets():
    with pytest.raises(UsageError) as info:
        load_spec("mlee-2023")
    assert "not a preset and no such file" in str(info.value)
    assert "mlee, mlee-2022, relative" in str(info.value)


def test_file_that_is_not_json_is_a_format_error(tmp_path):
    bad = tmp_path / "spec.json"
    bad.write_text('{"name": "x", ', encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid JSON"):
        load_spec(str(bad))
    bad.write_text('{"name": NaN}', encoding="utf-8")
    with pytest.raises(UsageError, match="NaN is not a number a spec may hold"):
        load_spec(str(bad))
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_spec(str(bad))
    toml = tmp_path / "spec.toml"
    toml.write_text("name = ", encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_spec(str(toml))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(UsageError, match="must hold an object at the top level"):
        load_spec(str(listed))


def test_task_lookup_errors_list_the_tasks():
    with pytest.raises(UsageError, match="its tasks: inference, training"):
        load_spec("mlee").task("profiling")


def test_docs_state_the_presets_current_hashes():
    # The rating page of the docs prints each preset's hash for people comparing labels; it must not go stale.
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "rating.md").read_text(encoding="utf-8")
    for name in PRESETS:
        spec = load_spec(name)
        assert f"| `{name}` | {spec.version} | `{spec.sha256}` |" in docs
