"""A LeNet-5-style CNN with seeded random weights: a backbone with its own preprocessing.

It is not pre-trained (``pretrain_source = 'none'``), so it measures how far random convolutional
features get on small grayscale images. It also shows the parts of the backbone contract that matter
beyond ``build()``: preprocessing that differs from ImageNet's (32 px, mean/std 0.5, grey), and a
weights digest that changes whenever the weights do, so the feature cache never mixes them.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from toptune.params import Param

# ITU-R BT.601 luma: toptune hands every backbone RGB, LeNet wants one channel.
_LUMA = (0.299, 0.587, 0.114)


def _network(activation: str):
    import torch
    from torch import nn

    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]

    class LeNet5Features(nn.Module):
        """(B, 3, 32, 32) normalised RGB -> (B, 120): conv-pool, conv-pool, then a 5x5 conv to 1x1."""

        def __init__(self):
            super().__init__()
            self.register_buffer("luma", torch.tensor(_LUMA).view(1, 3, 1, 1))
            self.body = nn.Sequential(
                nn.Conv2d(1, 6, 5), act(), nn.AvgPool2d(2),
                nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),
                nn.Conv2d(16, 120, 5), act(),
                nn.Flatten(),
            )

        def forward(self, x):
            return self.body((x * self.luma).sum(dim=1, keepdim=True))

    return LeNet5Features()


class LeNet5:
    api_version = 1
    description = "LeNet-5-style CNN, seeded random weights (32 px grayscale, 120-d features; example plugin)"
    params: ClassVar[dict[str, Param]] = {
        "init_seed": Param("int", 0, "seed of the random weights", min=0),
        "activation": Param("str", "tanh", "non-linearity after each convolution", choices=("tanh", "relu")),
    }
    pretrain_source: ClassVar[str] = "none"
    # Features come out of a 5x5 convolution on a 5x5 map, so the input must be exactly 32 px.
    preprocessing: ClassVar[dict] = {"input_size": 32, "interpolation": "bilinear", "crop_pct": 1.0,
                                     "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}

    def __init__(self, init_seed: int = 0, activation: str = "tanh"):
        self.init_seed = init_seed
        self.activation = activation
        self._digest: str | None = None

    def build(self):
        import torch

        # A private RNG stream: building must not shift the seed of whatever runs next.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            model = _network(self.activation)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def weights_digest(self) -> str:
        # Hashing the weights themselves, not the seed, keeps caches apart if torch ever changes its
        # initialisation; the network is small enough to build just for this.
        if self._digest is None:
            h = hashlib.sha256(self.activation.encode())
            for name, tensor in self.build().state_dict().items():
                h.update(name.encode())
                h.update(tensor.contiguous().numpy().tobytes())
            self._digest = "lenet5:" + h.hexdigest()[:16]
        return self._digest
