"""Issue 19: transformers runs rated under their pipeline task, and the ai-energy-score preset's five equal bands."""

from __future__ import annotations

import csv
import io
import json

import pytest
from test_report_support import copy_database, database, hf_record, record, small_database
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import RatingError, UsageError
from mlee.rating import load_spec, rate_database, spec_from_dict
from mlee.rating.groups import range_column
from mlee.rating.records import record_keys
from mlee.rating.stars import star_text, stars_of

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}
GPT2 = "openai-community/gpt2"


def _by_model(rated: list[dict]) -> dict[str, dict]:
    return {r["model"]: r for r in rated}


def _generation_group() -> list[dict]:
    return [hf_record(GPT2, energy_j=0.5, token_j=0.05, latency_ms=40.0),
            hf_record("distilgpt2", energy_j=0.2, token_j=0.02, latency_ms=20.0, parameters=82_000_000),
            hf_record("gpt2-large", energy_j=2.0, token_j=0.2, latency_ms=160.0, parameters=774_000_000)]


# ------------------------------------------------------------------------------------------- tasks of the presets


def test_the_default_preset_rates_transformers_runs_per_pipeline_task_against_its_reference() -> None:
    db = small_database()
    db["records"] += _generation_group()
    rated = rate_database(db)
    tasks = {r["task"] for r in rated}
    assert tasks == {"inference", "text-generation"}  # ImageNet runs keep their task and reference
    gen = _by_model(r for r in rated if r["task"] == "text-generation")
    assert set(gen) == {GPT2, "distilgpt2", "gpt2-large"} and gen[GPT2]["reference"] == GPT2
    small = gen["distilgpt2"]["metrics"]
    assert list(small) == ["energy_per_query", "energy_per_output_token", "latency_p50", "parameters"]
    assert small["energy_per_query"]["index"] == pytest.approx(2.5) and small["energy_per_query"]["rating"] == "A"
    assert small["energy_per_output_token"]["value"] == pytest.approx(0.02)
    assert small["latency_p50"]["value"] == 20.0 and small["energy_per_query"]["method"] == "counter"
    assert gen["distilgpt2"]["compound"] == "A" and gen[GPT2]["compound"] == "C"
    assert gen["gpt2-large"]["metrics"]["energy_per_query"]["index"] == pytest.approx(0.25)
    assert gen["gpt2-large"]["compound"] == "E"
    assert all(r["reference"] == "ResNet50" for r in rated if r["task"] == "inference")


def test_a_missing_task_reference_says_how_to_measure_it_with_transformers() -> None:
    db = database([hf_record("tiny-bert", "text-classification", energy_j=0.1, token_j=0.003)])
    with pytest.raises(RatingError) as caught:
        rate_database(db)
    text = str(caught.value) + (caught.value.fix or "")
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in text
    assert "--backend transformers --task text-classification" in text and "--dataset" not in text


def test_relative_rates_each_pipeline_task_in_its_own_groups_and_task_inference_still_selects_them() -> None:
    db = database(_generation_group() + [hf_record("bert", "text-classification", token_j=0.01),
                                         record("ResNet50"), record("MobileNetV2", energy_j=0.3)])
    rated = rate_database(db, "relative")
    assert {r["model"]: r["task"] for r in rated} == {
        GPT2: "text-generation", "distilgpt2": "text-generation", "gpt2-large": "text-generation",
        "bert": "text-classification", "ResNet50": "inference", "MobileNetV2": "inference"}
    bert = _by_model(rated)["bert"]["metrics"]
    assert "energy_per_input_token" in bert and bert["energy_per_input_token"]["value"] == pytest.approx(0.01)
    # `--task inference` (and `mlee label` of one folder, which passes the record's task) keeps every inference run.
    assert len(rate_database(db, "relative", task="inference")) == 6
    assert {r["model"] for r in rate_database(db, "relative", task="text-generation")} == {
        GPT2, "distilgpt2", "gpt2-large"}
    with pytest.raises(UsageError, match="does not rate task"):
        rate_database(db, "relative", task="summarization")


def test_record_keys_keep_what_the_task_match_reads() -> None:
    assert "transformers" in record_keys(load_spec("mlee"))
    assert "transformers" not in record_keys(load_spec("mlee-2022"))


def _spec(tasks: dict, **top) -> dict:
    return {"name": "t", "version": 1, "compound": "median-pessimistic", "index_base": "best", "tasks": tasks, **top}


ENERGY = {"e": {"unit": "J", "direction": "lower", "weight": 1, "value": "per_sample.energy_j.total",
                "boundaries": [0.8, 0.6, 0.4, 0.2]}}


def test_the_most_specific_match_wins_and_file_order_breaks_ties() -> None:
    spec = spec_from_dict(_spec({
        "inference": {"metrics": ENERGY},
        "gen": {"match": {"task": "inference", "transformers.task": "text-generation"}, "metrics": ENERGY},
        "any-hf": {"match": {"backend.name": "transformers"}, "metrics": ENERGY},
        "any-hf-2": {"match": {"dataset": "text-generation:synthetic"}, "metrics": ENERGY},
    }))
    assert spec.task_of(hf_record("a")) == "gen"
    # inference, any-hf and (for its dataset) not any-hf-2: one condition each, the first in the file wins.
    assert spec.task_of(hf_record("b", "text-classification")) == "inference"
    assert spec.task_of(dict(hf_record("c", "text-classification"), task="other")) == "any-hf"
    assert spec.task_of(record("ResNet50")) == "inference"
    assert spec.task_of({"task": "training", "model": "x"}) is None
    assert spec.to_dict()["tasks"]["gen"]["match"] == {"task": "inference", "transformers.task": "text-generation"}
    # A task without match keeps the canonical form (and so the hash) of specs written before issue 19.
    assert "match" not in spec.to_dict()["tasks"]["inference"]


@pytest.mark.parametrize("match, needle", [
    ([], "must be an object"), ({}, "must be an object"), ({"task": 3}, "non-empty text"),
    ({"a..b": "x"}, "dotted record path"), ({"task": " "}, "non-empty text"),
])
def test_a_bad_match_is_a_usage_error_naming_the_field(match, needle) -> None:
    with pytest.raises(UsageError, match=needle) as caught:
        spec_from_dict(_spec({"x": {"match": match, "metrics": ENERGY}}))
    assert "tasks.x.match" in str(caught.value)


def test_display_and_range_are_checked() -> None:
    with pytest.raises(UsageError, match="display must be one of letters, stars"):
        spec_from_dict(_spec({"inference": {"metrics": ENERGY}}, display="emoji"))
    with pytest.raises(UsageError, match='reference must be absent when index_base is "range"'):
        spec_from_dict(_spec({"inference": {"reference": "X", "metrics": ENERGY}}, index_base="range"))
    plain = spec_from_dict(_spec({"inference": {"metrics": ENERGY}}))
    stars = spec_from_dict(_spec({"inference": {"metrics": ENERGY}}, display="stars"))
    assert "display" not in plain.to_dict() and stars.to_dict()["display"] == "stars"
    assert plain.sha256 != stars.sha256


# ------------------------------------------------------------------------------------------ ai-energy-score stars


def test_stars_are_the_letters_counted_down() -> None:
    assert [stars_of(x) for x in "ABCDE"] == [5, 4, 3, 2, 1]
    assert star_text(3) == "\u2605\u2605\u2605\u2606\u2606"
    with pytest.raises(ValueError):
        star_text(0)


def test_range_indices_cut_the_group_range_into_equal_bands() -> None:
    indices, lo, hi = range_column([1.0, 2.0, 3.0, 5.0, 9.0, None, -1.0], higher_is_better=False)
    assert (lo, hi) == (1.0, 9.0)
    assert indices == [1.0, 0.875, 0.75, 0.5, 0.0, None, None]
    assert range_column([2.0, 4.0], higher_is_better=True)[0] == [0.0, 1.0]
    assert range_column([3.0, 3.0, None], higher_is_better=False)[0] == [1.0, 1.0, None]  # no spread: best band
    assert range_column([None], higher_is_better=False) == ([None], None, None)


def test_ai_energy_score_gives_five_stars_to_the_least_energy_band_and_one_to_the_most() -> None:
    energies = {"m1": 1.0, "m2": 2.0, "m3": 3.0, "m5": 5.0, "m9": 9.0}
    db = database([hf_record(m, energy_j=e) for m, e in energies.items()]
                  + [hf_record("solo", "automatic-speech-recognition", energy_j=4.0, token_j=None)]
                  + [record("ResNet50"), record("VGG16", energy_j=4.2, method="estimate")])
    rated = _by_model(rate_database(db, "ai-energy-score"))
    assert {m: rated[m]["stars"] for m in energies} == {"m1": 5, "m2": 5, "m3": 4, "m5": 3, "m9": 1}
    cell = rated["m3"]["metrics"]["energy_per_1k_queries"]
    assert cell["value"] == pytest.approx(3.0 * 1000 / 3600) and cell["unit"] == "Wh" and cell["stars"] == 4
    # The band edges in Wh per 1,000 queries: 20 % steps of the group's range, least energy first.
    lo, hi = 1000 / 3600, 9000 / 3600
    assert cell["value_boundaries"] == pytest.approx([hi - f * (hi - lo) for f in (0.8, 0.6, 0.4, 0.2)])
    assert rated["solo"]["stars"] == 5 and rated["solo"]["task"] == "automatic-speech-recognition"
    # ImageNet runs are rated under inference; an estimate keeps its mark.
    assert rated["ResNet50"]["stars"] == 5 and rated["VGG16"]["stars"] == 1
    assert rated["VGG16"]["estimated"] is True
    assert rated["VGG16"]["metrics"]["energy_per_1k_queries"]["method"] == "estimate"


def test_a_figure_on_a_band_edge_falls_in_the_band_with_fewer_stars() -> None:
    spec = spec_from_dict(_spec({"inference": {"metrics": ENERGY}}, index_base="range", display="stars"))
    db = database([record("a", energy_j=0.0), record("b", energy_j=1.0), record("c", energy_j=5.0),
                   record("d", energy_j=None)])
    rated = _by_model(rate_database(db, spec))
    assert rated["b"]["metrics"]["e"]["index"] == 0.8 and rated["b"]["stars"] == 4
    assert rated["a"]["stars"] == 5 and rated["c"]["stars"] == 1
    assert rated["d"]["metrics"]["e"]["stars"] is None and rated["d"]["stars"] == 1  # not measured counts as E


def test_rate_shows_stars_in_the_table_and_the_json(tmp_path) -> None:
    db = database([hf_record(m, energy_j=e) for m, e in (("m1", 1.0), ("m3", 3.0), ("m9", 9.0))]
                  + [hf_record("est", energy_j=2.0, method="estimate")])
    path = copy_database(db, tmp_path / "db.json")
    result = CliRunner().invoke(app, ["rate", str(path), "--spec", "ai-energy-score"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "\u2605" * 5 in result.stdout and "\u2605" + "\u2606" * 4 in result.stdout
    assert "five equal bands" in result.stdout and "est." in result.stdout
    assert "with spec ai-energy-score v1" in result.stderr
    result = CliRunner().invoke(app, ["rate", str(path), "--spec", "ai-energy-score", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    rated = _by_model(json.loads(result.stdout))
    assert {m: r["stars"] for m, r in rated.items()} == {"m1": 5, "m3": 4, "est": 5, "m9": 1}
    assert rated["est"]["estimated"] is True
    result = CliRunner().invoke(app, ["rate", str(path), "--spec", "ai-energy-score", "--csv"], env=ENV)
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert {m: r["stars"] for m, r in rows.items()} == {"m1": "5", "m3": "4", "est": "5", "m9": "1"}
    assert rows["est"]["estimated"] == "true"
    # Letter presets carry no stars.
    result = CliRunner().invoke(app, ["rate", str(path), "--spec", "relative", "--json"], env=ENV)
    assert all("stars" not in r for r in json.loads(result.stdout))
    result = CliRunner().invoke(app, ["rate", str(path), "--spec", "relative", "--csv"], env=ENV)
    assert {r["stars"] for r in csv.DictReader(io.StringIO(result.stdout))} == {""}


def test_calibrating_a_range_spec_keeps_its_bands_and_its_stars() -> None:
    from mlee.rating import calibrate

    db = database([hf_record(f"m{i}", energy_j=e) for i, e in enumerate([1.0, 2.0, 3.0, 5.0, 9.0, 4.0])])
    spec = spec_from_dict(calibrate(db, quantiles=(0.8, 0.6, 0.4, 0.2), spec="ai-energy-score"))
    assert spec.index_base == "range" and spec.display == "stars"
    # Indices 1, .875, .75, .625, .5, 0: quantile boundaries, moved below an index they equal (ties rate better).
    assert spec.task("text-generation").metrics[0].boundaries == (0.8125, 0.6875, 0.5625, 0.25)
    stars = {r["model"]: r["stars"] for r in rate_database(db, spec)}
    assert stars == {"m0": 5, "m1": 5, "m2": 4, "m5": 3, "m3": 2, "m4": 1}
