"""Multinomial logistic regression on features (the linear-probe ablation), via scikit-learn."""

from __future__ import annotations

from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.params import Param

from ._common import check_params, feature_scale, fit_inputs, predict_inputs


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
