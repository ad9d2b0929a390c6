"""Multinomial logistic regression on features (the linear-probe ablation), via scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.params import Param

from .common import (
    check_params,
    feature_scale,
    fit_inputs,
    linear_scores,
    predict_inputs,
    restored,
    standardizer,
    state_settings,
)


class LogisticClassifier(ClassifierMixin, BaseEstimator):
    """Standardised features, then L2-regularised multinomial logistic regression (L-BFGS)."""

    api_version = 1
    description = "Multinomial logistic regression on features (scikit-learn, L-BFGS)"
    params = {
        "C": Param("float", 1.0, "inverse L2 regularisation strength", min=1e-8),
        "max_iter": Param("int", 1000, "L-BFGS iterations at most", min=1),
        "standardize": Param("bool", True, "scale features to zero mean and unit variance first"),
    }

    def __init__(self, C=1.0, max_iter=1000, standardize=True):
        self.C = C
        self.max_iter = max_iter
        self.standardize = standardize

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        settings = check_params(self)
        X, y = fit_inputs(self, X, y)
        self.mean_ = X.mean(axis=0) if settings["standardize"] else 0.0
        self.scale_ = feature_scale(X) if settings["standardize"] else 1.0
        self.model_ = LogisticRegression(C=settings["C"], max_iter=settings["max_iter"])
        self.model_.fit((X - self.mean_) / self.scale_, y)
        self.classes_ = self.model_.classes_
        self.n_iter_ = int(self.model_.n_iter_.max())
        self.n_trained_params_ = int(self.model_.coef_.size + self.model_.intercept_.size)
        return self

    def decision_function(self, X):
        X = predict_inputs(self, X)
        return self.model_.decision_function((X - self.mean_) / self.scale_)

    def predict_proba(self, X):
        X = predict_inputs(self, X)
        return self.model_.predict_proba((X - self.mean_) / self.scale_)

    def predict(self, X):
        X = predict_inputs(self, X)
        return self.model_.predict((X - self.mean_) / self.scale_)

    state_version = 1

    def save_state(self) -> tuple[dict, dict]:
        arrays = {"coef": self.model_.coef_, "intercept": self.model_.intercept_}
        if isinstance(self.mean_, np.ndarray):  # standardised; otherwise they are the scalars 0 and 1
            arrays.update(mean=self.mean_, scale=self.scale_)
        return state_settings(self, n_iter_=self.n_iter_), arrays

    @classmethod
    def load_state(cls, settings: dict, arrays: dict):
        from sklearn.linear_model import LogisticRegression

        estimator = restored(cls, settings, arrays, mean_=arrays.get("mean", 0.0), scale_=arrays.get("scale", 1.0),
                             n_iter_=settings["n_iter_"])
        model = LogisticRegression(C=estimator.C, max_iter=estimator.max_iter)
        model.coef_, model.intercept_ = arrays["coef"], arrays["intercept"]
        model.classes_, model.n_features_in_ = estimator.classes_, estimator.n_features_in_
        estimator.model_ = model
        return estimator

    def scores_module(self):
        """Standardisation, then the logits (a binary model's single logit z becomes the pair [0, z])."""
        import torch

        coef, intercept = self.model_.coef_, self.model_.intercept_
        if coef.shape[0] == 1:
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        mean = np.broadcast_to(np.asarray(self.mean_, dtype=np.float64), (self.n_features_in_,))
        scale = np.broadcast_to(np.asarray(self.scale_, dtype=np.float64), (self.n_features_in_,))
        return torch.nn.Sequential(standardizer(mean, scale), linear_scores(coef, intercept)).eval()
