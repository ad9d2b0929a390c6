"""What every command module shares: the consoles, ``guarded``, common options, the ``--data`` shortcut,
and ``Commands``, through which a module lists its commands without ever importing the app."""

from __future__ import annotations

import functools
import os
import sys
import time

import click
import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ..errors import ToptuneError

PIPED_WIDTH = 160


class _Console(Console):
    """A console as wide as the terminal, or $COLUMNS, read at each print; piped output (CI logs, files) that
    names no width gets 160 columns instead of rich's 80."""

    @property
    def size(self) -> ConsoleDimensions:
        if not os.environ.get("COLUMNS", "").isdigit() and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, 25)
        return super().size


# Text is printed as it is: rich markup ("[bold]…") in data, users' words or exceptions is never interpreted.
# Styling is explicit (``Text``, ``style=``), so nothing a user typed can change or break the output.
out = _Console(markup=False, highlight=False)
err = _Console(stderr=True, markup=False, highlight=False)


def fail(message, code: int = 2):
    """Print ``message`` as one red ``error:`` line, literally, and exit with ``code``."""
    err.print(Text("error: ", style="bold red") + plain(one_line(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def one_line(message) -> str:
    """A message on one line: a multi-line one (e.g. from a library) is joined with ' · '."""
    return " · ".join(part.strip() for part in str(message).splitlines() if part.strip())


def sentence(exc: BaseException) -> str:
    """What went wrong, as a sentence without the Python exception's name."""
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot read text: byte {exc.object[exc.start:exc.start + 1]!r} at position {exc.start} is not " \
               f"{exc.encoding} (save the file as UTF-8)"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror[:1].lower()}{exc.strerror[1:]}"
    text = one_line(exc)
    return text if text else f"an unexpected {type(exc).__name__.lower()}"


def as_typed(message: str, options: dict) -> str:
    """A message in the words the user typed: a dataset's hint about its ``path`` parameter names ``--data``
    when that is how the path was given."""
    if options.get("data"):
        for said, typed in (("--param path=DIR", "--data DIR"), ("--param path", "--data")):
            message = message.replace(said, typed)
    return message


# typer raises these to stop with a status; they are not failures to report.
PASSING = (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit, click.exceptions.Abort,
           click.exceptions.ClickException, SystemExit)


def guarded(fn):
    """Turn toptune errors into one red line and a non-zero exit; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToptuneError as exc:
            fail(as_typed(str(exc), kwargs), exc.exit_code)
        except KeyboardInterrupt:
            err.print(Text("interrupted", style="yellow"))
            raise typer.Exit(130) from None
        except PASSING:
            raise
        except OSError as exc:  # a file or folder the command needed: say which, and why
            if os.environ.get("TOPTUNE_DEBUG"):
                raise
            fail(sentence(exc), 1)
        except Exception as exc:  # a bug, or a plugin's own failure: one line, the traceback on request
            if os.environ.get("TOPTUNE_DEBUG"):
                raise
            fail(f"{sentence(exc)} (unexpected; TOPTUNE_DEBUG=1 shows the traceback)", 1)

    return wrapper


class OneLineErrors(TyperGroup):
    """The app's group: a usage error (bad option value, unknown command) is one ``error:`` line, not a panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                ctx = getattr(exc, "ctx", None)
                hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
                err.print(Text("error: ", style="bold red") + plain(one_line(exc.format_message()) + hint),
                          highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print(Text("aborted", style="yellow"))
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


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
                 width: int | None = None, styles: dict | None = None, wrap: tuple = ()) -> Table:
    """A table of ``columns`` (key, header, numeric) that fits ``width`` (the terminal's by default).

    Columns go, last listed first, until the rest fit; the first two always stay. Cells are printed literally
    and numbers are never cut: a column is either shown whole or left out (a note says which were left out).
    Text columns named in ``wrap`` may wrap between words (to at least ``WRAP_WIDTH`` or their longest word);
    the others stay on one line. ``styles`` maps a key to a function of the cell's text giving its style.
    """
    width = width or out.width
    shown = list(columns)
    natural = {key: max([len(header)] + [len(row.get(key, "")) for row in rows]) for key, header, _ in columns}
    least = {key: min(natural[key], max([WRAP_WIDTH] + [len(w) for row in rows for w in row.get(key, "").split()]))
             if key in wrap else natural[key] for key in natural}
    while len(shown) > 2 and sum(least[k] + 3 for k, _, _ in shown) + 1 > width:
        shown.pop()
    dropped = [header for key, header, _ in columns if (key, header) not in [(k, h) for k, h, _ in shown]]
    caption = f"left out to fit {width} columns: {', '.join(dropped)} (widen the terminal, or --json)" \
        if dropped else None
    table = Table(title=title, header_style="bold", caption=caption, caption_justify="left")
    for key, header, numeric in shown:
        table.add_column(header, justify="right" if numeric else "left", no_wrap=key not in wrap,
                         min_width=least[key] if numeric or key in wrap else None)
    for row in rows:
        table.add_row(*[Text(row.get(key, ""), style=(styles or {}).get(key, lambda _: "")(row.get(key, "")))
                        for key, _, _ in shown])
    return table


WRAP_WIDTH = 16  # a wrapping text column keeps at least this many characters (or its longest word)


def grid_table(first: str, columns: list[str], rows, title=None) -> Table:
    """A study's table: a name column, then one right-aligned column per level (Z, shift, fraction)."""
    return words_table([first, *columns], [[name, *cells] for name, cells in rows], title=title,
                       right=range(1, len(columns) + 1))


def words_table(headers: list[str], rows, title=None, right=(), styles: dict | None = None,
                width: int | None = None) -> Table:
    """A table that fits ``width`` (the terminal's by default) without cutting a number.

    Columns get their natural width where the table fits. Otherwise the widest are narrowed alike, down to a
    common width: their cells wrap between words, and a word longer than that folds across lines; no column
    gets narrower than its longest number (or its header's longest word, up to ``HEADER_WORD``), so numbers
    are never cut. ``right`` are the indices of right-aligned columns; ``styles`` maps an index to a function
    of the cell's text giving its style. Cells are printed literally.
    """
    width = width or out.width
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    texts = [[header, *(row[i] for row in rows if i < len(row))] for i, header in enumerate(headers)]
    natural = [max(len(t) for t in column) for column in texts]
    least = [max([len(w) for t in column for w in t.split() if _numeric(w)]
                 + [min(HEADER_WORD, len(w)) for w in column[0].split()] + [1]) for column in texts]
    room = width - 3 * len(headers) - 1
    level = max(natural)
    while level > 1 and sum(min(n, max(level, low)) for n, low in zip(natural, least)) > room:
        level -= 1
    table = Table(title=title, header_style="bold")
    for i, header in enumerate(headers):
        table.add_column(plain(header), justify="right" if i in right else "left", overflow="fold",
                         width=min(natural[i], max(level, least[i])))
    for row in rows:
        table.add_row(*[Text(c, style=(styles or {}).get(i, lambda _: "")(c)) for i, c in enumerate(row)])
    return table


HEADER_WORD = 12  # a header word up to this long is never folded


def _numeric(word: str) -> bool:
    """A number as tables show them: '0.9311', '+2.99', '1,281,167', '9.7×', '32x32', '0.1.0', '(9.7–26.1)'."""
    core = word.strip("()[],;")
    return any(c.isdigit() for c in core) and all(c.isdigit() or c in ".,:x×%+-−–±_/" for c in core)


def print_cards(cards: list, title: str = "verdicts") -> None:
    """Verdict cards, one line each as the engine words them (``Card.text``), wrapped at the terminal's width."""
    if not cards:
        return
    out.print(Text(title, style="bold"))
    for card in cards:
        out.print(Text("• ") + plain(card.text))
