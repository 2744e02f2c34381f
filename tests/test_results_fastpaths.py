"""The merge's fast paths give the answers of the plain ones: the yes/no schema validator, one-pass trace stats."""

from __future__ import annotations

import copy
import json
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
