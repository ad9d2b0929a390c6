"""What a finished run keeps as its model, built from the objects the run already holds.

A top-tuned model is a reference to its backbone (plugin name, parameters, weights digest, feature mode,
preprocessing) plus the classifier's saved state and what the feature mode learnt from the training
split. The backbone's own weights are copied only where the plugin cannot reproduce them: random
initialisation and users' weights files (``pretrain_source`` ``none`` or ``custom``). A fine-tuned model is
the trained network's tensors. Either way the class names travel with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..params import Param
from .files import ModelFiles

SAVE_PARAM = {"save_model": Param("bool", True, "keep the trained model beside the store (toptune predict, "
                                               "toptune export); sweeps keep fine-tuned networks only when asked")}
# Weights a backbone plugin cannot rebuild by itself: they travel with the model.
UNREPRODUCIBLE = ("none", "custom")


def tensors_of(module) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in module.state_dict().items()}


def _backbone(rs, backbone, weights_saved: bool) -> dict:
    return {"name": rs.spec.backbone, "params": rs.params["backbone"], "weights_digest": backbone.weights_digest(),
            "pretrain_source": getattr(backbone, "pretrain_source", None), "weights_saved": weights_saved}


def reproducible(rs, backbone) -> bool:
    """Whether the backbone plugin rebuilds these weights by itself (not random ones, not a user's file)."""
    weights = rs.params["backbone"].get("weights")
    users_file = isinstance(weights, str) and Path(weights).expanduser().is_file()
    return getattr(backbone, "pretrain_source", None) not in UNREPRODUCIBLE and not users_file


def _common(rs, classes, pre: dict, compute: dict | None) -> dict:
    """``compute``: the precision (and layout) the run's network ran in, which predictions run in too."""
    run = rs.params["run"]
    kept = {k: compute[k] for k in ("precision", "channels_last") if k in compute} if compute else None
    return {"method": rs.method, "classes": [str(c) for c in classes], "preprocessing": pre,
            "input_size": int(pre["input_size"]), "batch_size": run["batch_size"], "compute": kept,
            "run": {"dataset": rs.spec.dataset, "dataset_params": rs.params.get("dataset", {}), "seed": rs.spec.seed}}


def top_tuned(rs, backbone, pre: dict, clf, classes, mode_state: dict, feature_dim: int,
              compute: dict | None = None) -> tuple:
    """(ModelFiles, None), or (None, why not) when the classifier cannot save its state."""
    name = rs.spec.classifier
    if not callable(getattr(clf, "save_state", None)) or not callable(getattr(type(clf), "load_state", None)):
        return None, (f"classifier '{name}' has no save_state()/load_state() (toptune.protocols."
                      "SavableClassifier), so this run's model was not saved")
    settings, arrays = clf.save_state()
    weights = None if reproducible(rs, backbone) else tensors_of(backbone.build())
    manifest = {**_common(rs, classes, pre, compute), "backbone": _backbone(rs, backbone, weights is not None),
                "feature_mode": rs.params["run"].get("feature_mode") or "pooled", "feature_dim": int(feature_dim),
                "classifier": {"name": name, "params": rs.params["classifier"],
                               "state_version": int(getattr(type(clf), "state_version", 1)), "settings": settings}}
    tensors = {"classifier": dict(arrays), **({"features": mode_state} if mode_state else {}),
               **({"backbone": weights} if weights is not None else {})}
    return ModelFiles(manifest, tensors), None


def fine_tuned(rs, backbone, network, classes, pre: dict, feature_dim: int, compute: dict | None = None) -> ModelFiles:
    manifest = {**_common(rs, classes, pre, compute), "backbone": _backbone(rs, backbone, True),
                "feature_dim": int(feature_dim)}
    return ModelFiles(manifest, {"network": tensors_of(network)})


def network(body, feature_dim: int, n_classes: int):
    """A fine-tuned network: the backbone's module and a new linear head (saved and rebuilt alike)."""
    import torch

    return torch.nn.Sequential(body, torch.nn.Linear(int(feature_dim), int(n_classes)))
