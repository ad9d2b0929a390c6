"""Fake installed distributions, written as pip would write them, for plugin tests."""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from toptune import registry
from toptune.params import Param


def write_distribution(site: Path, name: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str] | None = None, version: str = "1.0") -> Path:
    """Write an installed distribution (dist-info + modules) into ``site``, as pip would."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{ep} = {target}" for ep, target in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in (modules or {}).items():
        (site / filename).write_text(textwrap.dedent(source))
    return site


class TinyBackbone:
    """A frozen tiny CNN as a backbone plugin: subclasses name the module class (``net``) and ``digest``."""

    api_version, description, pretrain_source = 1, "a tiny CNN for tests", "none"
    params: ClassVar = {"init_seed": Param("int", 0)}
    preprocessing: ClassVar = {"input_size": 16, "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.5] * 3,
                               "std": [0.5] * 3}
    net: ClassVar[type]
    digest: ClassVar[str]

    def __init__(self, init_seed=0):
        self.init_seed = init_seed

    def build(self):
        import torch

        torch.manual_seed(self.init_seed)
        module = self.net().eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.built(module)
        return module

    def built(self, module) -> None:
        """Called with each module ``build`` returns (tests record them)."""

    def weights_digest(self):
        return f"{self.digest}-{self.init_seed}"


@contextmanager
def registered(**plugins: tuple[str, type]):
    """Register in-process plugins as ``name=(kind, class)`` for the duration of the block."""
    for name, (kind, cls) in plugins.items():
        getattr(registry, f"register_{kind}")(name)(cls)
    try:
        yield
    finally:
        for name, (kind, _) in plugins.items():
            registry.unregister(kind, name)


def tiny_backbones(**nets: type):
    """Register one TinyBackbone per ``name=network class`` (the name is also its weights digest)."""
    return registered(**{name: ("backbone", type(f"Tiny_{name}", (TinyBackbone,), {"net": net, "digest": name}))
                         for name, net in nets.items()})
