"""Scores of a clustering against the true classes: purity, overlaps (classes lost), NMI and ARI.

Labels only ever enter here, after the clusters are fixed; nothing in this module trains anything.
"""

from __future__ import annotations

import numpy as np


def contingency(labels, clusters) -> np.ndarray:
    """Counts of (cluster, class) pairs: rows are clusters, columns classes (both in sorted order)."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(f"labels and clusters must be 1-D of one length, got {labels.shape} and {clusters.shape}")
    _, cls = np.unique(labels, return_inverse=True)
    _, clu = np.unique(clusters, return_inverse=True)
    table = np.zeros((clu.max(initial=-1) + 1, cls.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (clu, cls), 1)
    return table


def purity(labels, clusters) -> float:
    """(1/N) Σ over clusters of the size of the cluster's largest class; 1 means every cluster is pure."""
    table = contingency(labels, clusters)
    return float(table.max(axis=1).sum() / table.sum()) if table.size else float("nan")


def overlaps(labels, clusters) -> int:
    """How many classes are the majority of no cluster, i.e. were merged into other classes' clusters.

    A class tied for the largest count of a cluster counts as one of its majorities: a tie is not proof
    that the class was lost.
    """
    table = contingency(labels, clusters)
    if not table.size:
        return 0
    majority = table == table.max(axis=1, keepdims=True)
    return int((~majority.any(axis=0)).sum())


def scores(labels, clusters) -> dict:
    """Purity, overlaps, NMI and ARI of one clustering."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"purity": purity(labels, clusters), "overlaps": overlaps(labels, clusters),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters))}
