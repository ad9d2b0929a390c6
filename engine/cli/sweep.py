"""``toptune sweep``: a grid of runs on Ray."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import ParamError
from ..store import Store
from ..sweeps.spec import DEFAULT_MAX_CELLS, PAPER_PRESET, SweepSpec, grid_params
from . import options as opt
from .common import Commands, csv_list, out, progress

commands = Commands()
register = commands.register


def _spec_from_flags(datasets, backbones, methods, classifiers, seeds, params, max_cells) -> SweepSpec:
    if not datasets or not backbones:
        raise ParamError("give a SPEC file, --preset paper, or at least --datasets and --backbones")
    return SweepSpec.from_dict({"datasets": csv_list(datasets), "backbones": csv_list(backbones),
                                "methods": csv_list(methods) or ["top-tune"],
                                "classifiers": csv_list(classifiers) or ["kernel"],
                                "seeds": seeds, "params": grid_params(params)}, max_cells)


@commands.command()
def sweep(
    spec_file: Path | None = typer.Argument(None, metavar="SPEC", help="sweep spec, .toml or .yaml"),
    preset: str | None = typer.Option(None, help="'paper': the study's grid over torchvision datasets"),
    datasets: str | None = typer.Option(None, help="comma-separated datasets (instead of a SPEC file)"),
    backbones: str | None = typer.Option(None, help="comma-separated backbones"),
    methods: str | None = typer.Option(None, help="comma-separated methods [default: top-tune]"),
    classifiers: str | None = typer.Option(None, help="comma-separated classifiers [default: kernel]"),
    seeds: int = typer.Option(1, min=1, help="seeds 0..N-1 (with flags)"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, or key=a,b,c for a grid axis"),
    address: str | None = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address [default: local Ray]"),
    ray_token_file: Path | None = typer.Option(None, "--ray-token-file",
                                               help="file holding the cluster's auth token ('ray get-auth-token' "
                                                    "on the head); else RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                                                    "~/.ray/auth_token, as Ray looks"),
    max_concurrent: int | None = typer.Option(None, min=1,
                                              help="cells in flight at most [default: CPUs / cpus-per-task]"),
    cpus_per_task: int = typer.Option(1, min=1, help="CPUs (and torch threads) per cell"),
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    dry_run: bool = typer.Option(False, "--dry-run", help="print the cells and exit"),
    max_cells: int | None = typer.Option(None, "--max-cells", min=1,
                                         help=f"refuse grids of more cells than this (default: the spec's "
                                              f"max_cells, else {DEFAULT_MAX_CELLS:,})"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Run a grid of datasets × backbones × methods × classifiers × params × seeds on Ray; resumable."""
    from ..sweeps.driver import connect, preflight
    from ..sweeps.driver import sweep as run_sweep

    if preset == "paper":
        spec = SweepSpec.from_dict(PAPER_PRESET, max_cells)
    elif preset is not None:
        raise ParamError(f"unknown sweep preset '{preset}' (available: paper)")
    elif spec_file is not None:
        spec = SweepSpec.from_file(spec_file, max_cells)
    else:
        spec = _spec_from_flags(datasets, backbones, methods, classifiers, seeds, param, max_cells)
    cells = spec.cells()
    st = Store(store)
    if dry_run:
        for cell in cells:
            s = cell.spec
            out.print(f"{cell.key}  {s.method:<9} {s.dataset:<12} {s.backbone:<20} {s.classifier or '-':<9} "
                      f"seed {s.seed}  {s.params}")
        out.print(f"{len(cells)} cells · sweep {spec.sweep_id}")
        return
    if address:  # a cluster that cannot be joined says so before the datasets load
        connect(address, token_file=ray_token_file)
    preflight(spec)
    report = run_sweep(spec, st, cache_dir=cache_dir, max_concurrent=max_concurrent, cpus_per_task=cpus_per_task,
                       progress=progress(quiet), address=address, token_file=ray_token_file)
    table = Table(title=f"sweep {report.sweep_id}", header_style="bold")
    for col in ("cells", "already done", "finished", "failed", "interrupted", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(str(report.total), str(report.skipped), str(report.finished), str(report.failed),
                  str(report.interrupted), f"{report.seconds:.0f}")
    out.print(table)
    out.print(f"store: {st.path.resolve()} · query: toptune sql \"select * from runs where sweep_id = "
              f"'{report.sweep_id}'\"", soft_wrap=True, highlight=False)
    if report.failed:
        raise typer.Exit(1)
