"""Command modules: each defines ``register(app)`` and adds its commands to the Typer app.

cli.py registers every module listed in ``cli.COMMAND_MODULES`` that exists, so a task's own commands
(``filters``, ``params``, ``data``...) live beside nothing else. Keep imports here light: heavy modules
are imported inside the command functions.
"""
