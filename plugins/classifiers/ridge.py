"""Linear ridge classifier on one-hot targets, in closed form, with the penalty chosen by leave-one-out."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.params import Param

from .common import (
    check_params,
    feature_scale,
    fit_inputs,
    linear_scores,
    one_hot,
    predict_inputs,
    restored,
    scores_to_decision,
    state_settings,
    winners,
)

# Candidate penalties, relative to the mean eigenvalue of the centred Gram matrix so the grid fits any scale.
_RELATIVE_ALPHAS = np.logspace(-6, 1, 15)


class RidgeClassifier(ClassifierMixin, BaseEstimator):
    """Least squares on one-hot labels with an L2 penalty and an unpenalised intercept."""

    api_version = 1
    description = "Linear ridge classifier (closed-form least squares on one-hot labels, α by leave-one-out)"
    params = {
        "alpha": Param("float", None, "ridge penalty on the weights (not on the intercept); None/'auto' = the "
                       "value with the lowest exact leave-one-out error on a grid", min=0.0, keywords=("auto",)),
        "standardize": Param("bool", True, "scale features to unit variance first (the penalty then treats "
                             "every feature alike)"),
    }

    def __init__(self, alpha=None, standardize=True):
        self.alpha = alpha
        self.standardize = standardize

    def fit(self, X, y):
        settings = check_params(self)
        X, y = fit_inputs(self, X, y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        X = X.astype(np.float64, copy=False)
        x_mean = X.mean(axis=0)
        scale = feature_scale(X) if settings["standardize"] else np.ones(X.shape[1])
        Xc = (X - x_mean) / scale
        Y = one_hot(codes, len(self.classes_))
        y_mean = Y.mean(axis=0)
        if settings["alpha"] in (None, "auto"):
            W, self.alpha_ = ridge_loo(Xc, Y - y_mean)
        else:
            W, self.alpha_ = ridge_solve(Xc, Y - y_mean, settings["alpha"]), float(settings["alpha"])
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
        scores = self.decision_function(X)  # checks fitted before classes_ is read
        return winners(self.classes_, scores)

    state_version = 1

    def save_state(self) -> tuple[dict, dict]:
        return state_settings(self, alpha_=self.alpha_), {"coef": self.coef_, "intercept": self.intercept_}

    @classmethod
    def load_state(cls, settings: dict, arrays: dict):
        return restored(cls, settings, arrays, alpha_=settings["alpha_"], coef_=arrays["coef"],
                        intercept_=arrays["intercept"])

    def scores_module(self):
        return linear_scores(self.coef_, self.intercept_)


def ridge_solve(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """``argmin_W ||X W - Y||² + alpha ||W||²``, via the smaller of the primal (d×d) and dual (n×n) systems."""
    n, d = X.shape
    if d <= n:
        return _spd_solve(X.T @ X, X.T @ Y, alpha)
    return X.T @ _spd_solve(X @ X.T, Y, alpha)


def ridge_loo(X: np.ndarray, Y: np.ndarray, relative_alphas=_RELATIVE_ALPHAS) -> tuple[np.ndarray, float]:
    """Ridge weights with alpha picked by exact leave-one-out squared error (X, Y centred).

    One SVD X = U S Vᵀ gives every candidate's fitted values and leverages in closed form, so the whole
    grid costs about one fit. The intercept adds 1/n to each leverage.
    """
    n = X.shape[0]
    U, s, Vt = scipy.linalg.svd(X, full_matrices=False, lapack_driver="gesdd")
    s2 = s**2
    UtY = U.T @ Y
    U2 = U**2
    alphas = relative_alphas * max(s2.mean(), np.finfo(float).tiny)
    errors = []
    for alpha in alphas:
        shrink = s2 / (s2 + alpha)
        residual = Y - U @ (shrink[:, None] * UtY)
        leverage = np.minimum(U2 @ shrink + 1.0 / n, 1 - 1e-12)
        errors.append(np.mean((residual / (1 - leverage)[:, None]) ** 2))
    alpha = float(alphas[int(np.argmin(errors))])
    W = Vt.T @ ((s / (s2 + alpha))[:, None] * UtY)
    return W, alpha


def _spd_solve(G: np.ndarray, B: np.ndarray, alpha: float) -> np.ndarray:
    G = G + alpha * np.eye(G.shape[0])
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(G), B)
    except np.linalg.LinAlgError:
        # Only a (near-)zero alpha with collinear features gets here; the minimum-norm solution is then the
        # natural answer.
        return scipy.linalg.lstsq(G, B)[0]
