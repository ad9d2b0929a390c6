"""Per-run files kept beside the store: ``<store>.artifacts/<run id>/<name>.parquet``.

Tables too big for a DuckDB row (latent codes: one row per image, one column per latent dimension)
go to Parquet, which DuckDB, pandas and polars all read. DuckDB writes them, so no extra dependency.
Each file is written to a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import StoreError


def run_dir(store_path: str | os.PathLike, run_id: str) -> Path:
    """The folder of one run's artifacts (not created here)."""
    if not run_id or any(c in str(run_id) for c in "/\\") or str(run_id).startswith("."):
        raise StoreError(f"invalid run id {run_id!r}")
    return Path(str(store_path) + ".artifacts") / str(run_id)


def model_folder(store_path, run_id: str) -> Path:
    """Where a run's saved model lives (written by toptune.models, read by predict, export and MLflow)."""
    return run_dir(store_path, run_id) / "model"


def artifact_path(store_path, run_id: str, name: str) -> Path:
    return run_dir(store_path, run_id) / f"{name}.parquet"


def write_table(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """Write equal-length 1-D columns to one Parquet file, atomically."""
    import duckdb

    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    con = duckdb.connect()
    try:
        con.register("artifact", {name: np.asarray(v) for name, v in columns.items()})
        con.execute(f"COPY (SELECT * FROM artifact) TO '{_quoted(tmp)}' (FORMAT parquet)")
        os.replace(tmp, path)
    finally:
        con.close()
        tmp.unlink(missing_ok=True)
    return path


def read_table(path: Path, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """A Parquet file (or some of its columns) as a dict of NumPy arrays."""
    import duckdb

    if not Path(path).exists():
        raise StoreError(f"no artifact at {path}")
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT {select} FROM read_parquet('{_quoted(path)}')").fetchnumpy()
    finally:
        con.close()


def disk_usage(store_path) -> dict[str, int]:
    """Bytes each run's folder of artifacts (tables, model) takes beside the store, by run id."""
    root = Path(str(store_path) + ".artifacts")
    if not root.is_dir():
        return {}
    return {folder.name: sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")}


def write_artifacts(store_path, run_id: str, tables: dict[str, dict]) -> list[Path]:
    """Write every named table of a run; returns the files written."""
    return [write_table(artifact_path(store_path, run_id, name), cols) for name, cols in (tables or {}).items()]


def _quoted(path) -> str:
    return str(path).replace("'", "''")
