"""A tiny staged CNN for the research-tool tests: three named stages, so every feature mode applies.

Registered in-process only (subprocesses do not see it). A copy without ``feature_layers`` stands for a
third-party backbone that never heard of feature modes.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from tests.support import plugins
from tests.support.plugins import TinyBackbone

TINY = {"max_train": 120, "max_test": 60, "image_size": 16, "batch_size": 32}
STAGES = ["stem", "blocks.0", "blocks.1"]
STAGE_DIMS = [4, 6, 8]
POOLED_DIM = 8


class StagedNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        self.blocks = torch.nn.Sequential(
            torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, padding=1, stride=2), torch.nn.ReLU()),
            torch.nn.Sequential(torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU()),
        )
        self.num_features = POOLED_DIM
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.blocks(self.stem(x)).mean((2, 3))


class PlainBackbone(TinyBackbone):
    description = "a tiny staged CNN without feature_layers"
    net, digest = StagedNet, "staged"
    modules: ClassVar[list] = []

    def built(self, module) -> None:
        PlainBackbone.modules.append(module)


class StagedBackbone(PlainBackbone):
    description = "a tiny staged CNN for the research-tool tests"

    def feature_layers(self, module):
        assert isinstance(module, StagedNet)  # the engine hands back what build() returned
        return list(STAGES)


STAGED, PLAIN = "staged-cnn", "plain-cnn"


def registered():
    """Both tiny backbones registered under STAGED and PLAIN for the duration."""
    return plugins.registered(**{STAGED: ("backbone", StagedBackbone), PLAIN: ("backbone", PlainBackbone)})


FINE = {"epochs": 1, "lr": 3e-3, "warmup_epochs": 0.5}


def fill_studies(path, cache_dir) -> dict:
    """Two robustness studies (embedding shift, then AWGN with fine-tuning) and one selection study."""
    from toptune.features.cache import FeatureCache
    from toptune.store import Store
    from toptune.studies import robustness as rob
    from toptune.studies import selection as sel

    store, cache = Store(path), FeatureCache(cache_dir)
    with registered():
        older = rob.STUDY.run(rob.plan("digits", STAGED, "embedding", [0.0, 50.0], ["ridge"], shared=TINY,
                                       preset="cpu"), store, cache=cache)
        newer = rob.STUDY.run(rob.plan("digits", STAGED, "awgn", [0.0, 0.1, 0.3], ["ridge", "logistic"],
                                       with_fine_tune=True, shared=TINY, fine=FINE, preset="cpu"), store, cache=cache)
        chosen = sel.STUDY.run(sel.plan("digits", STAGED, [0.25, 0.5], ["entropy-high", "entropy-low"],
                                        shared={**TINY, **FINE}, preset="cpu"), store, cache=cache)
    return {"older": older, "newer": newer, "selection": chosen}
