"""Property-based tests (hypothesis) of the record reader, the trace statistics and the merge."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlee.errors import ResultFormatError
from mlee.results import merge, read_experiment
from mlee.results.summary import mean_std
from mlee.results.traces import trace_stats
from results_builders import make_experiment, write_trace

T0 = dt.datetime(2026, 11, 22, 7, 0, 0)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def template():
    with tempfile.TemporaryDirectory() as d:
        folder = make_experiment(Path(d), start=T0)
        yield {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}, \
            {p.name: p.read_bytes() for p in (folder / "power").iterdir()}


def _folder(root: Path, template, results: bytes) -> Path:
    files, power = template
    folder = root / "exp"
    (folder / "power").mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for name, data in power.items():
        (folder / "power" / name).write_bytes(data)
    (folder / "results.json").write_bytes(results)
    return folder


@SETTINGS
@given(data=st.binary(max_size=300))
def test_reader_fails_closed_on_arbitrary_bytes(template, data):
    with tempfile.TemporaryDirectory() as d:
        folder = _folder(Path(d), template, data)
        with pytest.raises(ResultFormatError):
            read_experiment(folder)


@SETTINGS
@given(key=st.sampled_from(["energy_j", "energy_method", "sources", "status", "duration_s", "start_utc", "kind",
                            "windows", "rank", "per_sample", "metrics", "backend", "schema_version", "id"]),
       value=json_values)
def test_reader_accepts_or_refuses_with_a_reason_for_any_value_of_any_key(template, key, value):
    results = json.loads(template[0]["results.json"])
    results[key] = value
    with tempfile.TemporaryDirectory() as d:
        folder = _folder(Path(d), template, json.dumps(results).encode())
        try:
            rec = read_experiment(folder)
        except ResultFormatError as exc:
            assert str(exc)  # a reason, never an empty message
        else:
            assert rec[key] == value
            json.dumps(rec, allow_nan=False)


@SETTINGS
@given(values=st.lists(st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)),
                       min_size=0, max_size=200),
       valid=st.lists(st.booleans(), min_size=200, max_size=200),
       block=st.integers(min_value=40, max_value=5000))
def test_trace_stats_match_numpy_for_any_values_and_block_size(values, valid, block):
    import mlee.results.traces as traces

    rows = [[i * 0.1, None, v, int(valid[i])] for i, v in enumerate(values)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.csv"
        write_trace(path, rows)
        saved = traces.BLOCK_BYTES
        traces.BLOCK_BYTES = block
        try:
            stats, _ = trace_stats(path, "x")
        finally:
            traces.BLOCK_BYTES = saved
        with open(path, newline="", encoding="utf-8") as fh:
            back = list(csv.reader(fh))[1:]  # an independent parser as the reference
    kept = np.array([float(r[2]) for r in back if r[3] == "1" and r[2] != ""])
    got = stats["x.power_w"]
    assert got["n"] == len(kept)
    if len(kept):
        assert got["mean"] == pytest.approx(kept.mean(), rel=1e-9, abs=1e-6)
        assert got["std"] == pytest.approx(kept.std(), rel=1e-6, abs=1e-3)
        assert (got["min"], got["max"]) == (kept.min(), kept.max())
    else:
        assert got["mean"] is None


run_spec = st.tuples(
    st.sampled_from(["ResNet18", "MobileNetV2", "VGG16"]),
    st.sampled_from(["completed", "completed", "failed", "interrupted", "running", "broken"]),
    st.floats(min_value=0.5, max_value=5.0),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(run_spec, min_size=1, max_size=7), seed=st.integers(0, 1000))
def test_merge_loses_nothing_is_order_independent_and_summarises_correctly(specs, seed):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "runs"
        made = []
        for i, (model, status, seconds) in enumerate(specs):
            folder = make_experiment(root, name=f"r{i}", model=model, start=T0 + dt.timedelta(minutes=i),
                                     duration_s=round(seconds, 1), status="completed" if status == "broken" else status)
            if status == "broken":
                (folder / "results.json").write_text("{\"schema_version\": 1,")
            made.append((folder, model, status))
        db = merge([root])
        # Nothing dropped silently: every folder is a record or a skipped entry.
        assert len(db["records"]) + len(db["skipped"]) == len(made)
        assert len(db["skipped"]) == sum(s in ("running", "broken") for _, _, s in made)
        # Same bytes from a copy made in another order.
        other = Path(d) / "copy" / "runs"
        order = list(made)
        random.Random(seed).shuffle(order)
        import shutil

        for folder, _, _ in order:
            shutil.copytree(folder, other / folder.name)
        assert merge([other]) == db
        for s in db["summaries"]:
            runs = [(f, m) for f, m, st_ in made if m == s["model"] and st_ == "completed"]
            assert s["n"] == len(runs)
            energies = [json.loads((f / "results.json").read_text())["per_sample"]["energy_j"]["total"]
                        for f, _ in runs]
            assert s["per_sample"]["energy_j"] == pytest.approx(mean_std(energies))
            assert s["per_sample"]["energy_j"]["mean"] == pytest.approx(sum(energies) / len(energies))
        assert sum(s["n"] for s in db["summaries"]) == sum(st_ == "completed" for _, _, st_ in made)
