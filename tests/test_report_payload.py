"""The report page without a browser: data payload, escaping, determinism, traces, labels, partial ratings."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import pytest
from test_report_support import database, record, small_database

from mlee.errors import RatingError
from mlee.rating import load_spec, rate_database
from mlee.report.build import build_report
from mlee.report.html import script_json
from mlee.report.labels import find_labels, page_label, thumbnail_png
from mlee.report.traces import power_series, record_traces


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="mlee-data">(.*?)</script>', html, re.S)
    assert m, "the page has no data block"
    return json.loads(m.group(1))


def test_script_json_keeps_values_and_hides_markup() -> None:
    value = {"model": "</script><script>alert(1)</script><!--", "env": "a\u2028b\u2029c & d > e"}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value


def test_report_is_deterministic_and_self_contained(tmp_path) -> None:
    db = small_database(hostile=True, traces=True)
    first = build_report(db, "mlee", report_path=tmp_path / "r.html", database_name="db.json").html
    second = build_report(json.loads(json.dumps(db)), "mlee", report_path=tmp_path / "r.html",
                          database_name="db.json").html
    assert first == second
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b|url\(\s*['\"]?https?:", first, re.I)
    # The CSP allows exactly the inline script that is there, by its hash.
    csp = re.search(r"script-src 'sha256-([^']+)'", first).group(1)
    body = re.search(r"<script>(.*?)</script>", first, re.S).group(1)
    assert base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() == csp
    assert "default-src 'none'" in first


def test_hostile_strings_stay_data(tmp_path) -> None:
    db = small_database(hostile=True)
    html = build_report(db, "mlee", report_path=tmp_path / "r.html", title="<script>alert('t')</script>",
                        database_name="<b>db</b>.json").html
    assert "<img src=x" not in html and "window.__pwned=2</script>" not in html
    assert "<script>alert('t')</script>" not in html and "&lt;script&gt;alert(&#x27;t&#x27;)" in html
    models = {r["model"] for r in _data(html)["records"]}
    assert any(m.startswith('<img src=x onerror="window.__pwned=1">') for m in models)


def test_payload_carries_the_python_ratings_and_values(tmp_path) -> None:
    db = small_database()
    rated = rate_database(db, load_spec("mlee"))
    data = _data(build_report(db, "mlee", report_path=tmp_path / "r.html").html)
    by_id = {r["id"]: r for r in data["records"]}
    assert len(by_id) == len(rated) == 10
    for r in rated:
        page = by_id[r["id"]]
        assert page["py"]["compound"] == r["compound"]
        assert page["py"]["rating"] == {k: m["rating"] for k, m in r["metrics"].items()}
        assert page["values"] == {k: m["value"] for k, m in r["metrics"].items()}
        assert page["is_reference"] == (r["model"] == "ResNet50")
    assert data["colors"] == {"A": "#639B30", "B": "#B8AC2B", "C": "#F8B830", "D": "#EF7D29", "E": "#E52421"}
    spec = data["spec"]
    assert spec["sha256"] == load_spec("mlee").sha256 and spec["compound"] == "median-pessimistic"
    assert data["spec_file"] == load_spec("mlee").to_dict()
    assert sum(r["estimated"] for r in data["records"]) == 2  # VGG16's energy is an estimate in both


def test_group_without_reference_is_left_out_with_a_note(tmp_path) -> None:
    db = small_database()
    db["records"] = [r for r in db["records"] if not (r["model"] == "ResNet50" and "EPYC" in r["environment"])]
    with pytest.raises(RatingError):
        rate_database(db, load_spec("mlee"))  # what `mlee rate` does
    report = build_report(db, "mlee", report_path=tmp_path / "r.html")
    assert report.n_records == 5
    assert any("Not rated: inference in AMD EPYC 7B13 - TensorFlow 2.21.0" in n and "ResNet50" in n
               for n in report.notes)
    assert "4 run(s) left out because their group cannot be rated (see above)." in report.notes
    assert report.notes[0] in _data(report.html)["notes"]
    only_unrated = database([r for r in db["records"] if "EPYC" in r["environment"]])
    with pytest.raises(RatingError, match="no reference model ResNet50"):
        build_report(only_unrated, "mlee")


def test_counter_energy_gives_exact_average_power() -> None:
    t = [i * 0.5 for i in range(9)]
    e = [0.0, 5.0, 10.0, 15.0, 20.0, 40.0, 60.0, 80.0, 100.0]  # 10 W, then 40 W
    times, power = power_series(t, e, None, None, max_points=100)
    assert power == [10.0, 10.0, 10.0, 10.0, 40.0, 40.0, 40.0, 40.0]
    assert times == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]
    times, power = power_series(t, e, None, None, max_points=2)
    assert power == [10.0, 40.0] and len(times) == 2  # runs of 4 intervals: exact averages, not samples


def test_invalid_samples_leave_gaps_and_measured_power_wins() -> None:
    t = [0.0, 1.0, 2.0, 3.0]
    e = [0.0, 1.0, 2.0, 3.0]
    _, power = power_series(t, e, None, [1, 1, 0, 1], max_points=100)
    assert power == [1.0, None, None]
    _, power = power_series(t, e, [7.0, 7.5, 8.0, 8.5], None, max_points=100)
    assert power == [7.0, 7.5, 8.0, 8.5]
    assert power_series(t, [None] * 4, [None] * 4, None, 100) is None


def test_record_traces_name_sources_and_skip_host() -> None:
    db = small_database(traces=True)
    rec = next(r for r in db["records"] if r["model"] == "ResNet50")
    traces = record_traces(rec, max_points=50)
    assert [s["name"] for s in traces] == ["rapl:package-0"]
    assert traces[0]["method"] == "counter" and len(traces[0]["power_w"]) <= 50
    assert min(traces[0]["power_w"]) == pytest.approx(20.0) and max(traces[0]["power_w"]) == pytest.approx(25.0)
    assert record_traces(record("X"), 50) == []
    ranked = dict(rec, trace_samples={f"rank{k}/{key}": v for k in (0, 1) for key, v in rec["trace_samples"].items()})
    assert [s["name"] for s in record_traces(ranked, 50)] == ["rank0: rapl:package-0", "rank1: rapl:package-0"]


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (99, 155, 48)).save(buf, format="PNG")
    return buf.getvalue()


def test_labels_are_found_by_the_label_layers_names_and_embedded(tmp_path) -> None:
    from PIL import Image

    from mlee.label.batch import label_filename

    db = small_database(hostile=True)
    rated = rate_database(db, load_spec("mlee"))
    first, second = rated[0], rated[1]
    out = tmp_path / "site"
    labels = out / "labels"
    labels.mkdir(parents=True)
    (labels / label_filename(first, "pdf")).write_bytes(b"%PDF-1.4 label")
    (labels / label_filename(first, "png")).write_bytes(_png(1200, 1700))
    (labels / label_filename(second, "pdf")).write_bytes(b"%PDF-1.4 other")
    found = find_labels(rated, [tmp_path / "missing", labels])
    assert set(found) == {first["id"], second["id"]}
    entry = page_label(found[first["id"]], out)
    assert entry["pdf"] == "labels/" + label_filename(first, "pdf")
    head, b64 = entry["img"].split(",", 1)
    assert head == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        assert img.size == (360, 510) and img.mode == "P"
    assert page_label(found[first["id"]], out, images=False) == {"img": None, "pdf": entry["pdf"]}
    assert page_label(found[second["id"]], out)["img"] is None  # PDF only: a link, no image
    small = _png(100, 50)
    assert thumbnail_png(small) == small


def test_labels_beside_the_report_reach_the_page(tmp_path) -> None:
    from mlee.label.batch import label_filename

    db = small_database()
    rated = rate_database(db, load_spec("mlee"))
    for r in rated[:3]:
        (tmp_path / label_filename(r, "pdf")).write_bytes(b"%PDF-1.4")
    report = build_report(db, "mlee", report_path=tmp_path / "report.html")
    assert report.n_labels == 3
    linked = [r["label"]["pdf"] for r in _data(report.html)["records"] if r["label"]]
    assert sorted(linked) == sorted(label_filename(r, "pdf") for r in rated[:3])
