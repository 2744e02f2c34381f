"""The report in a real headless Chromium, opened from a local file with the network shut off.

The browser is driven by Selenium through chromium-driver (tests/browser_driver.py): it clicks, types and reads
the page the way a user would, collects console errors and every request, and takes screenshots.
"""

from __future__ import annotations

import io
import json

import pytest
from browser_driver import Browser
from test_report_support import chromium_or_skip, small_database

from mlee.rating import load_spec, rate_database
from mlee.report.build import build_report, write_report

pytestmark = pytest.mark.browser

READY = "window.mleeReport && window.mleeReport.ready && window.mleeReport.stats()"


@pytest.fixture(scope="module")
def browser():
    chromium_or_skip()
    with Browser(width=1280, height=900) as b:
        yield b


def open_report(browser: Browser, path, db=None, spec: str = "mlee") -> dict:
    if db is not None:
        write_report(build_report(db, spec, report_path=path, database_name="db.json"), path)
    browser.console.clear()
    browser.requests.clear()
    browser.open(path)
    return browser.wait_for(READY)


def stats(browser: Browser) -> dict:
    return browser.evaluate("mleeReport.stats()")


def ratings(browser: Browser) -> dict[str, dict]:
    return {r["id"]: r for r in browser.evaluate("mleeReport.ratings()")}


def set_input(browser: Browser, selector: str, value: str, event: str = "input") -> None:
    browser.evaluate(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
        el.value = {json.dumps(value)}; el.dispatchEvent(new Event({json.dumps(event)}, {{bubbles: true}})); }})()""")


def click(browser: Browser, selector: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).dispatchEvent("
                     "new MouseEvent('click', {bubbles: true}))")


def test_opens_offline_draws_everything_and_runs_no_injected_script(browser, tmp_path) -> None:
    st = open_report(browser, tmp_path / "r.html", small_database(hostile=True, traces=True))
    assert browser.errors() == []
    assert {u.split(":", 1)[0] for u in browser.requests} == {"file"}  # nothing but the page itself
    # 12 inference runs (6 models x 2 environments), all with energy and top-1: 12 markers, 12 rows, 2 bars.
    assert st["markers"] == 12 and st["rows"] == 12 and st["bars"] == 2 and st["visible"] == 12
    assert browser.evaluate("document.querySelectorAll('#scatter path.marker').length") == 12
    assert browser.evaluate("document.querySelectorAll('#scatter rect.region').length") >= 4
    assert browser.evaluate("document.querySelectorAll('#bars rect.bar').length") >= 4
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    cells = browser.evaluate("[...document.querySelectorAll('#table td:first-child')].map(td => td.textContent)")
    assert any(c.startswith('<img src=x onerror="window.__pwned=1">') for c in cells)
    assert browser.evaluate("document.querySelectorAll('#table img, #detail img').length") == 0
    assert browser.evaluate("mleeReport.mismatches()") == []


def test_screenshot_is_not_blank(browser, tmp_path) -> None:
    from PIL import Image

    open_report(browser, tmp_path / "r.html", small_database())
    png = browser.screenshot()
    (tmp_path / "shot.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1280, 900)
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert len(colours) > 200  # text, axes, markers: far from a blank page
        present = {c for _, c in colours}
        rating_colours = {(0x63, 0x9B, 0x30), (0xB8, 0xAC, 0x2B), (0xF8, 0xB8, 0x30), (0xEF, 0x7D, 0x29),
                          (0xE5, 0x24, 0x21)}
        assert len(rating_colours & present) >= 3  # markers drawn in the rating colours


def test_filters_change_what_is_shown(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    assert stats(browser)["markers"] == 10
    click(browser, "#f-environment input[value^='AMD EPYC']")
    st = stats(browser)
    assert st["markers"] == 5 and st["rows"] == 5 and st["bars"] == 1
    envs = browser.evaluate("[...document.querySelectorAll('#table td:nth-child(2)')].map(td => td.textContent)")
    assert set(envs) == {"Xeon(R) W-2155 - PyTorch 2.14.1"}
    click(browser, "#ds-none")
    assert stats(browser)["markers"] == 0 and stats(browser)["rows"] == 0
    click(browser, "#env-all")
    click(browser, "#ds-all")
    assert stats(browser)["markers"] == 10
    assert browser.errors() == []


def test_weights_and_boundaries_rerate_live_as_mlee_rate_would(browser, tmp_path) -> None:
    db = small_database()
    open_report(browser, tmp_path / "r.html", db)
    before = ratings(browser)
    status = "document.getElementById('spec-status').textContent"
    assert "as `mlee rate` computes them" in browser.evaluate(status)
    # Top-1 dominates the compound rating: every compound becomes the top-1 rating (MobileNetV2: A -> E).
    set_input(browser, "input[data-metric='top1'][data-field='weight']", "100")
    after = ratings(browser)
    assert any(after[i]["compound"] != before[i]["compound"] for i in before)
    assert all(r["compound"] == r["rating"]["top1"] for r in after.values())
    assert "Adjusted in this page" in browser.evaluate(status)
    colours = browser.evaluate("[...document.querySelectorAll('#scatter path.marker')].map(m => m.getAttribute('fill'))")
    assert len(set(colours)) >= 3
    # A boundary edit re-rates that metric; the adjusted spec rates the same in Python.
    set_input(browser, "input[data-metric='time_per_sample'][data-field='b0']", "0.5")
    edited = browser.evaluate("mleeReport.adjustedSpec()")
    spec = load_spec(edited)
    assert spec.name == "mlee-adjusted" and spec.task("inference").metric("top1").weight == 100
    page = ratings(browser)
    for r in rate_database(db, spec):
        assert page[r["id"]]["compound"] == r["compound"]
        assert page[r["id"]]["rating"] == {k: m["rating"] for k, m in r["metrics"].items()}
    # Invalid input is refused and named; the ratings stay.
    set_input(browser, "input[data-metric='time_per_sample'][data-field='b1']", "9")
    assert "strictly descending" in browser.evaluate("document.getElementById('editor-msg').textContent")
    assert ratings(browser) == page
    click(browser, "#download-spec")  # a Blob download: must not trip the page's content security policy
    click(browser, "#reset-spec")
    assert ratings(browser) == before
    # Both axis metrics unweighted: still drawn (the regions then weigh the two axes equally).
    set_input(browser, "input[data-metric='energy_per_sample'][data-field='weight']", "0")
    set_input(browser, "input[data-metric='top1'][data-field='weight']", "0")
    assert stats(browser)["markers"] == 10
    assert browser.evaluate("document.querySelectorAll('#scatter rect.region').length") >= 4
    assert browser.errors() == []


def test_compound_mode_switch_rerates(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    set_input(browser, "#compound-mode", "worst", event="change")
    worst = ratings(browser)
    set_input(browser, "#compound-mode", "best", event="change")
    best = ratings(browser)
    assert all(w["compound"] == max(w["rating"].values()) for w in worst.values())
    assert all(b["compound"] == min(b["rating"].values()) for b in best.values())
    assert worst != best


def test_value_scale_regions_need_one_group(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    click(browser, "input[name=scale][value=value]")
    assert "need one task, dataset and environment" in browser.evaluate(
        "document.getElementById('scatter-note').textContent")
    assert browser.evaluate("document.querySelectorAll('#scatter rect.region').length") == 0
    click(browser, "#f-environment input[value^='AMD EPYC']")
    assert browser.evaluate("document.querySelectorAll('#scatter rect.region').length") >= 4
    click(browser, "#log-axes")
    assert stats(browser)["markers"] == 5
    assert browser.errors() == []


def test_marker_click_shows_detail_and_power_trace(browser, tmp_path) -> None:
    db = small_database(traces=True)
    open_report(browser, tmp_path / "r.html", db)
    click(browser, "#scatter path.marker")  # a marker opens the detail panel
    assert browser.evaluate("document.getElementById('detail-section').hidden") is False
    rid = next(r["id"] for r in db["records"] if r["model"] == "ResNet50")
    click(browser, f"#table tr[data-id='{rid}'] td")
    assert browser.evaluate("document.querySelectorAll('#detail path.trace').length") == 1
    assert "rapl:package-0 (counter)" in browser.evaluate("document.querySelector('#detail .legend').textContent")
    marker = browser.evaluate("document.querySelectorAll('#scatter path.marker.selected').length")
    assert marker == 1
    click(browser, "#scatter path.marker:not(.selected)")
    assert "No power trace" in browser.evaluate("document.getElementById('detail').textContent")
    # The boundaries in the metric's unit for the record's group, beside the index ones (as the paper's ELEx).
    click(browser, f"#table tr[data-id='{rid}'] td")
    detail = browser.evaluate("document.getElementById('detail').textContent")
    ref_energy = next(r for r in db["records"] if r["id"] == rid)["per_sample"]["energy_j"]["total"]
    assert "Boundaries here" in detail and f"A < {ref_energy / 2:.3g}" in detail


def test_table_sorts_by_column(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    click(browser, "#table th[data-key='energy_per_sample']")
    first = browser.evaluate("document.querySelector('#table tbody tr td').textContent")
    assert first == "MobileNetV2"  # 0.3 J x 0.6 on the EPYC: the least energy per sample
    click(browser, "#table th[data-key='energy_per_sample']")
    assert browser.evaluate("document.querySelector('#table tbody tr td').textContent") == "VGG16"


def test_heatmap_correlates_indices(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    n = len(load_spec("mlee").task("inference").metrics)
    assert stats(browser)["cells"] == n * n
    diag = browser.evaluate(f"[...document.querySelectorAll('#heatmap rect.cell')].filter((c, i) => "
                            f"i % {n + 1} === 0).map(c => c.getAttribute('data-r'))")
    assert diag[:2] == ["1.0000", "1.0000"]


def test_labels_beside_the_report_show_as_images_with_pdf_links(browser, tmp_path) -> None:
    from mlee.label.batch import write_labels
    from mlee.label.render import png_support

    if png_support() is None:
        pytest.skip("PNG labels need rlPyCairo or pdftoppm (poppler-utils)")
    db = small_database()
    chosen = [r for r in rate_database(db, load_spec("mlee")) if r["model"] in ("ResNet50", "VGG16")]
    site = tmp_path / "site"
    for fmt in ("pdf", "png"):
        write_labels(chosen, site, fmt=fmt)
    open_report(browser, site / "report.html", db)
    assert stats(browser)["labels"] == 4
    sizes = browser.evaluate("Promise.all([...document.querySelectorAll('#gallery img')].map(i => i.decode()"
                             ".then(() => [i.naturalWidth, i.naturalHeight])))")
    assert len(sizes) == 4 and all(w == 360 and h > 360 for w, h in sizes)
    links = browser.evaluate("[...document.querySelectorAll('#gallery a')].map(a => a.getAttribute('href'))")
    assert len(links) == 4 and all(link.endswith(".pdf") and (site / link).is_file() for link in links)
    click(browser, "#gallery img")
    assert browser.evaluate("document.querySelectorAll('#detail figure.label img').length") == 1
    assert browser.errors() == []


def test_long_tables_grow_as_they_scroll(browser, tmp_path) -> None:
    from test_report_support import large_database

    open_report(browser, tmp_path / "r.html", large_database(400, n_envs=1))
    rows = "document.querySelectorAll('#table tbody tr').length"
    assert stats(browser)["rows"] == 400 and browser.evaluate(rows) == 150
    browser.evaluate("(() => { const t = document.getElementById('table'); t.scrollIntoView(); "
                     "t.scrollTop = t.scrollHeight; })()")
    browser.wait_for(f"{rows} >= 300", timeout_s=5)
    browser.evaluate("(() => { const t = document.getElementById('table'); t.scrollTop = t.scrollHeight; })()")
    browser.wait_for(f"{rows} === 400", timeout_s=5)
    assert browser.evaluate("document.querySelector('#table .more-rows').textContent") == ""


def test_hover_names_model_environment_and_every_metric(browser, tmp_path) -> None:
    open_report(browser, tmp_path / "r.html", small_database())
    browser.evaluate("window.scrollTo(0, 0)")
    x, y = browser.evaluate("(() => { const m = [...document.querySelectorAll('#scatter path.marker')]"
                            ".find(p => p.classList.contains('ref')); const r = m.getBoundingClientRect(); "
                            "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    browser.wait_for("!document.getElementById('tooltip').hidden", timeout_s=5)
    text = browser.evaluate("document.getElementById('tooltip').innerText")
    assert "ResNet50 (reference)" in text
    assert "Xeon(R) W-2155 - PyTorch 2.14.1" in text or "AMD EPYC 7B13 - TensorFlow 2.21.0" in text
    for metric in load_spec("mlee").task("inference").metrics:
        assert metric.label in text
    assert "1.000" in text  # the reference's own indices
    browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 2, "y": 2})
    browser.wait_for("document.getElementById('tooltip').hidden", timeout_s=5)


def test_a_browser_that_dies_at_start_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from browser_driver import BrowserUnavailable

    chromium_or_skip()
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MLEE_CHROMIUM", str(fake))
    b = Browser(timeout_s=5)
    with pytest.raises(BrowserUnavailable, match="cannot start .*chromium"):
        b.start()
    assert b._driver is None and b._profile is None  # nothing left running or on disk


def test_the_driver_sees_console_errors_exceptions_and_requests(browser, tmp_path) -> None:
    # What the report tests rely on when they find no errors and no requests: a page with them is caught.
    page = tmp_path / "noisy.html"
    page.write_text("<!doctype html><img src='http://example.invalid/x.png'><script>"
                    "console.error('said ' + 'no'); setTimeout(() => { throw new Error('boom'); }, 0);"
                    "</script>")
    browser.console.clear()
    browser.requests.clear()
    browser.open(page)
    browser.wait_for("new Promise(r => setTimeout(() => r(true), 50))")
    levels = {e.level for e in browser.errors()}
    texts = " ".join(e.text for e in browser.errors())
    assert "said no" in texts and "boom" in texts and {"error", "exception"} <= levels
    assert "http://example.invalid/x.png" in browser.requests
