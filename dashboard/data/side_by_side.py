"""A few chosen runs side by side: their parameters (which differ, which are the same), metrics and epoch curves.

At most ``MAX_RUNS`` runs are read, each by id, and remembered per store version like every other read.
"""

from __future__ import annotations

import json

import pandas as pd

from toptune.errors import StoreError

from .runs import cached, open_store

MIN_RUNS, MAX_RUNS = 2, 6
# What ran, before the parameters; the run's own columns.
FIELDS = ("method", "backbone", "classifier", "dataset", "dataset_label", "seed", "pretrain_source", "device",
          "host", "status")
METRICS = (("accuracy", "accuracy", "{:.4f}"), ("train_time_s", "training time (s)", "{:.2f}"),
           ("extract_time_s", "extraction (s)", "{:.2f}"), ("fit_time_s", "fit (s)", "{:.2f}"),
           ("predict_time_s", "prediction (s)", "{:.2f}"), ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
           ("trained_params", "trained parameters", "{:,}"), ("n_train", "train images", "{:,}"),
           ("n_test", "test images", "{:,}"), ("n_classes", "classes", "{}"), ("feature_dim", "feature size", "{:,}"))


@cached
def chosen_runs(path, run_ids: tuple) -> tuple[list[dict], list[str]]:
    """The runs of ``run_ids`` that exist (decoded, in the order given) and the ids that do not."""
    store = open_store(path)
    found, missing = [], []
    for run_id in run_ids[:MAX_RUNS]:
        try:
            found.append(store.get_run(run_id))
        except StoreError:
            missing.append(run_id)
    return found, missing + list(run_ids[MAX_RUNS:])


@cached
def epochs_of(path, run_ids: tuple) -> pd.DataFrame:
    """Every epoch of these runs (columns run_id, epoch, train_loss, …), in the order given."""
    store = open_store(path)
    rows = [row for run_id in run_ids for row in (store.epochs(run_id) if store else [])]
    return pd.DataFrame(rows)


def flatten(params: dict, prefix: str = "") -> dict:
    """``{"run": {"epochs": 3}}`` as ``{"run.epochs": 3}``."""
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _same(values: list) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def parameter_table(runs: list[dict], labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parameters that differ, parameters equal in every run): rows are the run's columns (method, backbone, …)
    then its parameters by namespace (``run.epochs``, ``classifier.alpha``…), one column per run."""
    flat = [{**{f: run.get(f) for f in FIELDS}, **flatten(run.get("params") or {})} for run in runs]
    keys = list(dict.fromkeys(k for values in flat for k in values))
    table = pd.DataFrame([[values.get(k) for values in flat] for k in keys], index=keys, columns=labels, dtype=object)
    differs = [not _same(list(table.loc[k])) for k in keys]
    return table[differs], table[[not d for d in differs]]


def metric_table(runs: list[dict], labels: list[str]) -> pd.DataFrame:
    """Each run's outcome, formatted, one row per figure some run has (accuracy, times, memory, sizes)."""
    rows = {}
    for key, name, fmt in METRICS:
        values = [run.get(key) for run in runs]
        if any(v is not None for v in values):
            rows[name] = [None if v is None else fmt.format(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=labels)


def short_labels(runs: list[dict]) -> list[str]:
    """A column title per run: its name, else method · classifier · seed, and its id; unique."""
    labels = []
    for run in runs:
        what = run.get("name") or " · ".join(str(run[k]) for k in ("method", "classifier") if run.get(k)) \
            + f" · seed {run['seed']}"
        labels.append(f"{what} ({run['id']})")
    return labels
