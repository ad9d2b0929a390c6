"""Any timm model as a frozen feature extractor (globally pooled features of the last stage)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from toptune.errors import PluginError
from toptune.params import Param

_digest_cache: dict[tuple, str] = {}
KEYWORD_WEIGHTS = ("timm", "none", "bundled")  # weights that are not a file path


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, without its Python class name."""
    return " ".join(str(exc).split()) or "unknown error"


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a weights file, memoised on (path, size, mtime) since files are tens of MB."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _digest_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _digest_cache[key] = h.hexdigest()[:16]
    return _digest_cache[key]


def read_state_dict(path: str | os.PathLike) -> dict:
    """Load a state dict from a .safetensors file or a torch checkpoint (bare, or under 'state_dict'/'model')."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PluginError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PluginError(f"cannot read weights file {path}: {one_line(exc)}") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise PluginError(f"weights file {path} holds no state dict")
    return obj


def _tensors(sd: dict) -> list:
    return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


def load_matching(model, state: dict, source: str) -> None:
    """Load ``state`` into ``model`` by key names, or else by order when every tensor shape aligns.

    Pairing by order lets checkpoints from other implementations of the same architecture (e.g.
    EfficientNet-PyTorch's key names) load into timm's modules; a classifier head present on one side
    only is ignored.
    """
    target = dict(_tensors(model.state_dict()))
    given = dict(_tensors(state))
    if set(target) <= set(given):
        model.load_state_dict({k: given[k] for k in target}, strict=False)
        return
    t_items, g_items = list(target.items()), list(given.items())
    if len(g_items) >= len(t_items) and all(
        tv.shape == gv.shape for (_, tv), (_, gv) in zip(t_items, g_items)
    ):
        model.load_state_dict({tk: gv for (tk, _), (_, gv) in zip(t_items, g_items)}, strict=False)
        return
    missing = sorted(set(target) - set(given))
    raise PluginError(
        f"weights from {source} do not fit this model: {len(missing)} of {len(target)} tensors missing "
        f"(e.g. {missing[0]}) and shapes do not align in order"
    )


class TimmBackbone:
    """Builds any timm model by name; use it as ``timm:<model>`` (e.g. ``timm:resnet50``)."""

    api_version = 1
    description = "any timm model by name (timm:<model>), frozen, global-pooled features"
    variant_param = "model"
    params = {
        "model": Param("str", None, "timm model name, e.g. resnet50 (or use the name timm:resnet50)"),
        "weights": Param(
            "str", "timm",
            "'timm' (timm's pretrained download, needs internet), 'none' (random init), or a path to a "
            "state dict / .safetensors file",
        ),
        "pretrain_source": Param("str", None, "pre-training data to record, e.g. imagenet-1k (default: inferred)"),
        "init_seed": Param("int", 0, "seed of the random initialisation when weights=none"),
    }
    # `toptune plugins check timm` must not download: a small model, randomly initialised.
    check_params = {"model": "resnet18", "weights": "none"}

    def __init__(self, model=None, weights="timm", pretrain_source=None, init_seed=0):
        if not model:
            raise PluginError("backbone 'timm' needs a model name: use --backbone timm:<model>, e.g. timm:resnet50")
        self.model_name = model
        self.weights = weights
        self.init_seed = init_seed
        self._check_model_exists()
        self.pretrain_source = pretrain_source or self._default_pretrain_source()

    def check(self) -> None:
        """Cheap checks before a run is recorded (the model name is checked on creation): a weights file exists."""
        if self.weights not in KEYWORD_WEIGHTS and not Path(self.weights).expanduser().is_file():
            raise PluginError(f"weights file not found: {self.weights} (give a state dict or .safetensors file, "
                              "or --weights none)")

    def _check_model_exists(self) -> None:
        import timm

        if not timm.is_model(self.model_name):
            import difflib

            close = difflib.get_close_matches(self.model_name, timm.list_models(), n=3)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise PluginError(f"timm has no model '{self.model_name}'{hint}")

    def _pretrained_cfg(self) -> dict:
        import timm

        cfg = timm.models.get_pretrained_cfg(self.model_name)
        return cfg.to_dict() if cfg is not None else {}

    def _default_pretrain_source(self) -> str:
        if self.weights == "none":
            return "none"
        if self.weights != "timm":
            return "custom"
        tag = self._pretrained_cfg().get("tag") or ""
        for key, source in (("in22k", "imagenet-22k"), ("in12k", "imagenet-12k"), ("laion", "laion"),
                            ("openai", "openai-clip"), ("in1k", "imagenet-1k")):
            if key in tag:
                return source
        return f"timm:{tag}" if tag else "imagenet-1k"

    @property
    def preprocessing(self) -> dict:
        cfg = self._pretrained_cfg()
        size = cfg.get("input_size", (3, 224, 224))
        return {
            "input_size": int(size[-1]),
            "interpolation": cfg.get("interpolation", "bicubic"),
            "crop_pct": float(cfg.get("crop_pct", 0.875)),
            "mean": [float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))],
            "std": [float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))],
        }

    def weights_digest(self) -> str:
        if self.weights == "timm":
            cfg = self._pretrained_cfg()
            return f"timm:{cfg.get('hf_hub_id') or cfg.get('url') or self.model_name}"
        if self.weights == "none":
            return f"random:{self.model_name}:{self.init_seed}"
        return file_digest(self.weights)

    def _create(self, pretrained: bool, num_classes: int | None = None):
        import timm
        import torch

        kwargs = {} if num_classes is None else {"num_classes": num_classes}
        torch.manual_seed(self.init_seed)
        try:
            return timm.create_model(self.model_name, pretrained=pretrained, **kwargs)
        except Exception as exc:
            raise PluginError(
                f"could not build timm model '{self.model_name}' (pretrained={pretrained}): "
                f"{one_line(exc)}; without internet use --weights PATH or --weights none"
            ) from exc

    def feature_layers(self, module) -> list[str]:
        """The stages of ``module`` (as built by ``build``), for feature_mode layer:<name> and fne."""
        return stage_modules(module)

    def build(self):
        """The frozen feature extractor: the network without its classifier head, in eval mode."""
        if self.weights in ("timm", "none"):
            model = self._create(pretrained=self.weights == "timm", num_classes=0)
        else:
            model = self._create(pretrained=False)
            load_matching(model, read_state_dict(self.weights), self.weights)
            model.reset_classifier(0)
        return freeze(model)


def stage_modules(model) -> list[str]:
    """Names of the modules ending each stage, shallow to deep, from timm's ``feature_info``.

    timm lists a stage only where the resolution changes (EfficientNet's blocks.3 and blocks.5 are
    left out), so when every listed module sits in one container, its siblings between the first and
    the last listed are added back: the full-network embedding wants every stage.
    """
    listed = [f["module"] for f in getattr(model, "feature_info", None) or []]
    parents = {name.rpartition(".")[0] for name in listed}
    if len(parents) != 1 or "" in parents:
        return listed
    parent = parents.pop()
    children = [f"{parent}.{child}" for child, _ in model.get_submodule(parent).named_children()]
    if not set(listed) <= set(children):
        return listed
    return children[children.index(listed[0]):children.index(listed[-1]) + 1]


def freeze(model):
    """Eval mode, and no parameter trains: a frozen feature extractor."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
