"""What ``toptune backbones describe NAME`` shows: input size, and each layer usable as a feature mode.

One forward pass of a blank image at the backbone's input size, with hooks on every stage and on the
blocks inside each stage, gives the output shape and the pooled feature size of each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import registry
from ..data import preprocessing
from ..errors import ToptuneError
from .modes import stage_names


@dataclass
class Layer:
    name: str
    kind: str  # "stage" or "block" (a block inside the stage listed before it)
    shape: tuple  # the output's shape for one image, batch axis dropped
    dim: int  # length of its pooled feature vector

    @property
    def mode(self) -> str:
        return f"layer:{self.name}"


@dataclass
class Description:
    backbone: str
    input_size: int
    pooled_dim: int
    layers: list
    note: str = ""

    @property
    def fne_dim(self) -> int:
        stages = [layer.dim for layer in self.layers if layer.kind == "stage"]
        return sum(stages) + self.pooled_dim if stages else 0


def _blocks(body, stage: str) -> list[str]:
    import torch

    module = body.get_submodule(stage)
    if not isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList)):
        return []
    return [f"{stage}.{child}" for child, _ in module.named_children()]


def _recorder(shapes: dict, name: str):
    def hook(_module, _inputs, out):
        out = out[0] if isinstance(out, (tuple, list)) else out
        shapes.setdefault(name, tuple(out.shape[1:]))

    return hook


def _shapes(body, names: list[str], size: int):
    """(output shape of each named module, the body's own output shape) for one blank image."""
    import torch

    shapes = {}
    handles = [body.get_submodule(name).register_forward_hook(_recorder(shapes, name)) for name in names]
    try:
        with torch.inference_mode():
            out = body(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return shapes, tuple(out.shape[1:])


def _pooled_dim(shape: tuple) -> int:
    # Matches layer_extractor.spatial_mean: channels of NCHW maps, width of (tokens, width) outputs.
    if len(shape) == 3:
        return int(shape[0])
    if len(shape) == 2:
        return int(shape[1])
    return int(shape[0]) if shape else 1


def describe(name: str, params: dict | None = None, image_size: int | None = None) -> Description:
    """Create and build the backbone, then measure every stage and block at its input size."""
    backbone = registry.create("backbone", name, **registry.resolve_params("backbone", name, params or {}))
    size = int(preprocessing(backbone, image_size)["input_size"])
    body = backbone.build()
    try:
        stages = stage_names(backbone, body, name)
        note = ""
    except ToptuneError as exc:
        stages, note = [], str(exc)
    kinds = {}
    for stage in stages:
        kinds[stage] = "stage"
        kinds.update({block: "block" for block in _blocks(body, stage)})
    shapes, out = _shapes(body, list(kinds), size)
    layers = [Layer(n, kinds[n], shapes[n], _pooled_dim(shapes[n])) for n in kinds if n in shapes]
    return Description(name, size, _pooled_dim(out), layers, note)
