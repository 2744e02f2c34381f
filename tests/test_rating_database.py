"""Rating a merged database: groups, references, repeats, filters, estimates, relative indices, calibration."""

from __future__ import annotations

import copy
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlee.errors import RatingError, UsageError
from mlee.rating import (LETTERS, calibrate, compound, index_of, load_spec, quantile, rate_database, rate_index,
                         spec_from_dict)

CPU = "AMD EPYC 7B13 - PyTorch 2.14.1"
GPU = "A100 x8 - TensorFlow 2.8.0"


def rec(model: str, env: str = CPU, *, task: str = "inference", dataset: str = "synthetic", energy: float | None = 1.0,
        time_ms: float | None = 10.0, top1: float | None = 0.7, top5: float | None = 0.9, params: int = 25_000_000,
        flops: float = 8e9, method: str = "counter", rid: str | None = None, estimated: bool = False,
        status: str = "completed", training: dict | None = None) -> dict:
    """A database record (docs/design.md §3) with just what rating reads."""
    return {
        "id": rid or f"{task[:5]}-{model}-{env[:4]}-{dataset}", "kind": "infer" if task == "inference" else "train",
        "status": status, "task": task, "model": model, "backend": {"name": "pytorch", "version": "2.14.1"},
        "environment": env, "dataset": dataset, "device": "cpu", "estimated": estimated,
        "energy_method": {"total": method},
        "per_sample": {"energy_j": {"total": energy}, "energy_method": {"total": method}, "time_ms": time_ms},
        "metrics": {"top1": top1, "top5": top5, "loss": None},
        "model_info": {"parameters": params, "flops": flops, "weights_bytes": params * 4},
        "training": training,
    }


def db(*records: dict, summaries: list | None = None) -> dict:
    return {"schema_version": 1, "kind": "mlee-database", "mlee_version": "0.1.0", "records": list(records),
            "summaries": summaries or [], "skipped": []}


def trio() -> dict:
    return db(rec("ResNet50"), rec("MobileNetV2", energy=0.25, time_ms=4.0, top1=0.65, params=3_500_000, flops=6e8),
              rec("VGG16", energy=4.0, time_ms=30.0, top1=0.71, params=138_000_000, flops=3.1e10))


def by_model(rated: list[dict]) -> dict[str, dict]:
    return {r["model"]: r for r in rated}


# ------------------------------------------------------------------------------------------------------ shape


def test_rated_record_has_the_design_shape():
    database = trio()
    rated = rate_database(database, "mlee")
    assert [r["model"] for r in rated] == ["MobileNetV2", "ResNet50", "VGG16"]
    first = rated[0]
    assert {"id", "model", "task", "dataset", "environment", "spec", "reference", "compound", "metrics", "estimated",
            "record"} <= set(first)
    assert first["spec"] == {"name": "mlee", "version": 2, "sha256": load_spec("mlee").sha256}
    assert first["reference"] == "ResNet50" and first["task"] == "inference" and first["environment"] == CPU
    assert first["record"] is database["records"][1]  # the record it was computed from, not a copy
    energy = first["metrics"]["energy_per_sample"]
    assert {"label", "value", "unit", "index", "rating", "weight", "method"} <= set(energy)
    assert energy["label"] == "Energy per sample" and energy["unit"] == "J" and energy["method"] == "counter"
    assert energy["value"] == 0.25 and energy["index"] == 4.0 and energy["rating"] == "A"
    assert json.loads(json.dumps(rated, allow_nan=False)) == rated  # plain JSON


def test_values_indices_and_ratings_follow_the_spec():
    rated = by_model(rate_database(trio(), "mlee"))
    ref = rated["ResNet50"]
    assert ref["compound"] == "C"
    assert {m["rating"] for m in ref["metrics"].values()} == {"C"}
    assert all(m["index"] == 1.0 for m in ref["metrics"].values())
    mobile = rated["MobileNetV2"]["metrics"]
    assert mobile["time_per_sample"]["index"] == 2.5 and mobile["time_per_sample"]["rating"] == "A"
    assert mobile["top1"]["value"] == pytest.approx(65.0) and mobile["top1"]["unit"] == "%"
    assert mobile["top1"]["index"] == pytest.approx(0.65 / 0.7) and mobile["top1"]["rating"] == "E"
    assert mobile["parameters"]["value"] == pytest.approx(3.5) and mobile["parameters"]["rating"] == "A"
    assert mobile["gflops"]["value"] == pytest.approx(0.6)
    vgg = rated["VGG16"]["metrics"]
    assert vgg["energy_per_sample"]["index"] == 0.25 and vgg["energy_per_sample"]["rating"] == "E"
    assert rated["VGG16"]["compound"] == "E"
    # The compound is the spec's mode over the metric ratings.
    spec = load_spec("mlee")
    for r in rated.values():
        letters = [r["metrics"][m.key]["rating"] for m in spec.task("inference").metrics]
        assert r["compound"] == compound(letters, [m.weight for m in spec.task("inference").metrics],
                                         "median-pessimistic")


def test_missing_value_rates_e_with_na():
    database = db(rec("ResNet50"), rec("Tiny", top1=None, top5=None, energy=None))
    tiny = by_model(rate_database(database, "mlee"))["Tiny"]["metrics"]
    for key in ("top1", "top5", "energy_per_sample"):
        assert tiny[key]["value"] is None and tiny[key]["index"] is None and tiny[key]["rating"] == "E"
    # a reference without a figure: every index of that metric is n/a (never invented)
    database = db(rec("ResNet50", top1=None), rec("Tiny"))
    assert by_model(rate_database(database, "mlee"))["Tiny"]["metrics"]["top1"]["index"] is None


def test_non_finite_or_wrongly_typed_figures_are_na():
    database = db(rec("ResNet50"), rec("Odd", energy=float("inf"), time_ms=True))  # type: ignore[arg-type]
    odd = by_model(rate_database(database, "mlee"))["Odd"]["metrics"]
    assert odd["energy_per_sample"]["value"] is None and odd["time_per_sample"]["value"] is None


# ------------------------------------------------------------------------------------------------------ groups


def test_groups_are_task_dataset_environment():
    database = db(rec("ResNet50"), rec("MobileNetV2", energy=0.5),
                  rec("ResNet50", GPU, energy=0.1), rec("MobileNetV2", GPU, energy=0.2),
                  rec("ResNet50", dataset="digits", energy=2.0), rec("MobileNetV2", dataset="digits", energy=1.0))
    rated = rate_database(database, "mlee", model="MobileNetV2")
    indices = {(r["dataset"], r["environment"]): r["metrics"]["energy_per_sample"]["index"] for r in rated}
    assert indices == {("digits", CPU): 2.0, ("synthetic", GPU): 0.5, ("synthetic", CPU): 2.0}


def test_missing_reference_lists_the_group_and_the_command():
    database = db(rec("MobileNetV2"), rec("VGG16"), rec("ResNet50", GPU), rec("VGG16", GPU))
    with pytest.raises(RatingError) as info:
        rate_database(database, "mlee")
    text = str(info.value)
    assert f"no reference model ResNet50 in group inference / synthetic / {CPU}" in text
    assert "the group has: MobileNetV2, VGG16" in text
    assert "mlee infer --model ResNet50 --backend pytorch --dataset synthetic" in text
    # Another group with its reference still rates when it alone is asked for.
    assert [r["model"] for r in rate_database(database, "mlee", env=GPU)] == ["ResNet50", "VGG16"]


def test_reference_by_another_preset():
    database = trio()
    with pytest.raises(RatingError, match="no reference model ResNet101"):
        rate_database(database, "mlee-2022")


def test_output_is_deterministic_whatever_the_record_order():
    records = trio()["records"] + [rec("ResNet50", GPU), rec("VGG16", GPU, energy=3.0)]
    first = json.dumps(rate_database(db(*records), "mlee"), sort_keys=True)
    for seed in range(3):
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        assert json.dumps(rate_database(db(*shuffled), "mlee"), sort_keys=True) == first


def test_failed_runs_and_sessions_without_a_model_are_not_rated():
    failed = rec("VGG16", energy=0.01, status="failed", rid="failed-one")
    session = {"id": "run-x", "kind": "run", "status": "completed", "energy_j": {"total": 3.0}}
    rated = rate_database(db(*trio()["records"], failed, session), "mlee")
    assert "failed-one" not in {r["id"] for r in rated} and len(rated) == 3


def test_nothing_to_rate_is_an_error():
    with pytest.raises(RatingError, match="nothing to rate"):
        rate_database(db({"id": "run-x", "kind": "run", "status": "completed"}), "mlee")
    with pytest.raises(UsageError, match="not an mlee database"):
        rate_database({"records": "nope"}, "mlee")


# ------------------------------------------------------------------------------------------------------ repeats


def test_repeated_runs_are_rated_on_their_mean_and_carry_the_summary():
    runs = [rec("ResNet50", rid="r1", energy=1.0), rec("ResNet50", rid="r2", energy=3.0),
            rec("Small", rid="s1", energy=0.5, method="counter"),
            rec("Small", rid="s2", energy=0.5, method="estimate", estimated=True)]
    summary = {"task": "inference", "model": "ResNet50", "backend": {"name": "pytorch", "version": "2.14.1"},
               "environment": CPU, "dataset": "synthetic", "n": 2, "ids": ["r2", "r1"],
               "per_sample": {"energy_j": {"mean": 2.0, "std": 1.41}, "time_ms": {"mean": 10.0, "std": 0.0}},
               "estimated": False}
    rated = by_model(rate_database(db(*runs, summaries=[summary]), "mlee"))
    ref = rated["ResNet50"]
    assert ref["n"] == 2 and ref["id"] == "mean-of-2:r1"
    assert ref["metrics"]["energy_per_sample"]["value"] == 2.0
    assert ref["record"] is summary
    small = rated["Small"]
    assert small["metrics"]["energy_per_sample"]["index"] == 4.0
    # the mean of a measured and an estimated figure is only as good as the estimate
    assert small["metrics"]["energy_per_sample"]["method"] == "estimate" and small["estimated"] is True
    assert small["record"]["n"] == 2 and small["record"]["ids"] == ["s1", "s2"]  # summary built when absent


def test_estimated_energy_stays_flagged():
    database = db(rec("ResNet50", method="estimate", estimated=True), rec("Other", energy=0.5))
    rated = by_model(rate_database(database, "mlee"))
    assert rated["ResNet50"]["estimated"] is True
    assert rated["ResNet50"]["metrics"]["energy_per_sample"]["method"] == "estimate"
    assert rated["Other"]["estimated"] is False
    assert rated["Other"]["metrics"]["energy_per_sample"]["method"] == "counter"
    assert rated["Other"]["metrics"]["time_per_sample"]["method"] is None  # not an energy figure


# ------------------------------------------------------------------------------------------------------ filters


def test_filters_select_output_not_comparison():
    database = trio()
    everything = by_model(rate_database(database, "relative"))
    only = rate_database(database, "relative", model="VGG16")
    assert len(only) == 1 and only[0] == everything["VGG16"]
    assert rate_database(database, "mlee", task="inference", env=CPU.upper(), model="vgg16")[0]["model"] == "VGG16"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"env": "TPU v9"}, f"no environment 'TPU v9' in the database (it has: {CPU})"),
    ({"model": "GPT"}, "no model 'GPT' in the database (it has: MobileNetV2; ResNet50; VGG16)"),
    ({"task": "training"}, "the database has no training run (it has: inference)"),
    ({"task": "profiling"}, "spec mlee does not rate task 'profiling'"),
])
def test_unknown_filter_lists_what_the_database_has(kwargs, fragment):
    with pytest.raises(UsageError) as info:
        rate_database(trio(), "mlee", **kwargs)
    assert fragment in str(info.value)


# ------------------------------------------------------------------------------------------------------ training


def training(per_epoch_j: float, per_epoch_s: float, nominal: int | None) -> dict:
    return {"epochs": 2, "nominal_epochs": nominal, "history": [],
            "per_epoch": {"energy_j": per_epoch_j, "time_s": per_epoch_s},
            "total": {"energy_j": 2 * per_epoch_j, "time_s": 2 * per_epoch_s}}


def trained(model: str, gpu_per_epoch_j: float, per_epoch_s: float, nominal: int | None) -> dict:
    """A training record whose GPU used ``gpu_per_epoch_j`` per epoch and whose CPU used as much again."""
    record = rec(model, task="training", training=training(2 * gpu_per_epoch_j, per_epoch_s, nominal),
                 top1=None, top5=None)
    record["energy_j"] = {"gpu": 2 * gpu_per_epoch_j, "cpu": 2 * gpu_per_epoch_j, "total": 4 * gpu_per_epoch_j}
    record["energy_method"] = {"gpu": "power_integration", "cpu": "counter", "total": "power_integration"}
    return record


def test_training_extrapolates_to_nominal_epochs_and_takes_accuracy_from_inference():
    database = db(
        trained("ResNet101", 3.6e6, 3600.0, 90), trained("MobileNetV2", 1.8e6, 1800.0, 300),
        trained("EfficientNetB0", 1.8e6, 1800.0, None),
        rec("ResNet101", top1=0.77), rec("MobileNetV2", top1=0.72), rec("EfficientNetB0", top1=0.78))
    rated = {(r["task"], r["model"]): r for r in rate_database(database, "mlee-2022")}
    ref = rated[("training", "ResNet101")]["metrics"]
    # The paper's training energy is the GPU's alone: the CPU's equal share is not in it.
    assert ref["energy_per_epoch"]["value"] == pytest.approx(1.0) and ref["energy_per_epoch"]["unit"] == "kWh"
    assert ref["energy_total"]["value"] == pytest.approx(90.0)
    assert ref["time_total"]["value"] == pytest.approx(90.0) and ref["time_total"]["unit"] == "h"
    assert ref["top1"]["value"] == 0.77  # from the inference run of the same model, as logged (a fraction)
    mobile = rated[("training", "MobileNetV2")]["metrics"]
    assert mobile["energy_per_epoch"]["index"] == pytest.approx(2.0)
    assert mobile["energy_total"]["value"] == pytest.approx(150.0)
    assert mobile["energy_total"]["index"] == pytest.approx(0.6)
    assert mobile["energy_per_epoch"]["method"] == "power_integration"
    assert mobile["top1"]["index"] == 0.72 / 0.77
    effnet = rated[("training", "EfficientNetB0")]["metrics"]
    assert effnet["energy_total"]["value"] is None and effnet["energy_total"]["rating"] == "E"
    # The mlee preset counts the whole machine, CPU and GPU (ResNet50 is its reference: renamed here).
    for record in database["records"]:
        record["model"] = {"ResNet101": "ResNet50"}.get(record["model"], record["model"])
    corrected = {(r["task"], r["model"]): r for r in rate_database(database, "mlee")}
    assert corrected[("training", "ResNet50")]["metrics"]["energy_per_epoch"]["value"] == pytest.approx(7.2e6)


# ------------------------------------------------------------------------------------------------------ relative


def test_relative_rates_against_the_best_of_each_group():
    rated = by_model(rate_database(trio(), "relative"))
    assert all(r["reference"] is None for r in rated.values())
    mobile = rated["MobileNetV2"]["metrics"]
    assert mobile["energy_per_sample"]["index"] == 1.0 and mobile["energy_per_sample"]["rating"] == "A"
    assert rated["VGG16"]["metrics"]["top1"]["index"] == 1.0 and rated["VGG16"]["metrics"]["top1"]["rating"] == "A"
    assert rated["VGG16"]["metrics"]["energy_per_sample"]["index"] == pytest.approx(0.25 / 4.0)
    # the boundaries used are in every metric, so a reader can re-rate
    bounds = mobile["energy_per_sample"]["boundaries"]
    assert len(bounds) == 4 and all(a >= b for a, b in zip(bounds, bounds[1:]))
    for r in rated.values():
        for m in r["metrics"].values():
            assert m["rating"] == rate_index(m["index"], m["boundaries"])


# ------------------------------------------------------------------------------------------------------ equivalence


@st.composite
def databases(draw):
    envs = draw(st.lists(st.sampled_from([CPU, GPU, "X - Y 1"]), min_size=1, max_size=3, unique=True))
    figure = st.one_of(st.none(), st.just(0.0), st.floats(0.01, 100.0))
    records = []
    for env in envs:
        for model in ["ResNet50"] + draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), max_size=4, unique=True)):
            for repeat in range(draw(st.integers(1, 2))):
                records.append(rec(model, env, rid=f"{env}-{model}-{repeat}", energy=draw(figure),
                                   time_ms=draw(figure), top1=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
                                   top5=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
                                   params=draw(st.integers(1, 10**9)), flops=draw(st.floats(1.0, 1e12))))
    return db(*records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(databases(), st.sampled_from(["paper-median", "median-optimistic", "mean-pessimistic", "best", "worst"]))
def test_rating_loop_equals_the_pure_functions(database, mode):
    data = load_spec("mlee").to_dict()
    data["compound"] = mode
    spec = spec_from_dict(data)
    task = spec.task("inference")
    rated = rate_database(database, spec)
    refs = {r["environment"]: r for r in rated if r["model"] == "ResNet50"}
    for r in rated:
        letters = []
        for metric in task.metrics:
            got = r["metrics"][metric.key]
            ref_value = refs[r["environment"]]["metrics"][metric.key]["value"]
            expected = index_of(got["value"], ref_value, metric.higher_is_better)
            assert got["index"] == expected
            assert got["rating"] == rate_index(expected, metric.boundaries)
            letters.append(got["rating"])
        assert r["compound"] == compound(letters, [m.weight for m in task.metrics], mode)
        assert r["compound"] in LETTERS


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(databases())
def test_relative_rating_equals_the_pure_functions_against_the_group_best(database):
    spec = load_spec("relative")
    task = spec.task("inference")
    rated = rate_database(database, spec)
    for r in rated:
        group = [g for g in rated if g["environment"] == r["environment"]]
        letters = []
        for metric in task.metrics:
            values = [g["metrics"][metric.key]["value"] for g in group]
            values = [v for v in values if v is not None and v >= 0]
            if not metric.higher_is_better:
                values = [v for v in values if v > 0]
            best = (max if metric.higher_is_better else min)(values) if values else None
            got = r["metrics"][metric.key]
            assert got["index"] == index_of(got["value"], best, metric.higher_is_better)
            assert got["rating"] == rate_index(got["index"], got["boundaries"])
            letters.append(got["rating"])
        assert r["compound"] == compound(letters, [m.weight for m in task.metrics], spec.compound)


# ------------------------------------------------------------------------------------------------------ calibrate


def test_calibrate_sets_boundaries_at_index_quantiles():
    database = db(rec("ResNet50"), *[rec(f"M{i}", energy=1.0 / (i + 1), time_ms=10.0 * (i + 1)) for i in range(8)])
    new = calibrate(database, "mlee", (0.8, 0.6, 0.4, 0.2))
    energy = next(m for m in new["tasks"]["inference"]["metrics"] if m["key"] == "energy_per_sample")
    indices = sorted([1.0] + [float(i + 1) for i in range(8)])
    assert energy["boundaries"] == [quantile(indices, q) for q in (0.8, 0.6, 0.4, 0.2)]
    assert new["name"] == "mlee-calibrated" and new["calibration"]["quantiles"] == [0.8, 0.6, 0.4, 0.2]
    assert new["calibration"]["from_spec"] == load_spec("mlee").ident()
    calibrated = spec_from_dict(new)
    assert calibrated.sha256 != load_spec("mlee").sha256
    # training had no runs: kept as it was
    assert new["tasks"]["training"] == load_spec("mlee").to_dict()["tasks"]["training"]
    assert new["calibration"]["tasks"]["training"]["note"] == "no runs: boundaries kept"
    # top1 is equal for every model (0.7): no spread, boundaries kept and said so
    top1 = new["calibration"]["tasks"]["inference"]["metrics"]["top1"]
    assert top1["status"].startswith("kept: quantiles not strictly descending")


def test_calibrating_one_task_never_overwrites_another_tasks_shared_metric():
    records = [rec("ResNet50"), rec("Big", params=100_000_000), rec("Small", params=5_000_000),
               rec("Mid", params=12_000_000), rec("Tiny", params=1_000_000)]
    records += [rec(r["model"], task="training", params=r["model_info"]["parameters"] * 3,
                    training=training(100.0, 10.0, 90)) for r in records]
    base = load_spec("mlee")
    new = calibrate(db(*records), base)
    params = {t: next(m for m in new["tasks"][t]["metrics"] if m["key"] == "parameters")["boundaries"]
              for t in ("inference", "training")}
    inference_indices = sorted([1.0, 0.25, 5.0, 25 / 12, 25.0])
    assert params["inference"] == [quantile(inference_indices, q) for q in (0.8, 0.6, 0.4, 0.2)]
    assert params["training"] == params["inference"]  # same ratios here, but computed from training runs
    only = calibrate(db(*records), base, task="training")
    kept = next(m for m in only["tasks"]["inference"]["metrics"] if m["key"] == "parameters")
    assert kept["boundaries"] == list(base.task("inference").metric("parameters").boundaries)
    assert "inference" not in only["calibration"]["tasks"]


def test_calibrating_relative_freezes_its_ratings():
    database = db(rec("ResNet50"), *[rec(f"M{i}", energy=0.2 * (i + 1), time_ms=3.0 * (i + 1), top1=0.5 + i / 40,
                                         params=(i + 1) * 4_000_000, flops=1e9 * (i + 1)) for i in range(9)])
    frozen = spec_from_dict(calibrate(database, "relative"))
    fixed = {m.key for m in frozen.task("inference").metrics if m.boundaries is not None}
    # top5 is the same for every model: nothing to calibrate, it stays on quantiles
    assert fixed == {"energy_per_sample", "time_per_sample", "top1", "parameters", "gflops"}
    before = rate_database(database, "relative")
    after = rate_database(database, frozen)
    assert [(r["model"], r["compound"], {k: m["rating"] for k, m in r["metrics"].items()}) for r in before] == \
           [(r["model"], r["compound"], {k: m["rating"] for k, m in r["metrics"].items()}) for r in after]


def test_calibrate_errors():
    with pytest.raises(UsageError, match="quantiles must be four numbers"):
        calibrate(trio(), "mlee", (0.2, 0.4, 0.6, 0.8))
    with pytest.raises(UsageError, match="quantiles must be four numbers"):
        calibrate(trio(), "mlee", (0.9, 0.5, 0.1))
    with pytest.raises(RatingError, match="no completed training run"):
        calibrate(trio(), "mlee", task="training")
    no_ref = copy.deepcopy(trio())
    no_ref["records"] = no_ref["records"][1:]  # without ResNet50
    with pytest.raises(RatingError, match="no reference model ResNet50"):
        calibrate(no_ref, "mlee")
