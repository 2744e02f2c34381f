"""The commands of the CLI, one module per command named after it (``infer.py`` holds ``mlee infer``).

Each command parses its options, calls the library and renders the result (the rich tables live here, not in
the library); :mod:`mlee.cli` registers them. Modules whose names start with ``_`` hold what several commands
share (options, the model-run summary, the rating input, the prediction tables). Heavy libraries are imported
only inside the command functions, and no command imports :mod:`mlee.cli`.
"""
