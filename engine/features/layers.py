"""Intermediate outputs of any ``torch.nn.Module``, read with forward hooks and pooled to vectors."""

from __future__ import annotations

import torch

from ..errors import ParamError


def spatial_mean(t: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> mean over H, W; (B, N, C) tokens -> mean over N; (B, C) unchanged.

    4-D outputs are read as NCHW, the layout of timm's CNN stages.
    """
    t = t.float()
    if t.dim() == 4:
        return t.mean((2, 3))
    if t.dim() == 3:
        return t.mean(1)
    return t.flatten(1)


class _Enough(Exception):
    """Raised by a hook once every wanted output is in, to skip the rest of the forward pass."""


class LayerExtractor(torch.nn.Module):
    """Pooled outputs of named submodules of ``body``, concatenated in the order given, then ``body``'s
    own output when ``with_output``. Without it, the forward pass stops after the last wanted layer."""

    def __init__(self, body: torch.nn.Module, layers: list[str], with_output: bool):
        super().__init__()
        self.body, self.layers, self.with_output = body, list(layers), with_output
        # Stopping the forward pass by an exception saves time, but a traced export must see a plain pass.
        self.stop_early = True
        modules = dict(body.named_modules())
        missing = [n for n in self.layers if n not in modules]
        if missing:
            raise ParamError(f"the backbone has no layer '{missing[0]}' (toptune backbones describe NAME lists them)")
        self._seen: dict = {}
        for layer in self.layers:
            modules[layer].register_forward_hook(self._hook(layer))

    def _hook(self, layer: str):
        def hook(_module, _inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            self._seen.setdefault(layer, spatial_mean(output))  # a module called twice counts once, first
            if self.stop_early and not self.with_output and len(self._seen) == len(self.layers):
                raise _Enough

        return hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._seen = {}
        try:
            out = self.body(x)
        except _Enough:
            out = None
        silent = [n for n in self.layers if n not in self._seen]
        if silent:
            raise ParamError(f"layer '{silent[0]}' produced no output in the forward pass")
        parts = [self._seen[n] for n in self.layers]
        if self.with_output:
            parts.append(out.float().flatten(1))
        return torch.cat(parts, 1)
