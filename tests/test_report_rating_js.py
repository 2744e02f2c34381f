"""The page's JavaScript port of mlee.rating gives the same numbers and letters as the Python it was ported from.

Checked in headless Chromium: the pure functions on random and tie-breaking cases, and whole databases, the
232 records of the 2022 logs with every preset included.
"""

from __future__ import annotations

import json
import random

import pytest
from browser_driver import Browser
from test_report_support import chromium_or_skip, legacy_database, small_database

from mlee.rating import COMPOUND_MODES, compound, index_of, load_spec, rate_database, rate_index
from mlee.report.build import build_report, write_report

pytestmark = pytest.mark.browser

READY = "window.mleeReport && window.mleeReport.ready"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    chromium_or_skip()
    path = tmp_path_factory.mktemp("page") / "r.html"
    write_report(build_report(small_database(), "mlee", report_path=path), path)
    with Browser() as b:
        b.open(path)
        b.wait_for(READY)
        yield b


def js(page: Browser, fn: str, cases: list) -> list:
    return page.evaluate(f"{json.dumps(cases)}.map(c => ({fn})(...c))")


def test_compound_modes_match_python_including_ties(page) -> None:
    rng = random.Random(2022)
    weights_pool = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7, 0.8, 1.0, 2.0, 1 / 3]
    cases, expected = [], []
    for _ in range(1500):
        n = rng.randint(1, 8)
        ratings = [rng.randint(0, 4) for _ in range(n)]
        weights = [rng.choice(weights_pool) for _ in range(n)]
        if not any(w > 0 for w in weights):
            weights[0] = 0.4
        mode = rng.choice(COMPOUND_MODES)
        cases.append([ratings, weights, mode])
        expected.append("ABCDE".index(compound(ratings, weights, mode)))
    # The paper's tie rule: cumulative weight exactly 0.5 before the median metric (0.4 + 0.1 = 0.5 in floats
    # is 0.5; 0.2 + 0.3 is 0.5 only within the tolerance) and the 2022 preset's own inference weights.
    ties = [[[0, 3, 4], [0.4, 0.1, 0.5], "paper-median"], [[1, 2, 4], [0.2, 0.3, 0.5], "paper-median"],
            [[0, 1, 2, 3, 4, 0, 1], [0.4, 0.2, 0.4, 0.7, 0.3, 0.8, 0.2], "paper-median"],
            [[1, 2], [0.5, 0.5], "median-optimistic"], [[1, 2], [0.5, 0.5], "median-pessimistic"],
            [[0, 1], [0.5, 0.5], "mean-optimistic"], [[0, 1], [0.5, 0.5], "mean-pessimistic"],
            [[2, 0], [0.5, 0.5], "paper-median"]]
    for c in ties:
        cases.append(c)
        expected.append("ABCDE".index(compound(*c)))
    assert js(page, "MleeRating.compound", cases) == expected
    # The tie cases really are ties (floor of the mean; optimistic and pessimistic rounding differ).
    assert "".join("ABCDE"[e] for e in expected[-len(ties):]) == "DDBBCABB"


def test_index_and_letter_match_python(page) -> None:
    values = [None, -1.0, 0.0, 1e-300, 0.3, 1.0, 2.5, 1e300]
    cases = [[v, r, h] for v in values for r in values for h in (True, False)]
    expected = [index_of(*c) for c in cases]
    assert js(page, "MleeRating.indexOf", cases) == expected
    bounds = [1.8052095901385745, 1.1358154469107322, 0.8662052302144096, 0.49503222117931994]
    idx = [None, 0.0, 0.49503222117931994, 0.5, 0.8662052302144096, 1.0, 1.1358154469107322, 1.81, 9.0]
    letters = js(page, "(i, b) => 'ABCDE'[MleeRating.rateIndex(i, b)]", [[i, bounds] for i in idx])
    assert letters == [rate_index(i, bounds) for i in idx]


def test_value_boundaries_match_python(page) -> None:
    from mlee.rating.core import value_boundaries

    bounds = [1.8052095901385745, 1.1358154469107322, 0.8662052302144096, 0.0]
    cases = [[base, bounds, higher] for base in (None, -1.0, 0.0, 0.2969, 77.0, 1e300) for higher in (True, False)]
    assert js(page, "MleeRating.valueBoundaries", cases) == [value_boundaries(*c) for c in cases]


def test_fsum_is_pythons(page) -> None:
    import math

    rng = random.Random(5)
    lists = [[rng.choice([0.1, 0.2, 0.3, 1e16, -1e16, 1.0, 1e-10]) for _ in range(rng.randint(0, 9))]
             for _ in range(300)]
    assert page.evaluate(f"{json.dumps(lists)}.map(l => MleeRating.fsum(l))") == [math.fsum(x) for x in lists]


@pytest.mark.parametrize("preset", ["mlee-2022", "mlee", "relative"])
def test_page_rates_the_2022_logs_as_rate_database(tmp_path, preset) -> None:
    db = legacy_database()
    chromium_or_skip()
    path = tmp_path / "legacy.html"
    write_report(build_report(db, preset, report_path=path, database_name="legacy"), path)
    rated = rate_database(db, load_spec(preset))
    assert len(rated) == 232
    with Browser() as b:
        b.open(path)
        b.wait_for(READY, timeout_s=30)
        page = {r["id"]: r for r in b.evaluate("mleeReport.ratings()")}
        assert b.evaluate("mleeReport.mismatches()") == []
        assert b.evaluate("mleeReport.stats().visible") == 176  # inference first
        b.evaluate("(() => { const s = document.getElementById('f-task'); s.value = 'training'; "
                   "s.dispatchEvent(new Event('change')); })()")
        assert b.evaluate("mleeReport.stats().visible") == 56
        assert b.evaluate("mleeReport.stats().rows") == 56
        assert b.errors() == []
    assert set(page) == {r["id"] for r in rated}
    for r in rated:
        mine = page[r["id"]]
        assert mine["compound"] == r["compound"], r["id"]
        assert mine["rating"] == {k: m["rating"] for k, m in r["metrics"].items()}, r["id"]
        assert mine["index"] == {k: m["index"] for k, m in r["metrics"].items()}, r["id"]  # bit for bit
