"""RunSpec: a run as plain data, and its validation against the plugins' parameter schemas.

A run is a function of its spec: the CLI, the dashboard, sweeps and tests all build a RunSpec and hand
it to ``toptune.runner``. Parameters may be given flat (``M=500``, routed to the one plugin that
declares ``M``) or qualified (``classifier.M=500``); resolution fills in every default so the stored
params say exactly what ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import registry
from .errors import ParamError
from .methods import get_method
from .params import Param, confine, shown, validate

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_DATASET = "digits"
DEFAULT_CLASSIFIER = "kernel"
NAMESPACES = ("run", "backbone", "dataset", "classifier")
MAX_SEED = 2**31 - 1  # the store's seed column is a 32-bit INTEGER


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
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
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


def schemas(spec: RunSpec) -> dict[str, dict[str, Param]]:
    """The parameter schema of each part of a run: its method's ("run") and each plugin's it uses."""
    method = get_method(spec.method)
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or not 0 <= spec.seed <= MAX_SEED:
        raise ParamError(f"seed must be an integer from 0 to {MAX_SEED}, got {shown(spec.seed)}")
    if method.uses_classifier and not spec.classifier:
        raise ParamError(f"method '{spec.method}' needs a classifier (--classifier)")
    out = {"run": method.params}
    for kind in ("backbone", "dataset", "classifier"):
        name = getattr(spec, kind)
        if name and (kind != "classifier" or method.uses_classifier):
            out[kind] = registry.load(kind, name).params
    return out


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
    method = get_method(spec.method)
    if not method.uses_classifier and spec.classifier:
        spec = replace(spec, classifier=None)  # e.g. fine-tuning trains its own linear head
    parts = schemas(spec)
    routed = route_params(spec.params, parts)
    params = {"run": validate(parts["run"], routed["run"], f"{spec.method}")}
    for kind in ("backbone", "dataset", "classifier"):
        if kind in parts:
            params[kind] = registry.resolve_params(kind, getattr(spec, kind), routed.get(kind, {}))
    method.check(params["run"])
    # Plugins that take a seed or a device follow the run's unless the user set theirs.
    for kind in ("classifier", "backbone", "dataset"):
        schema = parts.get(kind, {})
        if "seed" in schema and "seed" not in routed.get(kind, {}):
            params[kind]["seed"] = spec.seed
        if "device" in schema and "device" not in routed.get(kind, {}):
            params[kind]["device"] = params["run"]["device"]
    spec, params = method.settle(spec, params)
    confine(params)  # a server's data root (toptune dashboard --data-root), when one is set
    return ResolvedSpec(spec, params)
