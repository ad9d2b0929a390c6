"""Which training images a fine-tuning run trains on: ``select`` = random | entropy-high | entropy-low | error.

The first subset comes from the pre-trained model's view of the data: a multinomial logistic
regression (the ``logistic`` classifier) on the frozen backbone's pooled features of the training pool
(the feature cache is shared with top-tuning). Its class probabilities are **out-of-fold**: each image
is scored by a model fitted on the other folds (stratified, up to 5), because probabilities on the
very images a model was fitted on are near-certain and their errors near-absent. Rules:

- ``entropy-high`` / ``entropy-low``: the images whose predicted class distribution has the highest /
  lowest Shannon entropy (ties: lower index first);
- ``error``: images the classifier gets wrong, then the rest, each ordered by the probability it gives
  the true class, lowest first;
- ``random``: a uniform draw seeded by the run seed.

The subset holds round(fraction × pool) images. With ``select_every = k`` the subset is chosen again
before epochs k+1, 2k+1, …, with the same rule applied to the network being fine-tuned: its softmax
outputs on the whole pool (random draws a new subset). The subset's size never changes, so the
learning-rate schedule stays as planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import registry
from ..errors import DatasetError, ParamError
from ..params import Param

FOLDS = 5
SELECT_RULES = ("random", "entropy-high", "entropy-low", "error")
SELECT_PARAMS = {
    "select": Param("str", None, "fine-tune on a subset of train chosen by this rule (unset: all of it)",
                    choices=SELECT_RULES),
    "fraction": Param("float", 0.25, "size of the selected subset, as a fraction of the training images",
                      min=0.001, max=1.0),
    "select_every": Param("int", None, "choose the subset again every k epochs with the network being "
                          "fine-tuned (unset: once, before training)", min=1),
}


def check(run: dict) -> None:
    if run.get("select_every") is not None and not run.get("select"):
        raise ParamError("select_every needs a selection rule: set select=random|entropy-high|entropy-low|error")


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class probabilities, with 0·log 0 = 0."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def subset_size(n: int, fraction: float) -> int:
    return int(min(n, max(1, round(fraction * n))))


def _true_class_proba(proba: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    columns = np.searchsorted(classes, labels)
    known = (columns < len(classes)) & (classes[np.minimum(columns, len(classes) - 1)] == labels)
    p = np.zeros(len(labels))
    p[known] = proba[np.flatnonzero(known), columns[known]]
    return p


def ranking(rule: str, proba=None, labels=None, classes=None, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Positions 0..n-1 in the order ``rule`` prefers them, most wanted first."""
    if rule == "random":
        return np.random.default_rng(seed).permutation(n if n is not None else len(proba))
    order = np.arange(len(proba))
    if rule in ("entropy-high", "entropy-low"):
        h = entropy(proba)
        return np.lexsort((order, -h if rule == "entropy-high" else h))
    if rule == "error":
        classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
        wrong = classes[np.argmax(proba, axis=1)] != labels
        return np.lexsort((order, _true_class_proba(proba, labels, classes), ~wrong))
    raise ValueError(f"unknown selection rule {rule!r}")


def pick(rule: str, fraction: float, proba=None, labels=None, classes=None, n: int | None = None,
         seed: int = 0) -> np.ndarray:
    """The chosen positions, ascending: the first round(fraction × n) of ``ranking``."""
    total = n if n is not None else len(proba)
    return np.sort(ranking(rule, proba, labels, classes, total, seed)[:subset_size(total, fraction)])


def out_of_fold_proba(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, classes): each row from a logistic regression that never saw that row."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    classes, counts = np.unique(labels, return_counts=True)
    folds = min(FOLDS, int(counts.min()))
    if len(classes) < 2 or folds < 2:
        raise DatasetError("data selection scores images by cross-validation: every class needs at least 2 "
                           "training images")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scorer = registry.create("classifier", "logistic")
    proba = cross_val_predict(scorer, features, labels, cv=cv, method="predict_proba")
    return proba, classes


@dataclass
class Selection:
    """The subset a fine-tuning run trains on, and how it was chosen."""

    rule: str
    fraction: float
    every: int | None
    seed: int
    pool: np.ndarray  # split indices the subset is drawn from
    indices: np.ndarray  # split indices of the current subset
    chosen_at: list = field(default_factory=lambda: [1])  # epochs that started with a new subset
    scorer: str = "logistic regression on pre-trained pooled features (out-of-fold)"

    def summary(self) -> dict:
        return {"rule": self.rule, "fraction": self.fraction, "subset_size": len(self.indices),
                "pool_size": len(self.pool), "select_every": self.every, "chosen_at_epochs": self.chosen_at,
                "scored_by": self.scorer}
