"""``toptune plugins``, ``backbones`` and ``datasets``: what is installed, smoke tests, and descriptions."""

from __future__ import annotations

import json

import typer
from rich.text import Text

from .. import registry
from ..errors import ToptuneError
from ..params import parse_assignments
from .common import Commands, err, guarded, out, with_data, words_table

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
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    rows = [[r.kind, r.name, r.distribution, r.version, r.status, f"{r.seconds:.2f}",
             "see below" if r.failed else r.reason or ", ".join(f"{k}={v}" for k, v in r.details.items())]
            for r in results]
    out.print(words_table(["kind", "name", "distribution", "version", "result", "seconds", "notes"], rows,
                          right=(5,), styles={4: lambda status: colour.get(status, "")}), highlight=False)
    for r in results:
        if r.failed:
            out.print(Text(f"FAIL {r.kind} {r.name}", style="red") + f" ({r.distribution} {r.version}): {r.reason}",
                      highlight=False, soft_wrap=True)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")


def _list_plugins(kind: str | None) -> None:
    statuses = registry.check(kind)
    rows = [[s.info.kind, s.info.name, s.info.distribution, s.info.version,
             {"ok": "ok", "unavailable": str(s.reason), "error": f"error: {s.error or ''}"}[s.status]]
            for s in statuses]
    out.print(words_table(["kind", "name", "distribution", "version", "status"], rows, styles={4: _status_colour}))
    broken = [s for s in statuses if s.status == "error"]
    for s in broken:  # again in full, unfolded, so the message can be read and copied whole
        out.print(Text(f"{s.info.kind} {s.info.name}", style="red") + f" ({s.info.distribution} {s.info.version}): "
                  f"{s.error}",
                  highlight=False, soft_wrap=True)
    if broken:
        err.print(f"{len(broken)} plugin(s) failed to load; the others work normally", style="yellow")


def _status_colour(status: str) -> str:
    return "green" if status == "ok" else "red" if status.startswith("error: ") else "yellow"


@commands.command()
def datasets(
    name: str | None = typer.Argument(None, help="a dataset to load and describe"),
    param: list[str] = typer.Option([], "--param", "-p", help="dataset parameter key=value (repeatable)"),
    data: str | None = typer.Option(None, help="dataset path (shortcut for --param path=...)"),
    paper: bool = typer.Option(False, "--paper", help="the top-tuning study's target datasets: sizes, where to "
                                                      "get each, whether it is here"),
    as_json: bool = typer.Option(False, "--json", help="with --paper: the catalogue as JSON"),
):
    """List datasets, or load one and show its metadata (#train, #test, #classes, mean image size)."""
    from ..data import describe_dataset

    if paper:
        _print_catalogue(as_json)
        return
    if name is None:
        rows = []
        for info in registry.discover("dataset"):
            try:
                description = registry.load("dataset", info.name).description
            except ToptuneError as exc:
                description = f"error: {exc}"
            rows.append([info.name, info.distribution, description])
        out.print(words_table(["name", "distribution", "description"], rows,
                              styles={2: lambda text: "red" if text.startswith("error: ") else ""}))
        return
    params = with_data(parse_assignments(param), data, key="path")
    meta = describe_dataset(name, params)
    size = meta.get("mean_image_size")
    shape = "x".join(f"{v:.0f}" for v in size) if size else "unknown"
    out.print(Text(name, style="bold") + f": {meta['n_train']} train, {meta['n_test']} test, "
              f"{meta['n_classes']} classes, mean image size {shape} (h x w)")
    skip = {"classes", "n_train", "n_test", "n_classes", "mean_image_size"}
    for key, value in meta.items():
        if key not in skip:
            out.print(f"  {key}: {value}", highlight=False)
    classes = meta["classes"]
    out.print(f"  classes: {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}", highlight=False)


def _print_catalogue(as_json: bool) -> None:
    from .. import catalogue

    rows = catalogue.rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    cells = [[r["name"], r["title"], f"{r['n_train']:,}" if r["n_train"] else "-",
              f"{r['n_test']:,}" if r["n_test"] else "split here",
              "x".join(map(str, r["image_size"])) if r["image_size"] else "-", str(r["n_classes"]), r["how"],
              "yes" if r["present"] else "no"] for r in rows]
    out.print(words_table(["name", "title", "#train", "#test", "image size", "#classes", "get it", "here"], cells,
                          right=(2, 3, 4, 5), title=f"Target datasets of the top-tuning study: {len(rows)} catalogued "
                                                    f"of {catalogue.STUDY_SIZE}"))
    here = sum(r["present"] for r in rows)
    out.print(Text(f"{here} of {len(rows)} on this machine. Counts: {catalogue.FIGURES}. toptune sweep --preset "
                   f"paper runs the {len(catalogue.sweep_datasets())} that download themselves. Study: "
                   f"{catalogue.STUDY}"))


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
    out.print(Text(name, style="bold") + f": input {d.input_size}×{d.input_size} px · pooled features: {d.pooled_dim}"
              + (f" · fne features: {d.fne_dim}" if d.layers else ""), highlight=False)
    if not d.layers:
        out.print(d.note or "no layers found", highlight=False)
        return
    rows = [[layer.mode if layer.kind == "stage" else f"  {layer.mode}", layer.kind, "×".join(map(str, layer.shape)),
             str(layer.dim)] for layer in d.layers]
    out.print(words_table(["feature_mode", "kind", "output shape (C×H×W)", "features"], rows, right=(3,)))
    out.print("fne = every stage above (pooled) + the pooled output, standardised with train statistics and "
              "discretised to -1/0/+1", highlight=False)
