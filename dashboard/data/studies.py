"""Studies as the pages read them: comparisons, clustering studies, robustness and selection studies.

Every kind is found through the engine's ``STUDIES`` table; a store file that does not exist reads as
having no studies (looking must not create it).
"""

from __future__ import annotations

import pandas as pd

from toptune.store.artifacts import artifact_path
from toptune.studies import STUDIES, clustering
from toptune.studies import compare as cmp

from .runs import open_store


def find_studies(path, name: str) -> list:
    """Every study of one kind (a ``STUDIES`` name) with a finished run, oldest first."""
    store = open_store(path)
    return STUDIES[name].find(store) if store else []


def points_frame(study) -> pd.DataFrame:
    """A study summary's flat figures (``points()``), one row per cell, for its chart and table."""
    return pd.DataFrame(study.points())


def load_comparisons(path) -> list[cmp.Comparison]:
    return find_studies(path, cmp.STUDY.name)


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


def load_studies(path) -> list[clustering.ClusterStudy]:
    """Clustering studies with at least one finished run, oldest first."""
    return find_studies(path, clustering.STUDY.name)


def study_runs(path, study_id: str) -> list[dict]:
    """A study's runs (any status), decoded, newest first."""
    return open_store(path).runs(study_id=study_id)


def has_latents(path, run_id: str) -> bool:
    """Whether the run exported its latent codes (``--export-latents``), which a projection needs."""
    return artifact_path(path, run_id, "latent").exists()


def latent_projection(path, run_id: str, method: str) -> pd.DataFrame:
    """One row per image: x, y (PCA or t-SNE of the latent codes), cluster, label, sample."""
    return pd.DataFrame(clustering.latent_projection(path, run_id, method))
