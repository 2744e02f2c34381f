"""The shipped JSON Schemas: valid, agreeing with the built-in validator, versioned."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from referencing import Registry, Resource

import mlee.results.schema as schema
from mlee.errors import ResultFormatError
from mlee.results import load_database, merge, read_experiment
from mlee.results.schema import problem
from mlee.results.schema_base import SCHEMA_FILES, load_schema
from results_builders import DEFAULT_SOURCES, gpu_source, legacy_dir_or_none, make_experiment  # noqa: F401


def _validator(name: str, pointer: str = "") -> jsonschema.Validator:
    registry = Registry().with_resources(
        [(load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in SCHEMA_FILES])
    root = load_schema(name)
    target = {"$ref": root["$id"] + ("#" + pointer if pointer else "")}
    return jsonschema.Draft202012Validator(target, registry=registry)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_files_are_valid_draft_2020_12_and_versioned(name):
    doc = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["x-mlee-schema-version"] == 1
    assert doc["$id"].endswith(f"/{name}.schema.json")


def test_schemas_are_shipped_as_package_data():
    from importlib import resources

    names = sorted(p.name for p in resources.files("mlee").joinpath("schema").iterdir() if p.name.endswith(".json"))
    assert names == sorted(f"{n}.schema.json" for n in SCHEMA_FILES)


def test_built_folder_files_conform_to_their_schemas(tmp_path):
    folder = make_experiment(tmp_path, sources=DEFAULT_SOURCES + (gpu_source(0),), device="cuda")
    for name in ("results", "config", "environment"):
        doc = json.loads((folder / f"{name}.json").read_text())
        _validator(name).validate(doc)
        assert problem(name, doc) is None


def _broken_results(base: dict) -> list[dict]:
    out = []
    for path, value in [(("energy_j", "cpu"), -1.0), (("energy_j", "total"), "x"), (("kind",), "dance"),
                        (("sources", 0, "domain"), "disk"), (("sources", 0, "method"), "guess"),
                        (("start_utc",), "yesterday"), (("windows", 0, "start_s"), None),
                        (("metrics", "top1"), 1.5), (("backend",), {"version": "1"}),
                        (("rank",), {"rank": -1}), (("n_samples",), 2.5), (("estimated",), "no")]:
        doc = copy.deepcopy(base)
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
        out.append(doc)
    return out


def test_builtin_validator_agrees_with_jsonschema(tmp_path):
    folder = make_experiment(tmp_path)
    base = json.loads((folder / "results.json").read_text())
    reference = _validator("results")
    assert reference.is_valid(base) and problem("results", base) is None
    for doc in _broken_results(base):
        assert not reference.is_valid(doc)
        assert problem("results", doc) is not None


def test_merged_database_conforms_to_the_database_schema(tmp_path, legacy_dir_or_none):
    make_experiment(tmp_path / "runs")
    make_experiment(tmp_path / "runs", name="other", status="failed")
    paths = [tmp_path / "runs"] + ([legacy_dir_or_none] if legacy_dir_or_none else [])
    db = merge(paths)
    _validator("database").validate(db)
    assert db["records"] and db["summaries"]


def test_load_database_refuses_a_newer_version_and_upgrades_an_older_one(tmp_path, monkeypatch):
    make_experiment(tmp_path / "runs")
    out = tmp_path / "db.json"
    merge([tmp_path / "runs"], out)
    db = json.loads(out.read_text())
    db["schema_version"] = 2
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(db))
    with pytest.raises(ResultFormatError, match="schema_version 2, newer .*upgrade mlee"):
        load_database(newer)
    # A future mlee at version 2 still reads version 1 through its migration.
    monkeypatch.setitem(schema.CURRENT_VERSIONS, "database", 2)
    monkeypatch.setitem(schema.MIGRATIONS, ("database", 1), lambda d: {**d, "migrated": True})
    upgraded = load_database(out)
    assert upgraded["schema_version"] == 2 and upgraded["migrated"] is True
    monkeypatch.setitem(schema.MIN_VERSIONS, "database", 2)
    with pytest.raises(ResultFormatError, match="older than the oldest supported"):
        load_database(out)


def test_older_results_version_is_upgraded_when_read(tmp_path, monkeypatch):
    folder = make_experiment(tmp_path)
    monkeypatch.setitem(schema.CURRENT_VERSIONS, "results", 2)
    monkeypatch.setitem(schema.MIGRATIONS, ("results", 1), lambda d: {**d, "renamed": d["name"]})
    rec = read_experiment(folder)
    assert rec["schema_version"] == 2 and rec["renamed"] == "resnet18"


def test_load_database_names_the_broken_record(tmp_path):
    make_experiment(tmp_path / "runs")
    out = tmp_path / "db.json"
    merge([tmp_path / "runs"], out)
    db = json.loads(out.read_text())
    db["records"][0]["energy_j"]["cpu"] = "lots"
    out.write_text(json.dumps(db))
    with pytest.raises(ResultFormatError, match=r"records\[0\]\.energy_j\.cpu is a string"):
        load_database(out)
    out.write_text('{"kind": "something-else", "schema_version": 1}')
    with pytest.raises(ResultFormatError, match="not an mlee database"):
        load_database(out)
    out.write_text('{"kind": "mlee-database", "schema_version": 1, "records": [')
    with pytest.raises(ResultFormatError, match="truncated"):
        load_database(out)
