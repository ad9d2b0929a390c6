"""RunSpec: a run as plain data, and its validation against the plugins' parameter schemas.

A run is a function of its spec: the CLI, the dashboard, sweeps and tests all build a RunSpec and hand
it to ``toptune.runner``. Parameters may be given flat (``M=500``, routed to the one plugin that
declares ``M``) or qualified (``classifier.M=500``); resolution fills in every default so the stored
params say exactly what ran.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from . import registry
from .cluster_params import CLUSTER_PARAMS, settle as settle_cluster
from .errors import ParamError
from .params import Param, validate
from .research_params import FEATURE_PARAMS, SELECT_PARAMS, SHIFT_PARAMS, check as check_research

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_DATASET = "digits"
DEFAULT_CLASSIFIER = "kernel"
NAMESPACES = ("run", "backbone", "dataset", "classifier")

# Parameters of the method itself (not of a plugin), per method.
_COMMON = {
    "device": Param("str", "auto", "where the work runs", choices=("auto", "cpu", "cuda")),
    "batch_size": Param("int", 32, "images per batch", min=1, max=4096),
    "num_workers": Param("int", 0, "DataLoader worker processes decoding images", min=0, max=64),
    "max_train": Param("int", None, "use a fixed stratified subset of at most this many training images", min=2),
    "max_test": Param("int", None, "use a fixed stratified subset of at most this many test images", min=1),
    "image_size": Param("int", None, "input size in pixels instead of the backbone's (e.g. a CPU preset)",
                        min=16, max=1024),
    "cpu_watts_per_core": Param("float", None, "CPU power per busy core for the energy estimate "
                                "(default: codecarbon's figure for this CPU)", min=0.0),
    "carbon_intensity": Param("float", 475.0, "grid carbon intensity in gCO2e/kWh for the CO2 estimate "
                              "(default: world average)", min=0.0),
}
METHOD_PARAMS: dict[str, dict[str, Param]] = {
    "top-tune": {
        **_COMMON,
        "cache": Param("bool", True, "reuse and store extracted features in the feature cache"),
        **FEATURE_PARAMS, **SHIFT_PARAMS,
    },
    "fine-tune": {
        **_COMMON,
        "epochs": Param("int", 15, "training epochs (at most, with early stopping)", min=1, max=1000),
        "optimizer": Param("str", "adamw", "optimiser", choices=("adamw", "sgd")),
        "lr": Param("float", 3e-4, "peak learning rate (reached after warm-up)", min=1e-8, max=10.0),
        "weight_decay": Param("float", 0.05, "weight decay", min=0.0, max=1.0),
        "momentum": Param("float", 0.9, "SGD momentum", min=0.0, max=1.0),
        "warmup_epochs": Param("float", 1.0, "linear warm-up length before the cosine decay, in epochs",
                               min=0.0),
        "label_smoothing": Param("float", 0.1, "label smoothing of the cross-entropy", min=0.0, max=0.9),
        "freeze_until": Param("str", None, "freeze parameters up to and including this module name "
                              "(e.g. blocks.3) for partial fine-tuning"),
        "val_fraction": Param("float", 0.0, "fraction of train carved out (stratified) for validation",
                              min=0.0, max=0.5),
        "patience": Param("int", None, "early stopping: epochs without validation improvement "
                          "(needs val_fraction > 0)", min=1),
        "crop_scale": Param("float", 0.6, "random resized crop: smallest area fraction (1 = no crop)",
                            min=0.05, max=1.0),
        "hflip": Param("bool", True, "random horizontal flip"),
        "rotation": Param("float", 10.0, "random rotation range in degrees (0 = off)", min=0.0, max=180.0),
        "color_jitter": Param("float", 0.2, "brightness/contrast/saturation jitter strength (0 = off)",
                              min=0.0, max=1.0),
        **SHIFT_PARAMS, **SELECT_PARAMS,
    },
    # Unsupervised: no classifier; labels only score the clusters.
    "cluster": {**_COMMON, **CLUSTER_PARAMS},
}
# Methods that train a classifier plugin on frozen features; the others train the network itself.
FEATURE_METHODS = {"top-tune"}


@dataclass(frozen=True)
class RunSpec:
    method: str = "top-tune"
    backbone: str = DEFAULT_BACKBONE
    dataset: str = DEFAULT_DATASET
    classifier: str | None = DEFAULT_CLASSIFIER
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["params"] = dict(self.params)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSpec":
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ParamError(f"unknown run spec field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class ResolvedSpec:
    """A validated spec: plugin names checked, every parameter present, grouped by namespace."""

    spec: RunSpec
    params: dict[str, dict[str, Any]]

    @property
    def method(self) -> str:
        return self.spec.method


def _schemas(spec: RunSpec) -> dict[str, dict[str, Param]]:
    if spec.method not in METHOD_PARAMS:
        raise ParamError(f"unknown method '{spec.method}' (available: {', '.join(METHOD_PARAMS)})")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or spec.seed < 0:
        raise ParamError(f"seed must be a non-negative integer, got {spec.seed!r}")
    if spec.method in FEATURE_METHODS and not spec.classifier:
        raise ParamError(f"method '{spec.method}' needs a classifier (--classifier)")
    schemas = {"run": METHOD_PARAMS[spec.method]}
    for kind in ("backbone", "dataset", "classifier"):
        name = getattr(spec, kind)
        if name and (kind != "classifier" or spec.method in FEATURE_METHODS):
            schemas[kind] = registry.load(kind, name).params
    return schemas


def route_params(params: Mapping[str, Any], schemas: dict[str, dict[str, Param]]) -> dict[str, dict[str, Any]]:
    """Place each ``key`` / ``namespace.key`` under its namespace."""
    routed: dict[str, dict[str, Any]] = {ns: {} for ns in schemas}
    for key, value in params.items():
        if isinstance(value, Mapping) and key in NAMESPACES:  # already grouped, e.g. from a stored spec
            for sub_key, sub_value in value.items():
                routed.setdefault(key, {})[sub_key] = sub_value
            continue
        ns, dot, name = key.partition(".")
        if dot:
            if ns not in NAMESPACES:
                raise ParamError(f"unknown parameter namespace '{ns}' in '{key}' (use one of {', '.join(NAMESPACES)})")
            if ns not in schemas:
                raise ParamError(f"parameter '{key}' given but this run has no {ns}")
            routed[ns][name] = value
            continue
        owners = [n for n, schema in schemas.items() if key in schema]
        if not owners:
            known = ", ".join(f"{n}.{k}" for n, s in schemas.items() for k in s)
            raise ParamError(f"unknown parameter '{key}' (known: {known})")
        if "run" in owners:  # the run's own parameters win; plugins' device/seed follow them
            owners = ["run"]
        if len(owners) > 1:
            raise ParamError(f"parameter '{key}' is ambiguous: write {' or '.join(f'{o}.{key}' for o in owners)}")
        routed[owners[0]][key] = value
    return routed


def resolve(spec: RunSpec) -> ResolvedSpec:
    """Check plugin names and parameters before anything runs; raises ParamError/PluginError."""
    if spec.method not in FEATURE_METHODS and spec.classifier:
        spec = replace(spec, classifier=None)  # fine-tuning trains its own linear head
    schemas = _schemas(spec)
    routed = route_params(spec.params, schemas)
    params = {"run": validate(schemas["run"], routed["run"], f"{spec.method}")}
    for kind in ("backbone", "dataset", "classifier"):
        if kind in schemas:
            params[kind] = registry.resolve_params(kind, getattr(spec, kind), routed.get(kind, {}))
    run = params["run"]
    if spec.method == "fine-tune" and run["patience"] is not None and run["val_fraction"] <= 0:
        raise ParamError("early stopping (patience) needs a validation split: set val_fraction > 0, e.g. 0.1")
    check_research(spec.method, run)
    # Plugins that take a seed or a device follow the run's unless the user set theirs.
    for kind in ("classifier", "backbone", "dataset"):
        schema = schemas.get(kind, {})
        if "seed" in schema and "seed" not in routed.get(kind, {}):
            params[kind]["seed"] = spec.seed
        if "device" in schema and "device" not in routed.get(kind, {}):
            params[kind]["device"] = params["run"]["device"]
    if spec.method == "cluster":
        spec, params = settle_cluster(spec, params)
    return ResolvedSpec(spec, params)
