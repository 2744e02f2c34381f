"""Rating: index scaling, boundaries, weights, compound ratings and the CI gates of ``mlee check`` (``gate``), from
merged JSON alone.

Public API (stable; used by ``mlee label``, ``mlee report`` and ``mlee check``):

- :func:`load_spec` -- a preset (``mlee``, ``mlee-2022``, ``relative``) or a JSON/TOML spec file as a :class:`Spec`.
- :func:`rate_database` -- rated records (docs/design.md §4) of a merged database.
- :func:`calibrate` -- a new spec (as data) with boundaries at the database's index quantiles.
- pure helpers :func:`index_of`, :func:`rate_index`, :func:`compound`; :data:`LETTERS`, :data:`COLOURS`.

Nothing here imports a monitor, a framework or numpy: rating 100,000 records is plain, linear Python.
"""

from __future__ import annotations

from mlee.rating.core import COLOURS, COMPOUND_MODES, LETTERS, compound, index_of, rate_index
from mlee.rating.calibrate import calibrate
from mlee.rating.groups import quantile
from mlee.rating.rate import rate_database
from mlee.rating.spec import PRESETS, MetricSpec, Spec, TaskSpec, load_spec, spec_from_dict

__all__ = [
    "COLOURS", "COMPOUND_MODES", "LETTERS", "PRESETS", "MetricSpec", "Spec", "TaskSpec", "calibrate", "compound",
    "index_of", "load_spec", "quantile", "rate_database", "rate_index", "spec_from_dict",
]
