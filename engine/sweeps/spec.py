"""Sweep specifications: a grid of runs from a TOML/YAML file or CLI flags, expanded to cells.

    datasets = ["digits"]
    backbones = ["efficientnet_lite0", "efficientnet_lite1"]
    methods = ["top-tune", "fine-tune"]
    classifiers = ["kernel", "ridge"]          # used by top-tune cells only
    seeds = 3                                  # or a list, e.g. [0, 1, 2]
    [params]                                   # every cell; a list makes a grid axis
    max_train = 500
    "classifier.M" = [200, 800]                # params of a plugin the cell lacks are left out
    [method_params.fine-tune]                  # per method
    epochs = 3

A cell is one RunSpec; its key is a digest of that spec, and the sweep id a digest of the whole grid,
so running the same spec again finds the cells it already finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParamError, ToptuneError
from ..methods import METHODS, get_method
from ..params import parse_assignments
from ..spec import RunSpec, schemas

# The study's grid (Alfano et al.): the datasets torchvision can download, top-tuning with each classifier
# of the ablation and fine-tuning, 3 seeds; backbones are the ones whose weights ship offline.
PAPER_PRESET = {
    "name": "paper",
    "datasets": ["cifar10", "cifar100", "dtd", "eurosat", "fgvc_aircraft", "flowers102", "oxford_pets",
                 "stanford_cars", "caltech101", "food101"],
    "backbones": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
    "methods": ["top-tune", "fine-tune"],
    "classifiers": ["kernel", "ridge", "logistic", "fc-head"],
    "seeds": 3,
}

_FIELDS = {"name", "datasets", "backbones", "methods", "classifiers", "seeds", "params", "method_params"}


def digest(obj: Any) -> str:
    """A short stable id of plain data (a cell's spec, a grid)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _as_list(value: Any, what: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ParamError(f"sweep: '{what}' is empty")
    return values


@dataclass(frozen=True)
class Cell:
    key: str
    spec: RunSpec


@dataclass
class SweepSpec:
    datasets: list[str]
    backbones: list[str]
    methods: list[str] = field(default_factory=lambda: ["top-tune"])
    classifiers: list[str] = field(default_factory=lambda: ["kernel"])
    seeds: list[int] = field(default_factory=lambda: [0])
    params: dict = field(default_factory=dict)
    method_params: dict = field(default_factory=dict)
    name: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        unknown = set(data) - _FIELDS
        if unknown:
            raise ParamError(f"sweep spec: unknown field(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(_FIELDS))})")
        for required in ("datasets", "backbones"):
            if required not in data:
                raise ParamError(f"sweep spec: '{required}' is required")
        seeds = data.get("seeds", 1)
        seeds = list(range(seeds)) if isinstance(seeds, int) else _as_list(seeds, "seeds")
        spec = cls(datasets=_as_list(data["datasets"], "datasets"), backbones=_as_list(data["backbones"], "backbones"),
                   methods=_as_list(data.get("methods", ["top-tune"]), "methods"),
                   classifiers=_as_list(data.get("classifiers", ["kernel"]), "classifiers"),
                   seeds=[int(s) for s in seeds], params=dict(data.get("params", {})),
                   method_params=dict(data.get("method_params", {})), name=str(data.get("name", "")))
        for method in spec.methods + list(spec.method_params):
            if method not in METHODS:
                raise ParamError(f"sweep spec: unknown method '{method}' (available: {', '.join(METHODS)})")
        return spec

    @classmethod
    def from_text(cls, text: str, fmt: str = "toml", source: str = "the sweep spec") -> SweepSpec:
        """A spec from TOML or YAML text (``fmt``); ``source`` names it in errors (a file, a form)."""
        try:
            if fmt == "yaml":
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = tomllib.loads(text)
        except Exception as exc:
            raise ParamError(f"cannot parse {source}: {exc}") from None
        if not isinstance(data, dict):
            raise ParamError(f"{source} must be a mapping of fields (datasets, backbones, …)")
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> SweepSpec:
        path = Path(path)
        if not path.is_file():
            raise ParamError(f"sweep spec file not found: {path}")
        fmt = "yaml" if path.suffix in (".yaml", ".yml") else "toml"
        return cls.from_text(path.read_text(), fmt, f"sweep spec {path}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(_FIELDS)}

    @property
    def sweep_id(self) -> str:
        grid = self.to_dict()
        grid.pop("name")
        return digest(grid)

    def cells(self) -> list[Cell]:
        """Every run of the grid, in a stable order, each with only the params that apply to it."""
        out, used = [], set()
        for dataset, backbone, method in itertools.product(self.datasets, self.backbones, self.methods):
            classifiers = self.classifiers if get_method(method).uses_classifier else [None]
            params = {**self.params, **self.method_params.get(method, {})}
            for classifier in classifiers:
                keys = _applicable(params, RunSpec(method, backbone, dataset, classifier))
                used |= keys
                combos = {json.dumps(c, sort_keys=True, default=str): c
                          for c in _grid({k: v for k, v in params.items() if k in keys})}
                for combo, seed in itertools.product(combos.values(), self.seeds):
                    spec = RunSpec(method, backbone, dataset, classifier, {**_defaults(method, params), **combo}, seed)
                    out.append(Cell(digest(spec.to_dict()), spec))
        unused = set(self.params) - used
        for method, extra in self.method_params.items():
            unused |= {f"{method}: {k}" for k in set(extra) - used}
        if unused:
            raise ParamError(f"sweep spec: parameter(s) {', '.join(sorted(unused))} apply to no cell of the grid")
        return out


def _defaults(method: str, params: dict) -> dict:
    """What a sweep changes from a single run's defaults: thousands of fine-tuned networks would fill a disk,
    so a network-training cell keeps its model only when the spec sets ``save_model`` (top-tuned heads are
    small and always kept)."""
    m = get_method(method)
    keys = {k.rpartition(".")[2] for k in params}
    return {"save_model": False} if m.trains_network and "save_model" in m.params and "save_model" not in keys else {}


def grid_params(assignments: list[str] | tuple[str, ...]) -> dict:
    """``key=value`` strings as a sweep's params: a comma list is a grid axis (the CLI's ``--param`` and
    the dashboard's form share this rule); values stay text until each cell's schema coerces them."""
    return {key: [v.strip() for v in value.split(",") if v.strip()] if "," in value else value
            for key, value in parse_assignments(assignments).items()}


def _applicable(params: dict, spec: RunSpec) -> set[str]:
    """Keys of ``params`` that some part of this cell (the method or one of its plugins) declares."""
    try:
        parts = schemas(spec)
    except ToptuneError:
        return set(params)  # unknown plugin or method: the cell fails with that error when it runs
    out = set()
    for key in params:
        ns, dot, name = key.partition(".")
        if (dot and name in parts.get(ns, {})) or (not dot and any(key in s for s in parts.values())):
            out.add(key)
    return out


def _grid(params: dict) -> list[dict]:
    """The cartesian product of list-valued params (scalars are one-point axes)."""
    keys = list(params)
    axes = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
    return [dict(zip(keys, values)) for values in itertools.product(*axes)]
