"""What every command module shares: the consoles, ``guarded``, common options, the ``--data`` shortcut,
and ``Commands``, through which a module lists its commands without ever importing the app."""

from __future__ import annotations

import functools
import os
import sys
import time

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import ToptuneError


def _width(stream) -> int | None:
    """A terminal's own width, or $COLUMNS; piped output (CI logs, files) gets 160 instead of rich's 80."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else 160


out = Console(width=_width(sys.stdout))
err = Console(stderr=True, width=_width(sys.stderr))



def guarded(fn):
    """Turn toptune errors into one red line and a non-zero exit; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToptuneError as exc:
            err.print(Text("error: ", style="bold red") + plain(exc), highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print(Text("interrupted", style="yellow"))
            raise typer.Exit(130) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug, or a plugin's own failure: one line, the traceback on request
            if os.environ.get("TOPTUNE_DEBUG"):
                raise
            err.print(Text("error: ", style="bold red") + plain(f"{type(exc).__name__}: {exc} "
                                                                 "(TOPTUNE_DEBUG=1 shows the traceback)"),
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


def cell(value, digits=4) -> str:
    """A table cell: empty for None, 4 significant digits for floats."""
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


def run_study(study, specs: list, store, cache_dir, quiet: bool) -> tuple:
    """Run a planned study through the engine: (its summary, the Store, seconds), with progress unless quiet."""
    from ..features.cache import FeatureCache
    from ..store import Store

    st, t0 = Store(store), time.perf_counter()
    summary = study.run(specs, st, cache=FeatureCache(cache_dir), progress=progress(quiet))
    return summary, st, time.perf_counter() - t0


def print_done(summary, st, seconds: float) -> None:
    out.print(f"{len(summary.run_ids)} runs in {seconds:.0f} s · store: {st.path.resolve()}", markup=False,
              highlight=False, soft_wrap=True)


# Rich reads "[...]" in text as markup; data, users' words and exceptions are printed as they are.
def plain(text) -> Text:
    return Text("" if text is None else str(text))


def fitted_table(columns: list[tuple[str, str, bool]], rows: list[dict], title: str | None = None,
                 width: int | None = None, styles: dict | None = None) -> Table:
    """A table of ``columns`` (key, header, numeric) that fits ``width`` (the terminal's by default).

    Columns go, last listed first, until the rest fit; the first two always stay. Cells are printed literally
    and numbers are never cut: a column is either shown whole or left out (a note says which were left out).
    ``styles`` maps a key to a function of the cell's text giving its style.
    """
    width = width or out.width
    shown = list(columns)
    natural = {key: max([len(header)] + [len(row.get(key, "")) for row in rows]) for key, header, _ in columns}
    while len(shown) > 2 and sum(natural[k] + 3 for k, _, _ in shown) + 1 > width:
        shown.pop()
    dropped = [header for key, header, _ in columns if (key, header) not in [(k, h) for k, h, _ in shown]]
    caption = f"left out to fit {width} columns: {', '.join(dropped)} (widen the terminal, or --json)" \
        if dropped else None
    table = Table(title=title, header_style="bold", caption=caption, caption_justify="left")
    for key, header, numeric in shown:
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True,
                         min_width=natural[key] if numeric else None)
    for row in rows:
        table.add_row(*[Text(row.get(key, ""), style=(styles or {}).get(key, lambda _: "")(row.get(key, "")))
                        for key, _, _ in shown])
    return table
