"""Issue 19 in the report: per-token figures and phases of transformers runs, stars, the page's range rating."""

from __future__ import annotations

import json

import pytest
from browser_driver import Browser
from test_report_support import chromium_or_skip, database, hf_record, record, small_database

from mlee.rating import load_spec
from mlee.rating.groups import range_column
from mlee.report.build import build_report, rate_for_report, write_report
from mlee.report.hfblock import hf_block
from mlee.report.payload import build_payload

GPT2 = "openai-community/gpt2"
READY = "window.mleeReport && window.mleeReport.ready && window.mleeReport.stats()"


def _db() -> dict:
    db = small_database()
    db["records"] += [hf_record(GPT2, energy_j=0.5, token_j=0.05), hf_record("tiny", energy_j=0.1, token_j=0.01),
                      hf_record("big", energy_j=2.3, token_j=0.2),
                      hf_record("bert", "text-classification", energy_j=0.05, token_j=0.002),
                      hf_record("guess", energy_j=0.7, method="estimate")]
    return db


def test_hf_block_holds_the_per_token_figures_and_both_phases() -> None:
    block = hf_block(hf_record("tiny", energy_j=0.1, token_j=0.01))
    assert block["task"] == "text-generation" and block["dtype"] == "float32"
    figures = {f["label"]: f for f in block["figures"]}
    assert figures["Energy per query"] == {"label": "Energy per query", "value": 0.1, "unit": "J",
                                           "method": "counter"}
    assert figures["Energy per output token"]["value"] == 0.01
    assert "Energy per input token" not in figures  # a generator's input-token figure is not in the record
    assert figures["Latency p95"]["value"] == 60.0 and figures["Max new tokens"]["value"] == 16.0
    prefill, decode = block["phases"]
    assert (prefill["name"], decode["name"]) == ("prefill", "decode")
    assert decode["energy_j"] == pytest.approx(0.1 * 128 * 0.8) and decode["tokens"] == 128 * 15
    assert decode["duration_s"] == 1.6 and decode["energy_per_token_j"] == pytest.approx(0.1 * 0.8 / 15)
    assert hf_block(record("ResNet50")) is None


def test_a_summary_of_repeats_gives_its_means_and_no_phases() -> None:
    summary = {"n": 2, "ids": ["a", "b"], "transformers": {
        "input_token_energy_j": {"mean": 0.002, "std": 0.0001}, "output_token_energy_j": {"mean": None, "std": None},
        "tokens_per_s": {"mean": 900.0, "std": 10.0}, "latency_p50_ms": {"mean": 12.0, "std": 1.0}}}
    block = hf_block(summary)
    assert [(f["label"], f["value"]) for f in block["figures"]] == [
        ("Energy per input token", 0.002), ("Tokens per second", 900.0), ("Latency p50", 12.0)]
    assert block["phases"] == []


def test_the_payload_carries_the_block_and_the_specs_display() -> None:
    db = _db()
    spec = load_spec("ai-energy-score")
    rated, _ = rate_for_report(db, spec)
    payload = build_payload(db, spec, rated)
    assert payload["spec"]["display"] == "stars" and payload["spec"]["index_base"] == "range"
    pages = {p["model"]: p for p in payload["records"]}
    assert pages["tiny"]["transformers"]["phases"][0]["name"] == "prefill"
    assert pages["ResNet50"]["transformers"] is None
    assert pages["tiny"]["task"] == "text-generation" and pages["bert"]["task"] == "text-classification"


@pytest.fixture(scope="module")
def browser():
    chromium_or_skip()
    with Browser(width=1280, height=900) as b:
        yield b


def _open(browser: Browser, path, db: dict, spec: str) -> None:
    write_report(build_report(db, spec, report_path=path, database_name="db.json"), path)
    browser.open(path)
    browser.wait_for(READY, timeout_s=30)


def _choose_task(browser: Browser, task: str) -> None:
    browser.evaluate(f"(() => {{ const s = document.getElementById('f-task'); s.value = {json.dumps(task)}; "
                     "s.dispatchEvent(new Event('change')); })()")


def _click(browser: Browser, selector: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).dispatchEvent("
                     "new MouseEvent('click', {bubbles: true}))")


@pytest.mark.browser
@pytest.mark.parametrize("preset", ["ai-energy-score", "mlee", "relative"])
def test_the_page_rates_transformers_tasks_as_python_does(browser, tmp_path, preset) -> None:
    db = _db()
    _open(browser, tmp_path / "r.html", db, preset)
    assert browser.evaluate("mleeReport.mismatches()") == []
    page = {r["id"]: r for r in browser.evaluate("mleeReport.ratings()")}
    rated, notes = rate_for_report(db, load_spec(preset))
    # The mlee preset's text-classification reference is not in the database: that group is left out, said in a note.
    assert len(notes) == (1 if preset == "mlee" else 0) and len(page) == len(rated)
    for r in rated:
        assert page[r["id"]]["compound"] == r["compound"], r["id"]
        assert page[r["id"]]["index"] == {k: m["index"] for k, m in r["metrics"].items()}, r["id"]
    assert browser.errors() == []


@pytest.mark.browser
def test_the_page_shows_stars_and_the_phases_of_a_run(browser, tmp_path) -> None:
    db = _db()
    _open(browser, tmp_path / "r.html", db, "ai-energy-score")
    _choose_task(browser, "text-generation")
    chips = browser.evaluate("[...document.querySelectorAll('#table .chip')].map(c => c.textContent)")
    assert "\u2605" * 5 in chips and "\u2605" + "\u2606" * 4 in chips and not set("ABCDE") & set("".join(chips))
    # One group on the value scale: the five bands drawn as regions between the group's least and most energy.
    _click(browser, "input[name=scale][value=value]")
    assert browser.evaluate("document.querySelectorAll('#scatter rect.region').length") >= 4
    _click(browser, "input[name=scale][value=index]")
    tiny = next(r["id"] for r in db["records"] if r["model"] == "tiny")
    _click(browser, f"#table tr[data-id='{tiny}'] td")
    detail = browser.evaluate("document.getElementById('detail').textContent")
    assert "Per query and per token (text-generation, float32)" in detail
    assert "Energy per output token" in detail and "Phases (per repeat)" in detail
    assert "5\u2605 < " in detail and "A < " not in detail  # the band edges, named by their stars
    assert browser.evaluate("document.querySelectorAll('#detail tr[data-phase]').length") == 2
    decode = browser.evaluate("document.querySelector('#detail tr[data-phase=decode]').textContent")
    assert decode.startswith("decode") and ("1,920" in decode or "1920" in decode)
    guess = next(r["id"] for r in db["records"] if r["model"] == "guess")
    _click(browser, f"#table tr[data-id='{guess}'] td")
    detail = browser.evaluate("document.getElementById('detail').textContent")
    assert "an estimate, not a measurement" in detail and "\u2248" in detail  # the estimate stays marked
    assert browser.errors() == []


@pytest.mark.browser
def test_range_index_is_pythons(browser, tmp_path) -> None:
    _open(browser, tmp_path / "r.html", database([record("ResNet50")]), "ai-energy-score")
    columns = [[0.1, 0.3, 2.3, None, -1.0], [1.0, 1.0], [0.0, 1e-300, 7.0], [3.0]]
    for values in columns:
        for higher in (False, True):
            expected, lo, hi = range_column(values, higher)
            base = None if lo is None else {"lo": lo, "hi": hi}
            got = browser.evaluate(f"{json.dumps(values)}.map(v => MleeRating.rangeIndex(v, {json.dumps(base)}, "
                                   f"{json.dumps(higher)}))")
            assert got == expected
