"""The ``toptune`` command line: the app, and every command module registered on it.

Each module of this package lists its commands (``common.Commands``) and never imports this one; every
command calls the same engine functions as the dashboard and tests.
"""

from __future__ import annotations

import typer

from . import cluster, compare, dashboard, housekeeping, mlflow, models, plugins, research, run, sweep
from .common import OneLineErrors

app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune or top-tune? Measure it.")
for module in (run, housekeeping, models, compare, cluster, research, sweep, plugins, dashboard, mlflow):
    module.register(app)


def main() -> None:
    app()
