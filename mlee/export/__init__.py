"""Exports of measured results to where ML people already work: MLflow runs, Hugging Face model cards, tables.

This room reads experiment folders and merged databases (``mlee.results``), rates them (``mlee.rating``) and
renders labels (``mlee.label``); nothing below imports it. mlflow, huggingface_hub and pyarrow are imported only
inside the functions that need them.

- :func:`mlee.export.tracking.log_experiment` / :func:`mlee.export.tracking.log_database` - MLflow runs.
- :func:`mlee.export.card.update_card` - the model card's ``co2_eq_emissions`` metadata and "Energy" section.
- :func:`mlee.export.tables.write_table` - Parquet or CSV, one row per record, one column per figure.
"""

from __future__ import annotations
