"""The options of ``mlee infer`` that only ``--backend transformers`` takes (kept apart to keep infer.py small)."""

from __future__ import annotations

import typer

TASK = typer.Option(None, "--task", show_default=False,
                    help="transformers: text-classification, text-generation, image-classification or "
                         "automatic-speech-recognition (default: from the model's config).")
MAX_NEW_TOKENS = typer.Option(16, "--max-new-tokens",
                              help="transformers text-generation: new tokens per query (EOS does not stop early).")
INPUT_TOKENS = typer.Option(32, "--input-tokens", help="transformers text tasks: tokens per synthetic prompt, and "
                            "the cut for prompts read from --data-path.")
DTYPE = typer.Option("float32", "--dtype", help="transformers: float32, float16 or bfloat16.")
