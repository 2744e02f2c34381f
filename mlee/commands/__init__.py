"""CLI commands, one module per command group; each exposes ``register(app)``.

These modules are part of the CLI layer: they parse options, call the library and render.
They import heavy libraries only inside the command functions.
"""
