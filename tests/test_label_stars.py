"""Issue 19 on labels: stars for a star spec (ai-energy-score) and the per-token lines of transformers runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from test_label_render import pdftotext
from test_report_support import database, hf_record, record

from mlee.label.content import label_content
from mlee.label.render import render
from mlee.rating import rate_database

GPT2 = "openai-community/gpt2"


def _rated(spec: str, records: list[dict]) -> dict[str, dict]:
    return {r["model"]: r for r in rate_database(database(records), spec)}


def _group() -> list[dict]:
    return [hf_record(GPT2, energy_j=0.4, token_j=0.05), hf_record("tiny", energy_j=0.1, token_j=0.01),
            hf_record("big", energy_j=2.1, token_j=0.2)]


def test_a_star_spec_puts_its_stars_on_the_label_and_a_letter_spec_does_not() -> None:
    rated = _rated("ai-energy-score", _group())
    assert label_content(rated["tiny"]).stars == 5 and label_content(rated[GPT2]).stars == 5
    assert label_content(rated["big"]).stars == 1
    assert label_content(_rated("mlee", _group())["tiny"]).stars is None


def _star_polygons(svg: bytes) -> int:
    # A five-pointed star is a polygon of ten corners: 20 coordinates.
    root = ET.fromstring(svg)
    return sum(1 for el in root.iter() if el.tag.endswith("polygon")
               and len((el.get("points") or "").replace(",", " ").split()) == 20)


def test_the_label_draws_the_stars_and_says_how_they_were_given(tmp_path) -> None:
    rated = _rated("ai-energy-score", _group())
    pdf = render(label_content(rated["big"]), "pdf").data
    assert pdf == render(label_content(rated["big"]), "pdf").data  # deterministic
    text = " ".join(pdftotext(pdf, tmp_path).split())
    assert "1 of 5 stars: five equal bands" in text and "range of group" in text
    assert "Energy per 1,000 queries" in text and "ai-energy-score v1" in text
    # The scale (5 + 4 + 3 + 2 + 1 stars), the marker's five (one filled), the badge's and the metric line's.
    assert _star_polygons(render(label_content(rated["big"]), "svg").data) == 15 + 5 + 1 + 1
    letters = _rated("mlee", _group())
    assert _star_polygons(render(label_content(letters["big"]), "svg").data) == 0


def test_an_estimate_stays_labelled_as_one_under_stars(tmp_path) -> None:
    rated = _rated("ai-energy-score", _group() + [hf_record("guess", energy_j=0.3, method="estimate")])
    content = label_content(rated["guess"])
    assert content.estimated and content.energy_note.startswith("ESTIMATED")
    assert "ESTIMATED" in pdftotext(render(content, "pdf").data, tmp_path)


def test_rated_per_token_figures_are_not_repeated_as_unrated_lines() -> None:
    content = label_content(_rated("mlee", _group())["tiny"])
    lines = [ln for b in content.blocks for ln in b.lines]
    keys = [ln.key for ln in lines]
    assert keys.count("energy_per_output_token") == 1 and keys.count("latency_p50") == 1
    by_key = {ln.key: ln for ln in lines}
    assert by_key["energy_per_output_token"].rating == "A"  # a fifth of the reference's energy per token
    assert by_key["decode_energy_per_token"].rating is None  # the phase's own figure, shown unrated
    assert by_key["latency_p95"].text == "60.0 ms"


@pytest.mark.parametrize("spec", ["mlee", "ai-energy-score"])
def test_imagenet_labels_are_unchanged_by_the_transformers_tasks(spec) -> None:
    rated = _rated(spec, [record("ResNet50"), record("MobileNetV2", energy_j=0.3)])
    content = label_content(rated["MobileNetV2"])
    assert content.task == "inference"
    assert not any(ln.key.endswith("_token") for b in content.blocks for ln in b.lines)
