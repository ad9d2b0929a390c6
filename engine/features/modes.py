"""Feature modes: which activations of a frozen backbone a top-tuning classifier is trained on.

- ``pooled``: the module ``build()`` returns, as before (global-pooled output of the last stage).
- ``layer:<name>``: the output of one submodule of that module, averaged over its spatial positions
  (or tokens); the forward pass stops right after it.
- ``fne``: the Full-Network Embedding (Garcia-Gasulla et al., 2018): every stage's output spatially
  averaged, plus the pooled output, concatenated; then standardised per feature with the *training*
  split's mean and standard deviation (applied unchanged to test) and discretised to -1 / 0 / +1 with
  the thresholds -0.25 and +0.15. A value exactly at a threshold becomes 0.

Intermediate outputs are read with forward hooks on the very module ``build()`` returns, so weights
load once and the same way for every mode. A backbone names its stages through the optional
``feature_layers(module)`` method; without it only ``pooled`` works. The cache holds the activations
before standardisation, so ``fne`` features are cached once per split and train statistics are
recomputed for each run.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ParamError
from ..params import Param

POOLED, FNE, LAYER = "pooled", "fne", "layer:"
FNE_LOW, FNE_HIGH = -0.25, 0.15
FEATURE_PARAMS = {
    "feature_mode": Param("str", POOLED, "pooled (last stage, global-pooled) | layer:<name> (one layer, "
                          "spatially averaged; see toptune backbones describe) | fne (full-network embedding)"),
}


def parse(mode: str) -> tuple[str, str | None]:
    """'pooled' | 'fne' | 'layer:<name>' -> (kind, layer name or None)."""
    if mode in (POOLED, FNE):
        return mode, None
    if mode.startswith(LAYER) and mode[len(LAYER):].strip():
        return "layer", mode[len(LAYER):].strip()
    raise ParamError(f"feature_mode must be pooled, fne or layer:<name>, got {mode!r} "
                     "(toptune backbones describe NAME lists the layer names)")


def check(run: dict) -> None:
    """A feature mode's syntax, which a plain string parameter cannot express."""
    parse(run.get("feature_mode") or POOLED)


def stage_names(backbone, module, name: str) -> list[str]:
    """The backbone's stage names, shallow to deep; a clear error when it does not expose them."""
    lister = getattr(backbone, "feature_layers", None)
    if not callable(lister):
        raise ParamError(f"backbone '{name}' does not name its layers (it has no feature_layers() method), "
                         "so it supports only feature_mode=pooled")
    stages = [str(s) for s in lister(module)]
    if not stages:
        raise ParamError(f"backbone '{name}' lists no layers, so it supports only feature_mode=pooled")
    return stages


def feature_module(backbone, name: str, run: dict):
    """The module mapping a batch to (B, d) features in this run's feature mode."""
    kind, layer = parse(run.get("feature_mode") or POOLED)
    body = backbone.build()
    if kind == POOLED:
        return body
    from .layers import LayerExtractor

    stages = stage_names(backbone, body, name)
    layers = [layer] if kind == "layer" else stages
    return LayerExtractor(body, layers, with_output=kind == FNE)


def statistics(train: np.ndarray) -> dict[str, np.ndarray]:
    """The training split's per-feature mean and std (float64); a constant feature gets std = inf, so it
    standardises to 0. Saved with an ``fne`` model, which applies them to every new image."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = np.inf
    return {"mean": mean, "std": std}


def standardised(x: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    return ((x - stats["mean"]) / stats["std"]).astype(np.float32)


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both splits scaled with the training split's per-feature mean and std (constant features become 0)."""
    stats = statistics(train)
    return standardised(train, stats), standardised(test, stats)


def discretise(z: np.ndarray, low: float = FNE_LOW, high: float = FNE_HIGH) -> np.ndarray:
    """-1 below ``low``, +1 above ``high``, 0 in between (thresholds compared in z's own precision)."""
    lo, hi = np.asarray(low, dtype=z.dtype), np.asarray(high, dtype=z.dtype)
    return np.where(z < lo, -1.0, np.where(z > hi, 1.0, 0.0)).astype(np.float32)


def full_network_embedding(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise with train statistics, then discretise both splits."""
    z_train, z_test = standardise(train, test)
    return discretise(z_train), discretise(z_test)


def fit(run: dict, train: np.ndarray) -> dict[str, np.ndarray]:
    """What a feature mode learns from the training features (``fne``: their statistics; others: nothing)."""
    return statistics(train) if (run.get("feature_mode") or POOLED) == FNE else {}


def transform(mode: str, x: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    """Features of new images as the classifier saw the training ones."""
    return discretise(standardised(x, state)) if mode == FNE else x


def finish(run: dict, train, test) -> tuple:
    """(train, test, info): the classifier's inputs from the activations of both splits (cached, then
    offset by any embedding shift): an ``fne`` run standardises them with train statistics and discretises."""
    mode = run.get("feature_mode") or POOLED
    state = fit(run, train.features)
    if state:
        train = dataclasses.replace(train, features=transform(mode, train.features, state))
        test = dataclasses.replace(test, features=transform(mode, test.features, state))
    return train, test, {"feature_mode": mode}
