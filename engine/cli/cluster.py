"""``toptune cluster``: the clustering study from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..params import parse_assignments
from ..spec import DEFAULT_BACKBONE, DEFAULT_DATASET
from . import options as opt
from .common import Commands, grid_table, out, plain, print_done, run_study, with_data

commands = Commands()
register = commands.register


def study_table(study) -> Table:
    """Rows image VAE / feature VAE / k-means on features, columns Z, cells purity ± std (overlaps ± std)."""
    return grid_table("pipeline", [f"Z={z}" for z in study.latents or ["-"]], study.table(),
                      title=plain(f"{study.dataset} · {study.backbone or 'pixels'} · study {study.study_id} · "
                                  "purity ± std (overlaps ± std)"))


def _wide(need: int) -> Console:
    """Piped output that names no width gets one line per pipeline, as the study prints it; a terminal, or
    $COLUMNS, wraps at its width."""
    fixed = out.is_terminal or os.environ.get("COLUMNS", "").isdigit()
    return out if fixed or out.width >= need else Console(width=need, markup=False, highlight=False)


@commands.command()
def cluster(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone whose features the feature VAE and k-means use"),
    latent: str = typer.Option("10,30,50,100,500", help="latent sizes Z, comma-separated"),
    seeds: int | None = opt.Seeds,
    preset: str = typer.Option("auto", help="auto (cpu without CUDA) | gpu (method defaults) | cpu (128 px "
                               "features, 15/10 epochs, narrow image VAE)"),
    pipelines: str = typer.Option("image-vae,feature-vae,kmeans", help="which rows to run"),
    param: list[str] = opt.Param,
    feature_param: list[str] = typer.Option([], "--feature-param", help="key=value for feature VAE and k-means"),
    image_param: list[str] = typer.Option([], "--image-param", help="key=value for the image VAE"),
    export_latents: bool = typer.Option(False, "--export-latents", help="write each run's latent codes to "
                                        "<store>.artifacts/<run id>/latent.parquet"),
    data: str | None = opt.Data,
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    quiet: bool = opt.Quiet,
):
    """Unsupervised transfer: VAE on frozen features vs VAE on pixels vs k-means, per latent size Z."""
    from ..studies import clustering

    shared = with_data(parse_assignments(param), data)
    if export_latents:
        shared["export_latents"] = True
    specs = clustering.plan(dataset, backbone, clustering.parse_latents(latent), seeds, shared,
                            parse_assignments(feature_param), parse_assignments(image_param),
                            [p.strip() for p in pipelines.split(",") if p.strip()], preset)
    study, st, seconds = run_study(clustering.STUDY, specs, store, cache_dir, quiet)
    _wide(24 + 28 * max(len(study.latents), 1)).print(study_table(study))
    print_done(study, st, seconds)
    if export_latents:
        out.print(f"latent codes: {st.path}.artifacts/<run id>/latent.parquet")
