"""The runs the dashboard reads, as pandas frames, through the engine's own queries.

Filters, sorting, paging and aggregates run in the store (``toptune.store.queries``), so a page reads only
the rows it shows, and results are remembered per store version. Pages never open the store themselves
(the SQL page's console aside): a short read-only connection per call under the store's shared lock. A
store file that does not exist yet reads as empty instead of being created: looking must not write.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
from pathlib import Path

import pandas as pd

from toptune import registry
from toptune.store import DEFAULT_PATH, Store
from toptune.store import queries as q

STATUS_COLOURS = {"running": "blue", "finished": "green", "failed": "red", "interrupted": "orange"}
# What the runs table shows, in order (the status as a coloured label); the export carries every column.
# Its "dataset" is the run's dataset label (an image folder's name, not "imagefolder").
TABLE_COLUMNS = ["status_badge", "id", "name", "created_at", "method", "backbone", "classifier", "dataset", "seed",
                 "accuracy", "train_time_s", "extract_time_s", "fit_time_s", "predict_time_s",
                 "peak_memory_mb", "trained_params", "n_train", "n_test", "n_classes", "pretrain_source",
                 "device", "cache_hit", "tags", "note", "comparison_id", "study_id", "sweep_id", "energy_kwh", "error"]
# A clustering run has no accuracy: its scores come out of the metrics JSON into these columns.
CLUSTER_COLUMNS = ["purity", "overlaps", "nmi", "ari"]
FILTER_COLUMNS = ("dataset_label", "backbone", "method", "classifier", "status")
SUMMARY_COLUMNS = ["method", "backbone", "classifier", "dataset", "config", "runs", "seeds", "accuracy_mean",
                   "accuracy_std", "accuracy", "train_time_s_mean", "train_time_s_std"]


def store_path(argv: list[str] | None = None, env: dict | None = None) -> Path:
    """The store given after ``--`` to ``streamlit run``, else TOPTUNE_STORE, else the CLI's default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--store")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    return Path(known.store or env.get("TOPTUNE_STORE") or DEFAULT_PATH)


_stores: dict[str, Store] = {}


def open_store(path) -> Store | None:
    """The store at ``path``, or None where no file exists yet (looking must not create one). One Store object per
    path for the server's life: it checks the file's schema once, not on every read of every page."""
    if not Path(path).exists():
        return None
    key = str(path)
    if key not in _stores:
        _stores[key] = Store(path)
    return _stores[key]


def cached(fn=None, *, shared: bool = False):
    """``fn(path, ...)`` remembered per store version: a page whose data did not change does not query again
    (the store changes only on writes, and its version is a stat of its files).

    ``shared=True`` hands every caller the same object instead of a copy (Streamlit's resource cache), for
    results too large to unpickle on each rerun (tens of thousands of comparisons); callers must not change it.
    """
    if fn is None:
        return functools.partial(cached, shared=shared)
    remembered = []

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        if not remembered:  # made on first use, inside the app's runtime
            import streamlit as st

            def by_version(path, version, *args, **kwargs):
                return fn(path, *args, **kwargs)

            # Streamlit keys a cache by the function's module, name and source: each wrapped one its own.
            by_version.__module__, by_version.__qualname__ = fn.__module__, f"{fn.__qualname__}.by_version"
            cache = st.cache_resource if shared else st.cache_data
            remembered.append(cache(show_spinner=False, max_entries=16 if shared else 64)(by_version))
        return remembered[0](str(path), q.version(path), *args, **kwargs)

    return wrapper


def run_filter(chosen: dict | None = None, text: str = "", keep_missing: tuple = (), finished: bool = False,
               tags: tuple | list = (), archived: bool | None = False):
    """The runs the page's filters keep, as the store's own filter (so it becomes SQL): archived runs only when
    ``archived`` (None: archived or not; False: none of them), and runs having every one of ``tags``."""
    equals = tuple((k, tuple(v)) for k, v in sorted((chosen or {}).items()) if v)  # hashable, for the cache
    return q.RunFilter(equals, text or "", tuple(keep_missing), "status = 'finished'" if finished else "",
                       tags=tuple(tags), archived=None if archived is None else bool(archived))


def dataset_name(run: dict) -> str:
    """A run's dataset as people know it: its label (a folder's name, an hf:<id>), else the plugin's name."""
    return str(run.get("dataset_label") or run.get("dataset") or "")


# Where a run's info keeps the files it left out: ``skipped_files``, the unreadable images as {split, file, reason}
# (``toptune.data.unreadable``), and ``skipped``, an image folder's links and duplicates as "file: why" lines; both
# lists are capped, the counts are whole.
SKIPPED_COUNTS = ("skipped_train", "skipped_test", "skipped_count")


def skipped_files(info: dict | None) -> tuple[list[dict], int]:
    """The files a run skipped, as rows (split, file, reason), and how many it skipped in all."""
    info = info or {}
    rows = [{"split": str(item.get("split") or ""), "file": str(item.get("file") or ""),
             "reason": str(item.get("reason") or "")} for item in info.get("skipped_files") or []
            if isinstance(item, dict)]
    for line in info.get("skipped") or []:
        file, _, reason = str(line).partition(": ")
        rows.append({"split": "", "file": file, "reason": reason})
    counted = sum(int(info[k]) for k in SKIPPED_COUNTS if isinstance(info.get(k), int))
    return rows, max(counted, len(rows))


@cached
def tag_options(path) -> list[str]:
    """Every tag some run carries, archived runs' included, sorted."""
    store = open_store(path)
    return q.tags(store, q.RunFilter(archived=None)) if store else []


@cached
def counts(path, flt=None) -> dict[str, int]:
    """How many runs the filter keeps, per status and in all."""
    store = open_store(path)
    return q.count(store, flt) if store else {"all": 0}


@cached
def filter_options(path, columns: tuple, flt=None) -> dict[str, list[str]]:
    """Each filter's choices: the values present in the store (in the runs ``flt`` keeps)."""
    store = open_store(path)
    return q.options(store, list(columns), flt) if store else {c: [] for c in columns}


@cached
def page(path, flt=None, order: str = "created_at", descending: bool = True, size: int = 100,
         number: int = 1) -> pd.DataFrame:
    """One page of the runs table (the status as a coloured label), sorted and filtered in the store."""
    store = open_store(path)
    if store is None:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    columns = [c for c in TABLE_COLUMNS if c != "status_badge"] + ["status", "dataset_label"]
    df = q.frame(store, [*dict.fromkeys(columns + CLUSTER_COLUMNS + ["metrics"])], flt, order, descending,
                 size, (number - 1) * size)
    df.insert(0, "status_badge", df["status"].map(lambda s: [s]))
    df["plugin"] = df["dataset"]
    df["dataset"] = df["dataset_label"].fillna(df["dataset"])
    return df


def table_columns(df: pd.DataFrame) -> list[str]:
    """The runs table's columns; the clustering scores, after accuracy, only when some run has them."""
    scored = [c for c in CLUSTER_COLUMNS if c in df and df[c].notna().any()]
    at = TABLE_COLUMNS.index("accuracy") + 1
    return [*TABLE_COLUMNS[:at], *scored, *TABLE_COLUMNS[at:]]


def run_labels(df: pd.DataFrame) -> dict[str, str]:
    """A readable one-line label per run id, for choosing a run."""
    labels = {}
    for row in df.astype(object).where(df.notna(), None).to_dict("records"):
        parts = [str(row[c]) for c in ("name", "id", "method", "backbone", "classifier", "dataset") if row.get(c)]
        parts += _pipeline(row.get("metrics"))
        labels[row["id"]] = f"{' · '.join(parts)} · seed {row['seed']} · {row['status']}"
    return labels


def _pipeline(metrics_json: str | None) -> list[str]:
    """A clustering run's pipeline and latent size, which tell the runs of one study apart."""
    metrics = (json.loads(metrics_json) if metrics_json else None) or {}  # a stored JSON null too
    if "pipeline" not in metrics:
        return []
    z = f" Z={metrics['latent']}" if metrics["pipeline"] != "kmeans" else ""
    return [metrics["pipeline"] + z]


@cached
def seed_summary(path, flt=None) -> pd.DataFrame:
    """Finished runs that differ only by seed, as mean ± std of accuracy and training time.

    Clustering runs have no accuracy; the Clustering page summarises them by study instead.
    """
    store = open_store(path)
    summary = q.seed_summary(store, flt) if store else pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary["accuracy"] = [f"{m:.4f}" + (f" ± {s:.4f}" if n > 1 else "")
                           for m, s, n in zip(summary["accuracy_mean"], summary["accuracy_std"], summary["runs"])]
    return summary[SUMMARY_COLUMNS]


def export(path, flt=None) -> pd.DataFrame:
    """The filtered runs with every stored column (JSON as text), as written to CSV and Parquet."""
    store = open_store(path)
    if store is None:
        return pd.DataFrame()
    with store.reading() as con:
        columns = [r[0] for r in con.execute("DESCRIBE runs").fetchall()]
    return q.frame(store, columns, flt)


def to_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def to_parquet(df: pd.DataFrame) -> bytes:
    out = df.reset_index(drop=True)
    # Parquet needs one type per column; an all-empty column has none, so it is written as text.
    for col in out.columns[out.isna().all()]:
        out[col] = out[col].astype("string")
    buffer = io.BytesIO()
    out.to_parquet(buffer, index=False)
    return buffer.getvalue()


def run_detail(path, run_id: str) -> dict:
    return Store(path).get_run(run_id)


def confusion_matrix(path, run_id: str, names: list[str] | None = None, clusters: bool = False) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns (every class on both axes).

    ``names`` (a run's ``info["classes"]``) label the class indices. A clustering run predicts cluster
    ids, which are no classes: its columns are then the clusters, unnamed and not matched to the rows.
    """
    rows = Store(path).confusion(run_id)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows, columns=["true", "predicted", "n"])
    classes = sorted(set(df["true"]) | (set() if clusters else set(df["predicted"])))
    columns = sorted(set(df["predicted"])) if clusters else classes
    matrix = df.pivot_table(index="true", columns="predicted", values="n", aggfunc="sum", fill_value=0)
    matrix = matrix.reindex(index=classes, columns=columns, fill_value=0)
    if names:
        label = _class_namer(names)
        matrix = matrix.rename(index=label, columns=None if clusters else label)
    return matrix


def _class_namer(names: list[str]):
    """Index -> name, keeping an index the list does not cover (a store older than its dataset)."""
    return lambda i: names[i] if 0 <= i < len(names) else str(i)


def epoch_curves(path, run_id: str) -> pd.DataFrame:
    return pd.DataFrame(Store(path).epochs(run_id))


def plugins_frame() -> pd.DataFrame:
    """Every registered plugin, loaded one at a time, with its status and the error of broken ones."""
    rows = []
    for status in registry.check():
        info = status.info
        description = "" if not status.ok else registry.load(info.kind, info.name).description
        rows.append({"kind": info.kind, "name": info.name, "distribution": info.distribution,
                     "version": info.version, "status": status.status,
                     "description": description, "error": status.reason})
    return pd.DataFrame(rows, columns=["kind", "name", "distribution", "version", "status", "description",
                                       "error"])


def schema(path) -> pd.DataFrame:
    """Tables and views of the store with their columns, for the SQL console's reference."""
    store = open_store(path)
    if store is None:
        return pd.DataFrame(columns=["table", "column", "type"])
    result = store.query("SELECT table_name, column_name, data_type FROM information_schema.columns "
                         "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position", max_rows=None)
    return pd.DataFrame(result.rows, columns=["table", "column", "type"])


def run_sql(path, sql: str, timeout_s: float, max_rows: int = 10_000) -> tuple[pd.DataFrame, bool]:
    """One sandboxed read-only query; raises SQLError (rejected or failed) or StoreError."""
    result = Store(path).query(sql, timeout_s=timeout_s, max_rows=max_rows)
    return pd.DataFrame(result.rows, columns=result.columns), result.truncated


