"""The merge's fast paths give the answers of the plain ones: the yes/no schema validator, one-pass trace stats."""

from __future__ import annotations

import copy
import json
import os
import random

import pytest

from mlee.results import schema
from mlee.results.schema_fast import fast_validator
from mlee.results.traces import trace_stats
from results_builders import make_experiment, write_trace

REPLACEMENTS = (None, "x", 1, -1.5, True, [], {}, [1], float("inf"))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutants(doc, rng):
    for path in list(_paths(doc))[1:]:
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        for value in rng.sample(REPLACEMENTS, 3):
            mutant = copy.deepcopy(doc)
            target = mutant
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            yield mutant
        if isinstance(parent, dict):
            mutant = copy.deepcopy(doc)
            target = mutant
            for step in path[:-1]:
                target = target[step]
            del target[path[-1]]
            yield mutant


@pytest.mark.parametrize("kind", ["infer", "run"])
def test_fast_validator_agrees_with_the_naming_one(tmp_path, kind):
    folder = make_experiment(tmp_path, kind=kind) if kind == "run" else make_experiment(tmp_path)
    doc = json.loads((folder / "results.json").read_text())
    named, fast = schema._COMPILER.ref("results", ""), fast_validator("results")
    assert fast(doc) and named(doc, "") is None
    rng = random.Random(7)
    n = disagreements = refused = 0
    for mutant in _mutants(doc, rng):
        n += 1
        says_ok, problem = fast(mutant), named(mutant, "")
        refused += problem is not None
        disagreements += says_ok != (problem is None)
    assert n > 100 and refused > 50 and disagreements == 0


def test_one_pass_trace_stats_equal_the_per_column_ones(tmp_path):
    rng = random.Random(3)
    rows = [[i * 0.1, i * 0.7 + rng.random(), 40 + rng.gauss(0, 3), 1] for i in range(997)]
    write_trace(tmp_path / "all.csv", rows)                      # every row valid: the one-pass path
    write_trace(tmp_path / "mixed.csv", rows + [[99.9, 1e9, 1e9, 0]])  # an invalid row: the per-column path
    whole, _ = trace_stats(tmp_path / "all.csv", "x")
    per_column, _ = trace_stats(tmp_path / "mixed.csv", "x")
    for channel in ("x.energy_j", "x.power_w"):
        assert whole[channel] == per_column[channel]  # the same floats, bit for bit


# --- reading a folder fingerprints the files it opened -------------------------------------------------

def _states(tmp_path):
    """Folders in the states a merge meets: complete, no power/, truncated results.json, a missing trace,
    an extra trace, a trace that does not parse."""

    ok = make_experiment(tmp_path / "ok", name="ok")
    no_power = make_experiment(tmp_path / "np", name="np")
    import shutil

    shutil.rmtree(no_power / "power")
    truncated = make_experiment(tmp_path / "tr", name="tr")
    (truncated / "results.json").write_bytes((truncated / "results.json").read_bytes()[:50])
    missing = make_experiment(tmp_path / "mi", name="mi")
    (missing / "power" / "rapl_package-0.csv").unlink()
    extra = make_experiment(tmp_path / "ex", name="ex")
    (extra / "power" / "spare.csv").write_text("t_s,energy_j,power_w,valid\n0,0,1,1\n")
    bad = make_experiment(tmp_path / "bad", name="bad")
    (bad / "power" / "host.csv").write_text("t_s,proc_cpu_percent\n0,nan\n")
    return [ok, no_power, truncated, missing, extra, bad]


def test_a_folder_read_is_fingerprinted_as_the_update_check_fingerprints_it(tmp_path):
    # If the two ever differ, every --update re-reads every folder.
    from mlee.results.discover import discover
    from mlee.results.folder import fingerprint
    from mlee.results.reading import read_input

    folders = _states(tmp_path)
    inputs, _ = discover([tmp_path])
    assert len(inputs) == len(folders)
    outcomes = set()
    for inp in inputs:
        out = read_input(inp)
        outcomes.add(out[0])
        assert out[-1] == fingerprint(inp.location, None, inp.probe), inp.display
        assert out[-1] == fingerprint(inp.location, out[-1], inp.probe), inp.display
    assert outcomes == {"record", "skip"}


def test_a_changed_file_changes_the_fingerprint(tmp_path):
    from mlee.results.discover import discover
    from mlee.results.folder import fingerprint
    from mlee.results.reading import read_input

    folder = make_experiment(tmp_path / "runs", name="m")
    (inp,), _ = discover([tmp_path / "runs"])
    before = read_input(inp)[-1]
    trace = folder / "power" / "host.csv"
    trace.write_bytes(trace.read_bytes() + b"")  # same bytes, new mtime
    st = os.stat(trace)
    os.utime(trace, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert fingerprint(inp.location, before, inp.probe) != before


# --- reader count and the garbage-collector pause -------------------------------------------------------

def test_idle_share_comes_from_two_proc_stat_readings():
    from mlee.results.reading import cpu_times, idle_share

    first = cpu_times(b"cpu  100 0 50 800 50 0 0 0 0 0\n")
    second = cpu_times(b"cpu  200 0 100 1100 100 0 0 0 0 0\n")
    assert first == (850, 1000) and second == (1200, 1500)
    assert idle_share(first, second) == pytest.approx(350 / 500)
    assert idle_share(first, first) is None  # no time passed: it cannot tell
    assert cpu_times(b"intr 1 2 3\n") is None
    assert cpu_times(b"cpu  1 2 x 4 5\n") is None


def test_default_jobs_falls_back_to_the_load_average_without_proc_stat(tmp_path, monkeypatch):
    from mlee.results import reading

    monkeypatch.setattr(reading.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(reading.os, "getloadavg", lambda: (5.2, 0.0, 0.0))
    assert reading.default_jobs(0.0, str(tmp_path / "no-proc-stat")) == 3  # 8 CPUs, 5.2 busy
    monkeypatch.setattr(reading.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert reading.default_jobs(0.0, str(tmp_path / "no-proc-stat")) == 4  # never more than 4
    monkeypatch.setattr(reading.os, "getloadavg", lambda: (30.0, 0.0, 0.0))
    assert reading.default_jobs(0.0, str(tmp_path / "no-proc-stat")) == 1  # never fewer than 1
    monkeypatch.setattr(reading.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert reading.default_jobs(0.0, str(tmp_path / "no-proc-stat")) == 1


def test_the_merge_pauses_the_garbage_collector_and_restores_it(tmp_path):
    import gc

    from mlee.results.merging import build
    from mlee.results.jsonio import paused_gc

    make_experiment(tmp_path / "runs", name="m")
    assert gc.isenabled()
    build([tmp_path / "runs"])
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with paused_gc():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
