"""What every command module shares: the consoles, ``guarded``, common options, the ``--data`` shortcut,
and ``Commands``, through which a module lists its commands without ever importing the app."""

from __future__ import annotations

import functools
import os
import sys

import click
import typer
from rich.console import Console

from ..errors import ToptuneError

# Piped output (CI logs, files) gets room for whole tables instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

StoreOpt = typer.Option(None, "--store", envvar="TOPTUNE_STORE", help="DuckDB store file [default: ./toptune.duckdb]")
CacheOpt = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder")
QuietOpt = typer.Option(False, "--quiet", "-q", help="no progress bars")
ParamOpt = typer.Option([], "--param", "-p", help="key=value for every run (repeatable)")
DataOpt = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)")


def guarded(fn):
    """Turn toptune errors into one red line and a non-zero exit; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToptuneError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug, or a plugin's own failure: one line, the traceback on request
            if os.environ.get("TOPTUNE_DEBUG"):
                raise
            err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc} (TOPTUNE_DEBUG=1 shows the traceback)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


class Commands:
    """The commands of one module. ``register(app)`` attaches them (each ``guarded``), so command modules
    never import the app back: the app imports them and calls ``register``."""

    def __init__(self):
        self._commands: list[tuple[str | None, dict, object]] = []
        self._groups: list[tuple[typer.Typer, str]] = []

    def command(self, name: str | None = None, **kwargs):
        def decorator(fn):
            self._commands.append((name, kwargs, fn))
            return fn

        return decorator

    def group(self, sub_app: typer.Typer, name: str) -> typer.Typer:
        self._groups.append((sub_app, name))
        return sub_app

    def register(self, app: typer.Typer) -> None:
        for name, kwargs, fn in self._commands:
            app.command(name, **kwargs)(guarded(fn))
        for sub_app, name in self._groups:
            app.add_typer(sub_app, name=name)


def fmt(value, digits=4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def progress(quiet: bool):
    from ..progress import Progress, TqdmProgress

    return Progress() if quiet else TqdmProgress()


def with_data(params: dict, data: str | None, key: str = "dataset.path") -> dict:
    """``--data DIR`` is a shortcut for the dataset's ``path`` parameter."""
    if data:
        params[key] = data
    return params


def csv_list(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]
