"""Experiment folders, the merged database, the 2022 log import and multi-rank combining.

Public API (docs/design.md §2-3; keys explained in docs/schema.md):

- :func:`load_database` - read a merged database, validated; older schema versions upgraded, newer refused.
- :func:`merge` / :func:`merge_into` - folders and 2022 logs -> database (lock + atomic rename when written).
- :func:`read_experiment` - one experiment folder -> one record.
- :func:`mlee.results.legacy.read_legacy_file` - one 2022 log -> one record.
- :func:`environment_name` - ``"A100 x8 - TensorFlow 2.8.0"``.

Importing this package is light: numpy is only imported when a trace is parsed.
"""

from __future__ import annotations

from typing import Any

#: Public name -> the module that defines it; imported on first use, so that the experiment-folder writers
#: (``mlee.results.layout``, ``mlee.results.tracefile``), which a sampler process imports, stay light.
_LAZY = {
    "load_database": "database", "parse_database": "database", "environment_name": "environment",
    "hardware_name": "environment", "read_experiment": "folder", "read_legacy_file": "legacy",
    "MergeReport": "merging", "merge": "merging", "merge_into": "merging", "load_schema": "schema",
}

__all__ = [
    "DATABASE_SCHEMA_VERSION", "MergeReport", "RESULTS_SCHEMA_VERSION", "environment_name", "hardware_name",
    "load_database", "load_schema", "merge", "merge_into", "parse_database", "read_experiment",
    "read_legacy_file",
]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f"mlee.results.{_LAZY[name]}"), name)
    if name in ("RESULTS_SCHEMA_VERSION", "DATABASE_SCHEMA_VERSION"):
        # Versions of results.json files and of merged databases this mlee writes and reads.
        from mlee.results.schema import CURRENT_VERSIONS

        return CURRENT_VERSIONS["results" if name.startswith("RESULTS") else "database"]
    raise AttributeError(f"module 'mlee.results' has no attribute {name!r}")
