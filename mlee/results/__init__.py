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

from mlee.results.database import load_database, parse_database
from mlee.results.environment import environment_name, hardware_name
from mlee.results.folder import read_experiment
from mlee.results.legacy import read_legacy_file
from mlee.results.merging import MergeReport, merge, merge_into
from mlee.results.schema import CURRENT_VERSIONS, load_schema

#: Version of results.json files this mlee writes and reads.
RESULTS_SCHEMA_VERSION = CURRENT_VERSIONS["results"]
#: Version of merged databases this mlee writes and reads.
DATABASE_SCHEMA_VERSION = CURRENT_VERSIONS["database"]

__all__ = [
    "DATABASE_SCHEMA_VERSION", "MergeReport", "RESULTS_SCHEMA_VERSION", "environment_name", "hardware_name",
    "load_database", "load_schema", "merge", "merge_into", "parse_database", "read_experiment",
    "read_legacy_file",
]
