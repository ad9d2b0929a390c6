"""Options several commands take, defined once: ``store: Path | None = opt.Store``."""

import typer

from ..spec import DEFAULT_BACKBONE, DEFAULT_DATASET

Store = typer.Option(None, "--store", envvar="TOPTUNE_STORE", help="DuckDB store file [default: ./toptune.duckdb]")
Cache = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder")
Quiet = typer.Option(False, "--quiet", "-q", help="no progress bars")
Param = typer.Option([], "--param", "-p", help="key=value for every run (repeatable)")
Data = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)")
Seeds = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]")
TopParam = typer.Option([], "--top-param", help="key=value for top-tuning runs only")
FineParam = typer.Option([], "--fine-param", help="key=value for fine-tuning runs only")
Dataset = typer.Option(DEFAULT_DATASET, help="dataset plugin (digits, imagefolder, hf:<id>, cifar10, ...)")
Backbone = typer.Option(DEFAULT_BACKBONE, help="backbone plugin, e.g. efficientnet_lite0 or timm:resnet50")
Preset = typer.Option("auto", help="auto (cpu without CUDA) | gpu (common practice: 224 px, method defaults) | "
                                    "cpu (128 px, 3 fine-tuning epochs)")
