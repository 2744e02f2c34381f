"""What a label says: figures and units, ratings per block, estimates, dates, spec hash, QR text."""

from __future__ import annotations

import copy

import pytest

from mlee import __version__
from mlee.errors import ResultFormatError, UsageError
from mlee.label.content import NA, block_of, format_number, format_value, label_content
from mlee.label.qrtext import check_qr_template
from mlee.rating import load_spec
from test_label_records import CPU_ENV, database, db_record, rate, rated_one, three_models


def test_numbers_have_three_significant_digits() -> None:
    assert [format_number(v) for v in (0.673, 12.5, 25.557032, 1.0, 102.5, 0.0)] == [
        "0.673", "12.5", "25.6", "1.00", "102", "0"]
    assert format_number(1234.6) == "1,235"
    assert format_number(0.00012) == "0.00012"
    assert format_number(-2.5) == "-2.50"


def test_values_carry_units_and_missing_values_show_na() -> None:
    assert format_value("energy_per_sample", 0.673, "Ws") == "0.673 Ws"
    assert format_value("top1", 76.13, "%") == "76.1 %"
    assert format_value("top1", 0.7613, "") == "76.1 %"  # a fraction of an accuracy metric
    assert format_value("parameters", 25.6, "M") == "25.6 M"
    assert format_value("top5", None, "%") == NA
    assert format_value("top5", float("nan"), "%") == NA
    assert format_value("energy_total", 3.24e8, "J") == "324 MJ"
    assert format_value("energy_total", 12_000.0, "J") == "12.0 kJ"
    assert format_value("energy_total", 9_999.0, "J") == "9,999 J"
    assert format_value("time_total", 162_000.0, "s") == "45.0 h"
    assert format_value("time_per_epoch", 1_800.0, "s") == "1,800 s"
    assert format_number(0.99999999) == "1.00"


@pytest.mark.parametrize("spec_name", ["mlee-2022", "mlee", "relative"])
def test_every_preset_metric_lands_in_its_block(spec_name: str) -> None:
    spec = load_spec(spec_name)
    expected = {"energy": "energy", "time": "time", "top": "accuracy", "acc": "accuracy", "param": "size",
                "flop": "size", "size": "size"}
    for task in spec.tasks:
        for m in task.metrics:
            kind = block_of(m.key, m.unit)
            hint = next((v for k, v in expected.items() if k in m.key.lower()), None)
            if hint is not None:
                assert kind == hint, (spec_name, task.name, m.key, kind)


def test_blocks_show_each_figure_with_its_rating() -> None:
    rated = rated_one("MobileNetV2")
    c = label_content(rated)
    assert [b.kind for b in c.blocks] == ["energy", "time", "accuracy", "size"]
    energy, time, accuracy, size = c.blocks
    assert [ln.key for ln in energy.lines] == ["energy_per_sample"]
    assert energy.lines[0].text == "0.120 Ws"
    assert energy.rating == rated["metrics"]["energy_per_sample"]["rating"]
    assert time.lines[0].text == "3.00 ms"
    assert [ln.text for ln in accuracy.lines] == ["71.8 %", "90.4 %"]
    # A block takes the colour of its heaviest metric: top-1 (weight 0.8) over top-5 (0.2).
    assert accuracy.rating == rated["metrics"]["top1"]["rating"]
    assert [ln.key for ln in size.lines] == ["parameters", "gflops", "fsize"]
    assert [ln.text for ln in size.lines] == ["3.50 M", "0.600 G", "14.0 MB"]
    assert c.compound == rated["compound"]
    assert c.hardware == "AMD EPYC 7B13" and c.backend == "PyTorch 2.14.1"


def test_a_metric_not_measured_shows_no_letter_and_the_label_says_it_counted_as_e() -> None:
    records = [db_record(m, ident=f"infer-{m.lower()}") for m in ("ResNet101", "ResNet50")]
    records[1]["metrics"]["top5"] = None
    (rated,) = rate(database(*records), model="ResNet50")
    assert rated["metrics"]["top5"]["rating"] == "E"  # what the compound counted
    content = label_content(rated)
    top5 = next(ln for ln in content.blocks[2].lines if ln.key == "top5")
    assert (top5.text, top5.rating, top5.measured) == ("not measured", None, False)
    assert content.blocks[2].rating == rated["metrics"]["top1"]["rating"]  # the measured top-1 still leads
    assert content.unmeasured_note.startswith("Not measured (grey): counted as E in the compound rating")
    complete = [db_record(m, ident=f"infer-{m.lower()}") for m in ("ResNet101", "ResNet50")]
    assert label_content(rate(database(*complete), model="ResNet50")[0]).unmeasured_note == ""


def test_measured_energy_names_its_method_and_sources() -> None:
    c = label_content(rated_one("ResNet50"))
    assert not c.estimated
    assert c.energy_note == "Energy measured: energy counter (rapl:dram-0, rapl:package-0)"
    assert c.blocks[0].footnote == "measured: energy counter" and not c.blocks[0].footnote_alert


def test_many_gpus_are_named_as_a_range() -> None:
    gpus = [{"name": f"nvml:{i}", "domain": "gpu", "method": "counter", "detail": {}} for i in range(8)]
    rated = rated_one("ResNet50", sources=gpus + [{"name": "rapl:package-0", "method": "counter"}])
    assert label_content(rated).energy_note == "Energy measured: energy counter (nvml:0-7, rapl:package-0)"


def test_estimated_energy_is_called_an_estimate_everywhere() -> None:
    c = label_content(rated_one("ResNet50", method="estimate"))
    assert c.estimated
    assert c.energy_note == "ESTIMATED energy (codecarbon cpu_load + ram_power_model)"
    assert c.blocks[0].footnote_alert and c.blocks[0].footnote.startswith("ESTIMATE")
    assert c.blocks[0].lines[0].method == "estimate"
    assert "energy_per_sample 0.550 Ws est." in c.qr_payload


def test_date_comes_from_the_record_never_the_clock() -> None:
    rated = rated_one("ResNet50")
    assert label_content(rated).measured_on == "2026-11-22"
    summary = copy.deepcopy(rated)
    summary["record"] = {"ids": ["a", "b"], "n": 2}
    assert label_content(summary).measured_on == NA
    dates = ("2026-11-20T10:00:00Z", "2026-11-22T07:00:00Z")
    assert label_content(summary, dates_utc=dates).measured_on == "2026-11-20 to 2026-11-22"


def test_spec_identity_and_version_are_on_the_label() -> None:
    rated = rated_one("ResNet50")
    c = label_content(rated)
    assert c.spec_sha256 == load_spec("mlee-2022").sha256 and c.spec_short == c.spec_sha256[:12]
    assert c.spec_name == "mlee-2022" and c.spec_version == "2"
    assert c.mlee_version == __version__
    assert c.reference == "ResNet101"


def test_default_qr_text_summarises_the_record() -> None:
    c = label_content(rated_one("ResNet50"))
    lines = c.qr_payload.splitlines()
    assert lines[0] == "mlee energy label"
    assert "model: ResNet50" in lines and f"env: {CPU_ENV}" in lines
    assert f"rating: {c.compound} vs ResNet101" in lines
    assert f"spec: mlee-2022 v2 {c.spec_sha256[:12]}" in lines
    assert "measured: 2026-11-22" in lines and f"mlee {__version__}" in lines
    assert len(c.qr_payload.encode()) < 600


def test_relative_spec_rates_against_the_best_of_each_group() -> None:
    (rated,) = rate(three_models(), "relative", model="ResNet50")
    c = label_content(rated)
    assert c.reference == ""
    assert any(line.endswith("vs best of group") for line in c.qr_payload.splitlines())


def test_qr_url_template_is_filled_with_quoted_fields() -> None:
    rated = rated_one("ResNet50")
    rated["model"] = "Res Net/50&x"
    c = label_content(rated, qr_url_template="https://models.example/{model}?r={compound}&s={spec}")
    assert c.qr_payload == f"https://models.example/Res%20Net%2F50%26x?r={c.compound}&s={c.spec_sha256[:12]}"
    assert label_content(rated, qr_url_template="https://example.org/x").qr_payload == "https://example.org/x"


@pytest.mark.parametrize("template, words", [
    ("https://e.org/{nope}", "unknown placeholder {nope}"),
    ("https://e.org/{model", "malformed"),
    ("", "empty"),
    ("https://e.org/" + "x" * 2000, "characters long"),
])
def test_bad_qr_templates_are_refused_with_the_reason(template: str, words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("{", r"\{").replace("}", r"\}")):
        check_qr_template(template)


def test_broken_rated_records_are_refused() -> None:
    rated = rated_one("ResNet50")
    bad = dict(rated, compound="Z")
    with pytest.raises(ResultFormatError, match="compound rating 'Z'"):
        label_content(bad)
    with pytest.raises(ResultFormatError, match="no metrics"):
        label_content({k: v for k, v in rated.items() if k != "metrics"})
    with pytest.raises(ResultFormatError):
        label_content(dict(rated, metrics={"top1": 3}))


def test_blocks_the_spec_does_not_rate_show_the_record_figures_grey() -> None:
    rated = rated_one("ResNet50")
    rated["metrics"] = {k: v for k, v in rated["metrics"].items() if k not in ("top1", "top5")}
    accuracy = label_content(rated).blocks[2]
    assert accuracy.rating is None and accuracy.note == "not rated"
    assert [ln.text for ln in accuracy.lines] == ["76.1 %", "92.9 %"]
    assert all(ln.rating is None for ln in accuracy.lines)


def test_training_labels_show_energy_per_epoch_and_in_total() -> None:
    training = {"epochs": 2, "nominal_epochs": 90,
                "per_epoch": {"energy_j": 3.6e6, "time_s": 1800.0}, "total": {"energy_j": 7.2e6, "time_s": 3600.0}}
    records = [db_record(m, ident=f"train-{m.lower()}", task="training", training=training, kind="train")
               for m in ("ResNet101", "ResNet50")]
    for record in records:  # mlee-2022 rates the GPU's training energy, as the paper did
        record["energy_j"] = {"gpu": 7.2e6, "cpu": None, "dram": None, "total": 7.2e6}
    records += [db_record(m, ident=f"infer-{m.lower()}") for m in ("ResNet101", "ResNet50")]
    (rated,) = rate(database(*records), task="training", model="ResNet50")
    energy, time = label_content(rated).blocks[:2]
    assert [ln.text for ln in energy.lines] == ["1.00 kWh", "90.0 kWh"]
    assert [ln.text for ln in time.lines] == ["0.500 h", "45.0 h"]
