"""Run parameters of the research tools: feature modes, covariate shift and fine-tuning data selection.

They join the methods' own parameters in ``spec.METHOD_PARAMS``; ``check`` holds the rules a single
schema cannot express (the syntax of a feature mode, which shifts a method can apply).
"""

from __future__ import annotations

from .errors import ParamError
from .params import Param

SHIFT_KINDS = ("none", "awgn", "blur", "embedding")
PIXEL_SHIFTS = ("awgn", "blur")
SHIFT_SPLITS = ("train", "test", "both")
SELECT_RULES = ("random", "entropy-high", "entropy-low", "error")

FEATURE_PARAMS = {
    "feature_mode": Param("str", "pooled", "pooled (last stage, global-pooled) | layer:<name> (one layer, "
                          "spatially averaged; see toptune backbones describe) | fne (full-network embedding)"),
}
SHIFT_PARAMS = {
    "shift": Param("str", "none", "covariate shift: awgn (Gaussian pixel noise), blur (Gaussian blur) or "
                   "embedding (a fixed offset added to the features; top-tuning only)", choices=SHIFT_KINDS),
    "shift_level": Param("float", 0.0, "shift strength: noise σ on [0,1] pixels, blur σ in input pixels, or "
                         "the offset's L2 norm", min=0.0),
    "shift_on": Param("str", "test", "which split is shifted", choices=SHIFT_SPLITS),
    "shift_seed": Param("int", 0, "seed of the noise and of the offset's direction", min=0),
}
SELECT_PARAMS = {
    "select": Param("str", None, "fine-tune on a subset of train chosen by this rule (unset: all of it)",
                    choices=SELECT_RULES),
    "fraction": Param("float", 0.25, "size of the selected subset, as a fraction of the training images",
                      min=0.001, max=1.0),
    "select_every": Param("int", None, "choose the subset again every k epochs with the network being "
                          "fine-tuned (unset: once, before training)", min=1),
}


def check(method: str, run: dict) -> None:
    """Raise ParamError for combinations the schemas allow but that cannot run."""
    mode = run.get("feature_mode")
    if mode is not None:
        from .feature_modes import parse

        parse(mode)
    if run.get("shift") == "embedding" and method != "top-tune":
        raise ParamError("shift=embedding offsets extracted features, so it needs --method top-tune; "
                         "use awgn or blur to shift the images of a fine-tuning run")
    if run.get("shift") == "awgn" and run.get("shift_level", 0) > 1:
        raise ParamError(f"shift_level for awgn is a noise σ on [0,1] pixels: at most 1, got {run['shift_level']:g}")
    if run.get("select_every") is not None and not run.get("select"):
        raise ParamError("select_every needs a selection rule: set select=random|entropy-high|entropy-low|error")
