"""CLI: ``mlee card DB --model M [--env E] -o README.md``: a Hugging Face model card's energy facts."""

from __future__ import annotations

from pathlib import Path

import typer


def card(
    db_path: Path = typer.Argument(..., metavar="DB", help="A merged database (`mlee merge` output)."),
    model: str = typer.Option(..., "--model", "-m", help="The model the card describes."),
    env: str = typer.Option(None, "--env", "-e",
                            help="Its environment, when it was measured in several."),
    output: Path = typer.Option(Path("README.md"), "--output", "-o",
                                help="The model card to write, or to update keeping the rest of it."),
    spec: str = typer.Option(None, "--spec", "-s", metavar="PRESET|FILE",
                             help="Rating spec for the label (default: mlee)."),
) -> int:
    """Write the energy facts of a model into its Hugging Face model card.

    Sets the metadata's co2_eq_emissions (grams, source mlee, training type, location, hardware) and
    writes an "Energy" section: the label as PNG (energy-label.png beside the card), energy per sample
    with the method of each figure, time per sample, the rating and the spec's hash. The rest of an
    existing card is kept. Exit codes: 0 ok, 1 failure, 2 bad usage (unknown model, ambiguous environment).
    """
    from mlee.console import message
    from mlee.export.card import update_card
    from mlee.results import load_database

    result = update_card(load_database(db_path), model, output, env=env, spec=spec)
    rating = f"rating {result.rating}" if result.rating else "not rated (no label)"
    message(f"{'wrote' if result.created else 'updated'} {result.path}: {result.emissions_g:.4g} g CO2e, "
            f"{len(result.record_ids)} run(s), {rating}"
            + (f"; label {result.label}" if result.label else ""))
    return 0
