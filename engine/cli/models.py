"""``toptune predict`` and ``toptune export``: a finished run's model on new images, or as one file."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from . import options as opt
from .common import Commands, err, out

commands = Commands()
register = commands.register
FORMATS = ("table", "csv", "json")


@commands.command()
def predict(
    run_id: str = typer.Argument(..., help="a finished top-tuning or fine-tuning run (toptune runs lists them)"),
    paths: list[str] = typer.Argument(..., help="image files, folders (searched recursively) or globs"),
    top_k: int = typer.Option(1, "--top-k", min=1, help="how many classes to show per image, best first"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    store: Path | None = opt.Store,
):
    """Classify images with a run's model; unreadable files are named and skipped."""
    from ..errors import ModelError, ParamError
    from ..models import load_model

    if fmt not in FORMATS:
        raise ParamError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model = load_model(run_id, store=_store(store), device=device)
    try:
        found = model.predictions(paths)
    except ModelError:
        raise
    for name, why in found.skipped:
        err.print(f"skipped {name}: {why}", markup=False, highlight=False, soft_wrap=True)
    top = found.top(min(top_k, len(found.columns)))
    if fmt == "json":
        print(json.dumps([{"path": name, "label": label, "top": [{"label": c, "score": s} for c, s in best]}
                          for name, label, best in zip(found.names, found.labels, top)], indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        extra = [col for k in range(2, len(top[0]) + 1) for col in (f"label_{k}", f"score_{k}")] if top else []
        writer.writerow(["path", "label", "score", *extra])
        for name, best in zip(found.names, top):
            writer.writerow([name, *(v for c, s in best for v in (c, f"{s:.6g}"))])
    else:
        table = Table(header_style="bold")
        for col in ("image", "label", "score", *(["next"] if top_k > 1 else [])):
            table.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
        for name, best in zip(found.names, top):
            rest = ", ".join(f"{c} {s:.3g}" for c, s in best[1:])
            table.add_row(name, best[0][0], f"{best[0][1]:.4g}", *([rest] if top_k > 1 else []))
        out.print(table, markup=False, highlight=False)
        out.print(f"{len(found.names)} image(s) classified by run {run_id}"
                  + (f", {len(found.skipped)} unreadable skipped" if found.skipped else ""), markup=False)


@commands.command()
def export(
    run_id: str = typer.Argument(..., help="a finished top-tuning or fine-tuning run"),
    output: Path = typer.Option(..., "-o", "--output", help="the file to write (its folder must exist)"),
    fmt: str = typer.Option("onnx", "--format", help="onnx | torchscript"),
    half: bool = typer.Option(False, "--half", help="float16 weights (for GPUs and embedded devices)"),
    check: int = typer.Option(256, help="compare the file's predictions with PyTorch's on up to this many of the "
                                        "run's test images (0: no check)", min=0),
    store: Path | None = opt.Store,
):
    """Write a run's model as one self-contained file: images in [0, 1] in, class scores out."""
    from ..models import export as exporter
    from ..models import load_model

    if not output.parent.is_dir():
        from ..errors import ParamError

        raise ParamError(f"cannot write {output}: the folder {output.parent} does not exist")
    model = load_model(run_id, store=_store(store), device="cpu")
    path = exporter.export(model, output, fmt, half)
    out.print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB): images float32 [N, 3, {model.input_size}, "
              f"{model.input_size}] in [0, 1] -> scores [N, {len(exporter.columns(model))}]", markup=False)
    images = _test_images(model, check) if check else []
    if images:
        found = exporter.agreement(model, path, images, fmt, half)
        out.print(f"check on {found['images']} test images: predictions agree with PyTorch on "
                  f"{100 * found['agreement']:.2f} %, largest score difference {found['max_score_difference']:.3g}",
                  markup=False)


def _store(store: Path | None):
    from ..store import default_path

    return Path(store) if store else default_path()


def _test_images(model, limit: int) -> list:
    """Up to ``limit`` of the run's own test images, when its dataset can still be loaded here."""
    from .. import registry
    from ..errors import ToptuneError

    run = model.manifest["run"]
    try:
        test = registry.create("dataset", run["dataset"], **run["dataset_params"]).load().test
        return [test[i][0] for i in range(min(limit, len(test)))]
    except (ToptuneError, OSError) as exc:
        err.print(f"no check: the run's dataset cannot be loaded here ({exc})", markup=False)
        return []
