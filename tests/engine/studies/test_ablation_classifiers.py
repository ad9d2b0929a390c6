"""The `logistic` and `fc-head` classifiers of the top-tuning ablation."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from toptune import registry
from toptune.plugins.classifiers.fc_head import FCHeadClassifier
from toptune.plugins.classifiers.logistic import LogisticClassifier


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def test_logistic_accuracy_and_params(digits):
    X_train, X_test, y_train, y_test = digits
    clf = registry.create_classifier("logistic").fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.94
    assert clf.n_trained_params_ == (64 + 1) * 10
    assert np.allclose(clf.predict_proba(X_test).sum(1), 1.0)
    # C=1e-4 all but erases the weights on digits' raw pixels; the search must see that and pick C=1.
    search = GridSearchCV(LogisticClassifier(max_iter=300), {"C": [1e-4, 1.0]}, cv=2).fit(X_train, y_train)
    assert search.best_params_["C"] == 1.0 and search.cv_results_["mean_test_score"][0] < 0.9


def test_fc_head_accuracy_reproducible_and_torch_input(digits):
    X_train, X_test, y_train, y_test = digits
    a = FCHeadClassifier(epochs=30, seed=1).fit(X_train, y_train)
    b = clone(a).fit(torch.as_tensor(X_train), torch.as_tensor(y_train))
    assert a.score(X_test, y_test) >= 0.95
    assert np.array_equal(a.predict(X_test), b.predict(X_test))  # same seed, same network
    assert a.n_trained_params_ == 64 * 512 + 512 + 512 * 10 + 10
    linear = FCHeadClassifier(hidden=0, epochs=30).fit(X_train, y_train)
    assert linear.n_trained_params_ == 64 * 10 + 10 and linear.score(X_test, y_test) >= 0.9


@pytest.mark.parametrize("cls, bad, message", [
    (FCHeadClassifier, {"hidden": -1}, "'hidden': -1"),
    (FCHeadClassifier, {"dropout": 1.5}, "'dropout': 1.5"),
    (LogisticClassifier, {"C": 0}, "'C': 0"),
])
def test_invalid_hyper_parameters_raise(digits, cls, bad, message):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=message):
        cls(**bad).fit(X_train, y_train)


def test_ablation_classifiers_registered():
    assert {"kernel", "ridge", "logistic", "fc-head"} <= set(registry.list_classifiers())
