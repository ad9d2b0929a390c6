"""The runs the dashboard reads, as pandas frames, through the engine's own functions.

Pages call these and never open the store themselves (the SQL page's console aside), so store access
keeps one shape: a short read-only connection per call under the store's shared lock. A store file
that does not exist yet reads as empty instead of being created: looking must not write.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import pandas as pd

from toptune import registry
from toptune.store import DEFAULT_PATH, Store

STATUS_COLOURS = {"running": "blue", "finished": "green", "failed": "red", "interrupted": "orange"}
# What the runs table shows, in order (the status as a coloured label); the export carries every column.
TABLE_COLUMNS = ["status_badge", "id", "created_at", "method", "backbone", "classifier", "dataset", "seed",
                 "accuracy", "train_time_s", "extract_time_s", "fit_time_s", "predict_time_s",
                 "peak_memory_mb", "trained_params", "n_train", "n_test", "n_classes", "pretrain_source",
                 "device", "cache_hit", "comparison_id", "study_id", "sweep_id", "energy_kwh", "error"]
# A clustering run has no accuracy: its scores come out of the metrics JSON into these columns.
CLUSTER_COLUMNS = ["purity", "overlaps", "nmi", "ari"]
FILTER_COLUMNS = ("dataset", "backbone", "method", "classifier", "status")
JSON_COLUMNS = ("params", "info", "spec", "metrics")
SEARCHED = ("id", "method", "backbone", "classifier", "dataset", "status", "error", "comparison_id", "study_id",
            "sweep_id", "pretrain_source", "params")


def store_path(argv: list[str] | None = None, env: dict | None = None) -> Path:
    """The store given after ``--`` to ``streamlit run``, else TOPTUNE_STORE, else the CLI's default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--store")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    return Path(known.store or env.get("TOPTUNE_STORE") or DEFAULT_PATH)


def open_store(path) -> Store | None:
    """The store at ``path``, or None where no file exists yet (looking must not create one)."""
    return Store(path) if Path(path).exists() else None


def load_runs(path) -> pd.DataFrame:
    """Every run, newest first; JSON columns as text so the frame exports and searches as is."""
    store = open_store(path)
    rows = store.runs() if store else []
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*TABLE_COLUMNS, *CLUSTER_COLUMNS, "status", *JSON_COLUMNS])
    for col in CLUSTER_COLUMNS:
        df[col] = [m.get(col) if isinstance(m, dict) else None for m in df.get("metrics", [None] * len(df))]
    for col in JSON_COLUMNS:
        if col in df:
            df[col] = df[col].map(lambda v: None if v is None else json.dumps(v, sort_keys=True, default=str))
    df.insert(0, "status_badge", df["status"].map(lambda s: [s]))  # drawn as a coloured label
    return df


def table_columns(df: pd.DataFrame) -> list[str]:
    """The runs table's columns; the clustering scores, after accuracy, only when some run has them."""
    scored = [c for c in CLUSTER_COLUMNS if c in df and df[c].notna().any()]
    at = TABLE_COLUMNS.index("accuracy") + 1
    return [*TABLE_COLUMNS[:at], *scored, *TABLE_COLUMNS[at:]]


def options(df: pd.DataFrame, column: str) -> list[str]:
    """Distinct non-empty values of a column, sorted, for a filter's choices."""
    if column not in df:
        return []
    return sorted({str(v) for v in df[column].dropna()})


def filter_runs(df: pd.DataFrame, chosen: dict[str, list], text: str = "",
                keep_missing: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows whose columns take one of the chosen values (an empty choice keeps all) and contain ``text``.

    A column in ``keep_missing`` lets rows without a value through: a fine-tuning run has no classifier
    but still belongs next to the top-tuning runs chosen by classifier.
    """
    keep = pd.Series(True, index=df.index)
    for column, values in chosen.items():
        if values and column in df:
            match = df[column].astype(str).isin([str(v) for v in values])
            keep &= match | df[column].isna() if column in keep_missing else match
    words = text.lower().split()
    if words and not df.empty:
        columns = df[[c for c in SEARCHED if c in df]]
        haystack = columns.astype(object).where(columns.notna(), "").astype(str).agg(" ".join, axis=1).str.lower()
        for word in words:
            keep &= haystack.str.contains(word, regex=False)
    return df[keep]


def run_labels(df: pd.DataFrame) -> dict[str, str]:
    """A readable one-line label per run id, for choosing a run."""
    labels = {}
    for row in df.astype(object).where(df.notna(), None).to_dict("records"):
        parts = [str(row[c]) for c in ("id", "method", "backbone", "classifier", "dataset") if row[c]]
        parts += _pipeline(row.get("metrics"))
        labels[row["id"]] = f"{' · '.join(parts)} · seed {row['seed']} · {row['status']}"
    return labels


def _pipeline(metrics_json: str | None) -> list[str]:
    """A clustering run's pipeline and latent size, which tell the runs of one study apart."""
    metrics = json.loads(metrics_json) if metrics_json else {}
    if "pipeline" not in metrics:
        return []
    z = f" Z={metrics['latent']}" if metrics["pipeline"] != "kmeans" else ""
    return [metrics["pipeline"] + z]


def sort_runs(df: pd.DataFrame, column: str, descending: bool) -> pd.DataFrame:
    return df.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def _config_key(params_json: str | None) -> str:
    """A digest of a run's parameters without its seeds: runs that differ only by seed share it."""
    params = json.loads(params_json) if params_json else {}
    unseeded = {ns: {k: v for k, v in values.items() if k != "seed"} if isinstance(values, dict) else values
                for ns, values in params.items()}
    return hashlib.sha1(json.dumps(unseeded, sort_keys=True).encode()).hexdigest()[:8]


def seed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs that differ only by seed, as mean ± std of accuracy and training time.

    Clustering runs have no accuracy; the Clustering page summarises them by study instead.
    """
    done = df[(df["status"] == "finished") & df["accuracy"].notna()].copy() if not df.empty else df
    columns = ["method", "backbone", "classifier", "dataset", "config", "runs", "seeds", "accuracy_mean",
               "accuracy_std", "accuracy", "train_time_s_mean", "train_time_s_std"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    done["config"] = done["params"].map(_config_key)
    keys = ["method", "backbone", "classifier", "dataset", "config"]
    out = done.groupby(keys, dropna=False).agg(
        runs=("id", "count"), seeds=("seed", "nunique"), accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        train_time_s_mean=("train_time_s", "mean"), train_time_s_std=("train_time_s", "std")).reset_index()
    out[["accuracy_std", "train_time_s_std"]] = out[["accuracy_std", "train_time_s_std"]].fillna(0.0)
    out["accuracy"] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(out["accuracy_mean"], out["accuracy_std"])]
    return out[columns].sort_values(["dataset", "method", "accuracy_mean"], ascending=[True, True, False])


def export_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The filtered runs with every stored column, as written to CSV and Parquet."""
    return df.drop(columns=["status_badge"], errors="ignore").reset_index(drop=True)


def to_csv(df: pd.DataFrame) -> bytes:
    return export_frame(df).to_csv(index=False).encode()


def to_parquet(df: pd.DataFrame) -> bytes:
    out = export_frame(df)
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


