"""``toptune plugins``, ``backbones`` and ``datasets``: what is installed, smoke tests, and descriptions."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from .. import registry
from ..errors import ToptuneError
from ..params import parse_assignments
from .common import Commands, err, guarded, out, with_data

commands = Commands()
register = commands.register


plugins_app = typer.Typer(help="List installed plugins: all, or one kind (toptune plugins backbone | classifier | "
                           "dataset); smoke-test them with toptune plugins check NAME.")
commands.group(plugins_app, "plugins")


@plugins_app.callback(invoke_without_command=True)
@guarded
def plugins(ctx: typer.Context,
            kind: str | None = typer.Option(None, "--kind", help="backbone | classifier | dataset")):
    """List installed plugins with their distribution, version and status."""
    if ctx.invoked_subcommand is None:
        _list_plugins(kind)


def _kind_lister(kind: str):
    # `toptune plugins backbone` predates the check subcommand; a click group cannot also take a
    # positional kind, so each kind is a hidden subcommand that lists.
    return plugins_app.command(kind, hidden=True, help=f"List {kind} plugins.")(guarded(lambda: _list_plugins(kind)))


for _kind in registry.GROUPS:
    _kind_lister(_kind)


@plugins_app.command("check")
@guarded
def plugins_check(
    names: list[str] | None = typer.Argument(None, help="plugin names, e.g. lenet5 timm:resnet50 (default: all)"),
    kind: str | None = typer.Option(None, "--kind", help="backbone | classifier | dataset"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value for the one plugin named (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
):
    """Load and smoke-test plugins on tiny inputs; exit status 1 when any fails."""
    from ..plugin_check import check_plugins

    results = check_plugins(names, kind, parse_assignments(param))
    if as_json:
        print(json.dumps([r.to_dict() for r in results], default=str, indent=2))
    else:
        _print_checks(results)
    if any(r.failed for r in results):
        raise typer.Exit(1)


def _print_checks(results) -> None:
    table = Table(header_style="bold")
    for c in ("kind", "name", "distribution", "version", "result", "seconds", "notes"):
        table.add_column(c, overflow="fold")
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for r in results:
        notes = "see below" if r.failed else r.reason or ", ".join(f"{k}={v}" for k, v in r.details.items())
        table.add_row(r.kind, r.name, r.distribution, r.version, f"[{colour[r.status]}]{r.status}[/]",
                      f"{r.seconds:.2f}", notes)
    out.print(table, highlight=False)
    for r in results:
        if r.failed:
            out.print(f"[red]FAIL {r.kind} {r.name}[/] ({r.distribution} {r.version}): {r.reason}",
                      highlight=False, soft_wrap=True)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")


def _list_plugins(kind: str | None) -> None:
    statuses = registry.check(kind)
    table = Table(header_style="bold")
    for c in ("kind", "name", "distribution", "version", "status"):
        table.add_column(c, overflow="fold")
    for s in statuses:
        status = {"ok": "[green]ok[/]", "unavailable": f"[yellow]{escape(s.reason)}[/]",
                  "error": f"[red]error: {escape(s.error or '')}[/]"}[s.status]
        table.add_row(s.info.kind, s.info.name, s.info.distribution, s.info.version, status)
    out.print(table)
    broken = [s for s in statuses if s.status == "error"]
    for s in broken:  # again in full, unfolded, so the message can be read and copied whole
        out.print(f"[red]{s.info.kind} {s.info.name}[/] ({s.info.distribution} {s.info.version}): {s.error}",
                  highlight=False, soft_wrap=True)
    if broken:
        err.print(f"[yellow]{len(broken)} plugin(s) failed to load; the others work normally[/]")


@commands.command()
def datasets(
    name: str | None = typer.Argument(None, help="a dataset to load and describe"),
    param: list[str] = typer.Option([], "--param", "-p", help="dataset parameter key=value (repeatable)"),
    data: str | None = typer.Option(None, help="dataset path (shortcut for --param path=...)"),
):
    """List datasets, or load one and show its metadata (#train, #test, #classes, mean image size)."""
    from ..data import describe_dataset

    if name is None:
        table = Table(header_style="bold")
        for c in ("name", "distribution", "description"):
            table.add_column(c)
        for info in registry.discover("dataset"):
            try:
                description = registry.load("dataset", info.name).description
            except ToptuneError as exc:
                description = f"[red]{exc}[/]"
            table.add_row(info.name, info.distribution, description)
        out.print(table)
        return
    params = with_data(parse_assignments(param), data, key="path")
    meta = describe_dataset(name, params)
    size = meta.get("mean_image_size")
    out.print(f"[bold]{name}[/]: {meta['n_train']} train, {meta['n_test']} test, {meta['n_classes']} classes, "
              f"mean image size {'x'.join(f'{v:.0f}' for v in size) if size else 'unknown'} (h x w)")
    skip = {"classes", "n_train", "n_test", "n_classes", "mean_image_size"}
    for key, value in meta.items():
        if key not in skip:
            out.print(f"  {key}: {value}", highlight=False)
    classes = meta["classes"]
    out.print(f"  classes: {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}", highlight=False)


backbones_app = typer.Typer(help="List backbone plugins, or show one's layers: toptune backbones describe NAME.")
commands.group(backbones_app, "backbones")


@backbones_app.callback(invoke_without_command=True)
@guarded
def backbones(ctx: typer.Context):
    """List backbone plugins."""
    if ctx.invoked_subcommand is None:
        _list_plugins("backbone")


@backbones_app.command("describe")
@guarded
def describe(
    name: str = typer.Argument(..., help="backbone, e.g. efficientnet_lite0 or timm:resnet50"),
    param: list[str] = typer.Option([], "--param", "-p", help="backbone parameter key=value (repeatable)"),
    weights: str | None = typer.Option(None, help="weights: a file, 'none' (offline, random) or 'timm'"),
    image_size: int | None = typer.Option(None, min=16, help="input size instead of the backbone's"),
):
    """Input size and every stage and block usable as feature_mode=layer:<name>, with its feature size."""
    from ..features.describe import describe as describe_backbone

    params = parse_assignments(param)
    if weights:
        params["weights"] = weights
    d = describe_backbone(name, params, image_size)
    out.print(f"[bold]{name}[/]: input {d.input_size}×{d.input_size} px · pooled features: {d.pooled_dim}"
              + (f" · fne features: {d.fne_dim}" if d.layers else ""), highlight=False)
    if not d.layers:
        out.print(d.note or "no layers found", highlight=False)
        return
    table = Table(header_style="bold")
    for col in ("feature_mode", "kind", "output shape (C×H×W)", "features"):
        table.add_column(col, justify="right" if col == "features" else "left")
    for layer in d.layers:
        mode = layer.mode if layer.kind == "stage" else f"  {layer.mode}"
        table.add_row(mode, layer.kind, "×".join(map(str, layer.shape)), str(layer.dim))
    out.print(table)
    out.print("fne = every stage above (pooled) + the pooled output, standardised with train statistics and "
              "discretised to -1/0/+1", highlight=False)
