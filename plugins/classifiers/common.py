"""Input checks and label handling shared by the built-in classifiers (numpy and scikit-learn only)."""

from __future__ import annotations

import sys

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from toptune.errors import ParamError
from toptune.params import validate

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 only has the method
    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

_FLOATS = (np.float64, np.float32)

def check_params(estimator) -> dict:
    """The estimator's parameters checked against its ``params`` schema, as ``ValueError`` for sklearn users."""
    try:
        return validate(estimator.params, estimator.get_params(), type(estimator).__name__)
    except ParamError as exc:
        raise ValueError(str(exc)) from None


def fit_inputs(estimator, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validated float features and class labels; sets ``n_features_in_``."""
    X, y = validate_data(estimator, to_numpy(X), to_numpy(y), dtype=_FLOATS)
    check_classification_targets(y)
    labels = np.unique(y)
    if len(labels) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs at least 2 classes in y, got only one class: {labels.tolist()[0]!r}"
        )
    return X, y


def predict_inputs(estimator, X) -> np.ndarray:
    check_is_fitted(estimator)
    return validate_data(estimator, to_numpy(X), dtype=_FLOATS, reset=False)


def one_hot(codes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(codes), n_classes))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def scores_to_decision(scores: np.ndarray) -> np.ndarray:
    """scikit-learn's convention: binary problems get one score, positive for ``classes_[1]``."""
    return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores


def to_numpy(A):
    # Only check for tensors when torch is already imported: whoever made a tensor has imported it.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(A, torch.Tensor):
        return A.detach().cpu().numpy()
    return A


def winners(classes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels from decision scores: the top class, or the sign for a binary problem's single score."""
    picked = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
    return classes[picked]


def feature_scale(X: np.ndarray) -> np.ndarray:
    std = X.std(axis=0)
    # A constant feature keeps scale 1: it is 0 after centring either way, and dividing by 0 would give NaN.
    return np.where(std > 0, std, 1.0)


# ---- saved state (toptune.protocols.SavableClassifier) ------------------------------------------------------

def state_settings(estimator, **extra) -> dict:
    """What every built-in saves besides its arrays: its parameters, the class labels, the feature count."""
    return {"params": estimator.get_params(), "classes": np.asarray(estimator.classes_).tolist(),
            "n_features_in": int(estimator.n_features_in_), "n_trained_params": int(estimator.n_trained_params_),
            **extra}


def restored(cls, settings: dict, arrays: dict, **attributes):
    """A fitted estimator of ``cls`` from saved state: parameters, labels, then the given fitted attributes."""
    estimator = cls(**settings["params"])
    estimator.classes_ = np.asarray(settings["classes"])
    estimator.n_features_in_ = int(settings["n_features_in"])
    estimator.n_trained_params_ = int(settings["n_trained_params"])
    for name, value in attributes.items():
        setattr(estimator, name, value)
    return estimator


def standardizer(mean, scale):
    """A torch module computing (x - mean) / scale in float32, for exported heads."""
    import torch

    class Standardize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(np.broadcast_to(mean, np.shape(scale)), dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(np.asarray(scale), dtype=torch.float32))

        def forward(self, x):
            return (x - self.mean) / self.scale

    return Standardize()


def linear_scores(weight: np.ndarray, bias: np.ndarray):
    """A torch linear layer with these (C, d) weights and (C,) biases."""
    import torch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer.eval()
