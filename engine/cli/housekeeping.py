"""``toptune name``, ``note``, ``tag``, ``archive``, ``restore`` and ``delete``: keeping the store tidy.

Every change goes through the store's one writer path (``Store.rename`` and the rest), which checks every id
first: an unknown id changes nothing. Archiving hides runs from every list and summary and is undone by
``restore``; deleting is for good, so it lists what it would remove and asks first (``--yes`` skips the question).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.text import Text

from ..errors import ParamError
from ..store import Store
from ..store.artifacts import disk_usage
from . import options as opt
from .common import Commands, csv_list, out, plain
from .run import runs_table

commands = Commands()
register = commands.register

RunIds = typer.Argument(..., help="run ids (toptune runs lists them)")


@commands.command()
def name(run_id: str = typer.Argument(..., help="run id"),
         text: str = typer.Argument(..., help="the run's name, e.g. \"baseline 224 px\" (\"\" removes it)"),
         store: Path | None = opt.Store):
    """Name a run; the name shows beside its id and is found by search."""
    Store(store).rename(run_id, text)
    out.print(plain(f"run {run_id}: " + (f"named {text.strip()!r}" if text.strip() else "name removed")))


@commands.command()
def note(run_id: str = typer.Argument(..., help="run id"),
         text: str = typer.Argument(..., help="the note (\"\" removes it)"),
         store: Path | None = opt.Store):
    """Write a note on a run (why it ran, what was odd about it); it replaces the run's earlier note."""
    Store(store).annotate(run_id, text)
    out.print(plain(f"run {run_id}: " + ("note saved" if text.strip() else "note removed")))


@commands.command()
def tag(run_ids: list[str] = RunIds,
        add: list[str] = typer.Option([], "--add", "-a", help="tag to add (repeatable, or comma-separated)"),
        remove: list[str] = typer.Option([], "--remove", "-r", help="tag to remove (repeatable, or comma-separated)"),
        store: Path | None = opt.Store):
    """Add or remove tags on runs; `toptune runs --tag NAME` lists the runs tagged so, and SQL can too
    (list_contains(tags, 'NAME'))."""
    added = [t for text in add for t in csv_list(text)]
    removed = [t for text in remove for t in csv_list(text)]
    if not added and not removed:
        raise ParamError("say which tags: --add NAME and/or --remove NAME")
    changed = Store(store).tag(run_ids, add=added, remove=removed)
    out.print(plain(f"{changed} of {len(set(run_ids))} run(s) changed"))


@commands.command()
def archive(run_ids: list[str] = typer.Argument(None, help="run ids (toptune runs lists them)"),
            failed: bool = typer.Option(False, "--failed", help="archive every failed or interrupted run"),
            store: Path | None = opt.Store):
    """Hide runs from lists, reports and the dashboard without deleting anything; `toptune restore` undoes it."""
    st = Store(store)
    st.require()
    ids = list(run_ids or [])
    if not ids and not failed:
        raise ParamError("say which runs: give run ids, or --failed for every failed or interrupted run")
    if failed:
        ids += [r["id"] for status in ("failed", "interrupted") for r in st.runs(status=status)]
        if not ids:
            out.print("no failed or interrupted run to archive")
            return
    n = st.archive(ids)
    out.print(plain(f"archived {n} run(s)" + (f" ({len(set(ids)) - n} were already archived)"
                                             if n < len(set(ids)) else "")
                    + "; `toptune runs --archived` lists them, `toptune restore ID` brings one back"))


@commands.command()
def restore(run_ids: list[str] = RunIds, store: Path | None = opt.Store):
    """Bring archived runs back into lists, reports and the dashboard."""
    n = Store(store).restore(run_ids)
    out.print(plain(f"restored {n} run(s)" + (f" ({len(set(run_ids)) - n} were not archived)"
                                             if n < len(set(run_ids)) else "")))


@commands.command()
def delete(run_ids: list[str] = RunIds,
           yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking"),
           store: Path | None = opt.Store):
    """Delete runs for good: their rows, predictions, epoch curves, saved model and files beside the store.
    Lists them and asks first; `toptune archive` hides runs instead, reversibly."""
    st = Store(store)
    st.require()
    found = [st.get_run(run_id) for run_id in dict.fromkeys(run_ids)]  # an unknown id stops here
    usage = disk_usage(st.path)
    out.print(runs_table(found, title="to delete", disk={r["id"]: usage[r["id"]] for r in found if r["id"] in usage}))
    if not yes:
        if not sys.stdin.isatty():
            raise ParamError(f"deleting {len(found)} run(s) cannot be undone: add --yes to confirm "
                             "(or archive them instead)")
        typer.confirm(f"delete these {len(found)} run(s) for good?", abort=True)
    n = st.delete_runs([r["id"] for r in found])
    out.print(Text(f"deleted {n} run(s)", style="bold"))
