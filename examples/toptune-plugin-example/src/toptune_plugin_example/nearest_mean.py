"""Nearest class mean: the simplest classifier on frozen features, and a scikit-learn estimator."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.errors import ParamError
from toptune.params import Param, validate


class NearestMean(ClassifierMixin, BaseEstimator):
    """Assigns each sample to the class whose training mean is closest (Euclidean or cosine)."""

    api_version = 1
    description = "nearest class mean on features, Euclidean or cosine (example plugin)"
    params: ClassVar[dict[str, Param]] = {
        "metric": Param("str", "euclidean", "distance to the class means", choices=("euclidean", "cosine")),
        "standardize": Param("bool", True, "scale features to unit variance first, so no feature dominates"),
    }

    def __init__(self, metric: str = "euclidean", standardize: bool = True):
        self.metric = metric
        self.standardize = standardize

    def fit(self, X, y):
        # toptune validates parameters before creating a plugin; this covers direct scikit-learn use.
        try:
            validate(self.params, self.get_params(), type(self).__name__)
        except ParamError as exc:
            raise ValueError(str(exc)) from None
        X, y = _features(X), np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("NearestMean needs at least 2 classes in y")
        std = X.std(axis=0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(std > 0, std, 1.0)  # a constant feature would divide by zero
        self.n_features_in_ = X.shape[1]
        self.means_ = np.stack([X[codes == k].mean(axis=0) for k in range(len(self.classes_))]) / self.scale_
        # The class means are what is learnt; the per-feature scale too when standardising.
        self.n_trained_params_ = int(self.means_.size + (X.shape[1] if self.standardize else 0))
        return self

    def decision_function(self, X):
        """Per-class similarity (n, n_classes): minus the squared distance, or the cosine."""
        if not hasattr(self, "means_"):
            raise ValueError("NearestMean is not fitted yet; call fit(X, y) first")
        X = _features(X) / self.scale_
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the classifier was fitted on {self.n_features_in_}")
        if self.metric == "cosine":
            return _unit(X) @ _unit(self.means_).T
        return 2 * X @ self.means_.T - (self.means_**2).sum(axis=1)  # |x|² is the same for every class

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    # Optional (toptune.protocols.SavableClassifier): the fitted state, saved with each run so it leaves a
    # model that `toptune predict` and `toptune export` use. JSON-able settings and named arrays only.
    state_version = 1

    def save_state(self) -> tuple[dict, dict]:
        settings = {"params": self.get_params(), "classes": self.classes_.tolist(),
                    "n_trained_params": self.n_trained_params_}
        return settings, {"means": self.means_, "scale": self.scale_}

    @classmethod
    def load_state(cls, settings: dict, arrays: dict) -> NearestMean:
        clf = cls(**settings["params"])
        clf.classes_, clf.means_, clf.scale_ = np.asarray(settings["classes"]), arrays["means"], arrays["scale"]
        clf.n_features_in_, clf.n_trained_params_ = clf.means_.shape[1], settings["n_trained_params"]
        return clf

    def scores_module(self):
        """The decision function as torch operations, for ONNX / TorchScript export."""
        import torch

        class Scores(torch.nn.Module):
            def __init__(self, means, scale, cosine):
                super().__init__()
                self.register_buffer("means", torch.tensor(means, dtype=torch.float32))
                self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
                self.cosine = cosine

            def forward(self, x):
                x = x / self.scale
                if self.cosine:
                    unit = torch.nn.functional.normalize
                    return unit(x, dim=1) @ unit(self.means, dim=1).T
                return 2 * x @ self.means.T - (self.means**2).sum(1)

        return Scores(self.means_, self.scale_, self.metric == "cosine").eval()


def _features(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D feature array (n_samples, n_features), got shape {X.shape}")
    return X


def _unit(A: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norms > 0, norms, 1.0)
