"""Linear ridge classifier on one-hot targets, in closed form.

Also home of the input checks both built-in classifiers share (the kernel plugin imports them from here,
since this module needs nothing heavier than numpy and scikit-learn).
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from toptune.errors import ParamError
from toptune.params import Param, validate

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 only has the method
    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

_FLOATS = (np.float64, np.float32)


class RidgeClassifier(ClassifierMixin, BaseEstimator):
    """Least squares on one-hot labels with an L2 penalty and an unpenalised intercept."""

    api_version = 1
    description = "Linear ridge classifier (closed-form least squares on one-hot labels)"
    params = {
        "alpha": Param("float", 1.0, "ridge penalty on the weights (not on the intercept)", min=0.0),
        "standardize": Param("bool", True, "scale features to unit variance first (the penalty then treats "
                             "every feature alike)"),
    }

    def __init__(self, alpha=1.0, standardize=True):
        self.alpha = alpha
        self.standardize = standardize

    def fit(self, X, y):
        settings = check_params(self)
        X, y = fit_inputs(self, X, y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        X = X.astype(np.float64, copy=False)
        x_mean = X.mean(axis=0)
        scale = _feature_scale(X) if settings["standardize"] else np.ones(X.shape[1])
        Xc = (X - x_mean) / scale
        Y = one_hot(codes, len(self.classes_))
        y_mean = Y.mean(axis=0)
        W = ridge_solve(Xc, Y - y_mean, settings["alpha"])
        # Folding the scaling into the weights lets predictions skip it: X @ coef_.T + intercept_.
        self.coef_ = (W / scale[:, None]).T
        self.intercept_ = y_mean - x_mean @ self.coef_.T
        self.n_trained_params_ = int(self.coef_.size + self.intercept_.size)
        return self

    def decision_function(self, X):
        """Per-class scores (n, n_classes); for two classes the score of ``classes_[1]`` minus ``classes_[0]``."""
        X = predict_inputs(self, X)
        return scores_to_decision(X @ self.coef_.T + self.intercept_)

    def predict(self, X):
        scores = self.decision_function(X)
        winners = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[winners]


def ridge_solve(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """``argmin_W ||X W - Y||² + alpha ||W||²`` through the smaller of the primal (d×d) and dual (n×n) systems."""
    n, d = X.shape
    if d <= n:
        return _spd_solve(X.T @ X, X.T @ Y, alpha)
    return X.T @ _spd_solve(X @ X.T, Y, alpha)


def _spd_solve(G: np.ndarray, B: np.ndarray, alpha: float) -> np.ndarray:
    G = G + alpha * np.eye(G.shape[0])
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(G), B)
    except np.linalg.LinAlgError:
        # Only a (near-)zero alpha with collinear features gets here; the minimum-norm solution is then the
        # natural answer.
        return scipy.linalg.lstsq(G, B)[0]


def _feature_scale(X: np.ndarray) -> np.ndarray:
    std = X.std(axis=0)
    # A constant feature keeps scale 1: it is 0 after centring either way, and dividing by 0 would give NaN.
    return np.where(std > 0, std, 1.0)


# ---- shared by the built-in classifiers ----


def check_params(estimator) -> dict:
    """The estimator's parameters checked against its ``params`` schema, as ``ValueError`` for sklearn users."""
    try:
        return validate(estimator.params, estimator.get_params(), type(estimator).__name__)
    except ParamError as exc:
        raise ValueError(str(exc)) from None


def fit_inputs(estimator, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validated float features and class labels; sets ``n_features_in_``."""
    X, y = validate_data(estimator, _to_numpy(X), _to_numpy(y), dtype=_FLOATS)
    check_classification_targets(y)
    labels = np.unique(y)
    if len(labels) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs at least 2 classes in y, got only one class: {labels[0]!r}"
        )
    return X, y


def predict_inputs(estimator, X) -> np.ndarray:
    check_is_fitted(estimator)
    return validate_data(estimator, _to_numpy(X), dtype=_FLOATS, reset=False)


def one_hot(codes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(codes), n_classes))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def scores_to_decision(scores: np.ndarray) -> np.ndarray:
    """scikit-learn's convention: binary problems get one score, positive for ``classes_[1]``."""
    return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores


def _to_numpy(A):
    # Only check for tensors when torch is already imported: whoever made a tensor has imported it.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(A, torch.Tensor):
        return A.detach().cpu().numpy()
    return A
