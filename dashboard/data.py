"""Everything the dashboard reads, as pandas frames, through the engine's own functions.

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
from toptune import compare as cmp
from toptune import registry
from toptune.store import DEFAULT_PATH, Store

STATUS_COLOURS = {"running": "blue", "finished": "green", "failed": "red", "interrupted": "orange"}
# What the runs table shows, in order (the status as a coloured label); the export carries every column.
TABLE_COLUMNS = ["status_badge", "id", "created_at", "method", "backbone", "classifier", "dataset", "seed",
                 "accuracy", "train_time_s", "extract_time_s", "fit_time_s", "predict_time_s",
                 "peak_memory_mb", "trained_params", "n_train", "n_test", "n_classes", "pretrain_source",
                 "device", "cache_hit", "comparison_id", "energy_kwh", "error"]
FILTER_COLUMNS = ("dataset", "backbone", "method", "classifier", "status")
JSON_COLUMNS = ("params", "info", "spec", "metrics")
SEARCHED = ("id", "method", "backbone", "classifier", "dataset", "status", "error", "comparison_id",
            "pretrain_source", "params")


def store_path(argv: list[str] | None = None, env: dict | None = None) -> Path:
    """The store given after ``--`` to ``streamlit run``, else TOPTUNE_STORE, else the CLI's default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--store")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    return Path(known.store or env.get("TOPTUNE_STORE") or DEFAULT_PATH)


def _store(path) -> Store | None:
    return Store(path) if Path(path).exists() else None


def load_runs(path) -> pd.DataFrame:
    """Every run, newest first; JSON columns as text so the frame exports and searches as is."""
    store = _store(path)
    rows = store.runs() if store else []
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*TABLE_COLUMNS, "status", *JSON_COLUMNS])
    for col in JSON_COLUMNS:
        if col in df:
            df[col] = df[col].map(lambda v: None if v is None else json.dumps(v, sort_keys=True, default=str))
    df.insert(0, "status_badge", df["status"].map(lambda s: [s]))  # drawn as a coloured label
    return df


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
        names = " · ".join(str(row[c]) for c in ("id", "method", "backbone", "classifier", "dataset") if row[c])
        labels[row["id"]] = f"{names} · seed {row['seed']} · {row['status']}"
    return labels


def sort_runs(df: pd.DataFrame, column: str, descending: bool) -> pd.DataFrame:
    return df.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def _config_key(params_json: str | None) -> str:
    """A digest of a run's parameters without its seeds: runs that differ only by seed share it."""
    params = json.loads(params_json) if params_json else {}
    unseeded = {ns: {k: v for k, v in values.items() if k != "seed"} if isinstance(values, dict) else values
                for ns, values in params.items()}
    return hashlib.sha1(json.dumps(unseeded, sort_keys=True).encode()).hexdigest()[:8]


def seed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs that differ only by seed, as mean ± std of accuracy and training time."""
    done = df[df["status"] == "finished"].copy() if not df.empty else df
    columns = ["method", "backbone", "classifier", "dataset", "config", "runs", "seeds", "accuracy_mean",
               "accuracy_std", "accuracy", "train_time_s_mean", "train_time_s_std"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    done["config"] = done["params"].map(_config_key)
    keys = ["method", "backbone", "classifier", "dataset", "config"]
    out = done.groupby(keys, dropna=False).agg(
        runs=("id", "count"), seeds=("seed", "nunique"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
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


def confusion_matrix(path, run_id: str) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns (every class on both axes)."""
    rows = Store(path).confusion(run_id)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows, columns=["true", "predicted", "n"])
    classes = sorted(set(df["true"]) | set(df["predicted"]))
    matrix = df.pivot_table(index="true", columns="predicted", values="n", aggfunc="sum", fill_value=0)
    return matrix.reindex(index=classes, columns=classes, fill_value=0)


def epoch_curves(path, run_id: str) -> pd.DataFrame:
    return pd.DataFrame(Store(path).epochs(run_id))


def load_comparisons(path) -> list[cmp.Comparison]:
    store = _store(path)
    return cmp.comparisons(store) if store else []


def comparisons_frame(items: list[cmp.Comparison], runs: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison: both methods' accuracy and time, Δ in points, speed-up, verdict."""
    columns = ["comparison_id", "dataset", "backbone", "classifier", "pretrain_source", "setup", "seeds",
               "top_accuracy", "top_std", "fine_accuracy", "fine_std", "top_time_s", "fine_time_s",
               "delta_points", "delta_std_points", "speedup", "verdict"]
    source = dict(zip(runs["id"], runs["pretrain_source"])) if not runs.empty else {}
    rows = []
    for c in items:
        rows.append({
            "comparison_id": c.comparison_id, "dataset": c.dataset, "backbone": c.backbone,
            "classifier": c.classifier, "pretrain_source": source.get(c.run_ids[0]),
            "setup": f"{c.backbone} · {c.classifier}", "seeds": c.top.n_runs,
            "top_accuracy": c.top.accuracy, "top_std": c.top.accuracy_std,
            "fine_accuracy": c.fine.accuracy, "fine_std": c.fine.accuracy_std,
            "top_time_s": c.top.train_time_s, "fine_time_s": c.fine.train_time_s,
            "delta_points": c.delta_points,
            "delta_std_points": 100.0 * (c.top.accuracy_std ** 2 + c.fine.accuracy_std ** 2) ** 0.5,
            "speedup": c.speedup, "verdict": c.verdict})
    return pd.DataFrame(rows, columns=columns)


def verdict_summary(items: list[cmp.Comparison]) -> list[cmp.Aggregate]:
    return cmp.aggregate(items)


def plugins_frame() -> pd.DataFrame:
    """Every registered plugin, loaded one at a time, with its status and the error of broken ones."""
    rows = []
    for status in registry.check():
        info = status.info
        description = "" if not status.ok else registry.load(info.kind, info.name).description
        rows.append({"kind": info.kind, "name": info.name, "distribution": info.distribution,
                     "version": info.version, "status": "ok" if status.ok else "error",
                     "description": description, "error": status.error or ""})
    return pd.DataFrame(rows, columns=["kind", "name", "distribution", "version", "status", "description",
                                       "error"])


def schema(path) -> pd.DataFrame:
    """Tables and views of the store with their columns, for the SQL console's reference."""
    store = _store(path)
    if store is None:
        return pd.DataFrame(columns=["table", "column", "type"])
    result = store.query("SELECT table_name, column_name, data_type FROM information_schema.columns "
                         "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position", max_rows=None)
    return pd.DataFrame(result.rows, columns=["table", "column", "type"])


def run_sql(path, sql: str, timeout_s: float, max_rows: int = 10_000) -> tuple[pd.DataFrame, bool]:
    """One sandboxed read-only query; raises SQLError (rejected or failed) or StoreError."""
    result = Store(path).query(sql, timeout_s=timeout_s, max_rows=max_rows)
    return pd.DataFrame(result.rows, columns=result.columns), result.truncated
