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
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParamError, ToptuneError
from ..methods import METHODS, get_method
from ..params import parse_assignments, shown
from ..spec import MAX_SEED, RunSpec, schemas

# The study's grid (Alfano et al.): every dataset of its catalogue (toptune.catalogue) that torchvision or the
# Hub serves, top-tuning with each classifier of the ablation and fine-tuning, 3 seeds; backbones are the ones
# whose weights ship offline.
PAPER_PRESET = {
    "name": "paper",
    "datasets": ["cifar10", "cifar100", "flowers102", "oxford_pets", "dtd", "eurosat", "caltech101", "stanford_cars",
                 "fgvc_aircraft", "food101", "hf:AI-Lab-Makerere/beans", "hf:microsoft/cats_vs_dogs",
                 "hf:theophilusijiebor1/chest-xray"],
    "backbones": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
    "methods": ["top-tune", "fine-tune"],
    "classifiers": ["kernel", "ridge", "logistic", "fc-head"],
    "seeds": 3,
}

_FIELDS = {"name", "datasets", "backbones", "methods", "classifiers", "seeds", "params", "method_params", "max_cells"}
# A grid is counted before it is expanded, and refused past this many cells unless its spec (``max_cells``),
# ``toptune sweep --max-cells`` or the Launch page's field raises the cap: a typo such as seeds = 100000000
# must not fill the memory of the process expanding it.
DEFAULT_MAX_CELLS = 10_000


def digest(obj: Any) -> str:
    """A short stable id of plain data (a cell's spec, a grid)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _as_list(value: Any, what: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ParamError(f"sweep: '{what}' is empty")
    return values


def _names(value: Any, what: str) -> list[str]:
    """A list of plugin or method names: non-empty text, each once."""
    names = _as_list(value, what)
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ParamError(f"sweep spec: '{what}' must be names (text), got {shown(bad[0])}")
    return list(dict.fromkeys(n.strip() for n in names))


def _whole(value: Any, what: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]: an integral number, or text of one; anything else is refused."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        number = int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        raise ParamError(f"sweep spec: '{what}' must be a whole number, got {shown(value)}") from None
    if not low <= number <= high:
        raise ParamError(f"sweep spec: '{what}' must be from {low:,} to {high:,}, got {shown(value)}")
    return number


def _seeds(value: Any, max_cells: int) -> list[int]:
    """``seeds = N`` (0..N-1) or a list of distinct seeds; a count past the cap is refused before any list exists."""
    if not isinstance(value, list):
        count = _whole(value, "seeds", 1, MAX_SEED)
        if count > max_cells:
            raise ParamError(too_many(count, max_cells, f"seeds = {count:,} alone", at_least=True))
        return list(range(count))
    if len(value) > max_cells:
        raise ParamError(too_many(len(value), max_cells, f"{len(value):,} seeds alone", at_least=True))
    seeds = [_whole(v, "seeds", 0, MAX_SEED) for v in _as_list(value, "seeds")]
    if len(set(seeds)) != len(seeds):
        raise ParamError("sweep spec: 'seeds' lists a seed twice")
    return seeds


def too_many(count: int, cap: int, why: str = "", at_least: bool = False) -> str:
    because = f" ({why})" if why else ""
    return (f"sweep spec: the grid has {'at least ' if at_least else ''}{count:,} cells{because}, more than the cap "
            f"of {cap:,}; make it smaller or "
            f"raise the cap (toptune sweep --max-cells, max_cells in a spec, or the Launch page's 'Max cells')")


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
    max_cells: int = DEFAULT_MAX_CELLS

    @classmethod
    def from_dict(cls, data: dict, max_cells: int | None = None) -> SweepSpec:
        """A checked spec; ``max_cells`` (e.g. ``--max-cells``) replaces the cap the data sets, if any."""
        if not isinstance(data, dict):
            raise ParamError("a sweep spec must be a mapping of fields (datasets, backbones, …)")
        if max_cells is not None:
            data = {**data, "max_cells": max_cells}
        unknown = set(data) - _FIELDS
        if unknown:
            raise ParamError(f"sweep spec: unknown field(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(_FIELDS))})")
        for required in ("datasets", "backbones"):
            if required not in data:
                raise ParamError(f"sweep spec: '{required}' is required")
        max_cells = _whole(data.get("max_cells", DEFAULT_MAX_CELLS), "max_cells", 1, MAX_SEED)
        for key in ("params", "method_params"):
            if not isinstance(data.get(key, {}), dict):
                raise ParamError(f"sweep spec: '{key}' must be a table of key = value")
        spec = cls(datasets=_names(data["datasets"], "datasets"), backbones=_names(data["backbones"], "backbones"),
                   methods=_names(data.get("methods", ["top-tune"]), "methods"),
                   classifiers=_names(data.get("classifiers", ["kernel"]), "classifiers"),
                   seeds=_seeds(data.get("seeds", 1), max_cells), params=dict(data.get("params", {})),
                   method_params=dict(data.get("method_params", {})), name=str(data.get("name", "")),
                   max_cells=max_cells)
        for method in spec.methods + list(spec.method_params):
            if method not in METHODS:
                raise ParamError(f"sweep spec: unknown method '{method}' (available: {', '.join(METHODS)})")
        for method, extra in spec.method_params.items():
            if not isinstance(extra, dict):
                raise ParamError(f"sweep spec: 'method_params.{method}' must be a table of key = value")
        spec.check_size()
        return spec

    @classmethod
    def from_text(cls, text: str, fmt: str = "toml", source: str = "the sweep spec",
                  max_cells: int | None = None) -> SweepSpec:
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
        return cls.from_dict(data, max_cells)

    @classmethod
    def from_file(cls, path: str | Path, max_cells: int | None = None) -> SweepSpec:
        path = Path(path)
        if not path.is_file():
            raise ParamError(f"sweep spec file not found: {path}")
        fmt = "yaml" if path.suffix in (".yaml", ".yml") else "toml"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ParamError(f"sweep spec {path} is not UTF-8 text; save it as UTF-8 TOML or YAML") from None
        except OSError as exc:
            raise ParamError(f"cannot read sweep spec {path}: {exc.strerror or exc}") from None
        return cls.from_text(text, fmt, f"sweep spec {path}", max_cells)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(_FIELDS)}

    @property
    def sweep_id(self) -> str:
        grid = self.to_dict()
        grid.pop("name")
        grid.pop("max_cells")  # a label and a safety cap: neither changes which runs the grid holds
        return digest(grid)

    def _runs(self) -> Iterator[tuple]:
        """(method, backbone, dataset, classifier, params, applicable keys) of each run before axes and seeds."""
        for dataset, backbone, method in itertools.product(self.datasets, self.backbones, self.methods):
            classifiers = self.classifiers if get_method(method).uses_classifier else [None]
            params = {**self.params, **self.method_params.get(method, {})}
            for classifier in classifiers:
                keys = _applicable(params, RunSpec(method, backbone, dataset, classifier))
                yield method, backbone, dataset, classifier, params, keys

    def count_cells(self, stop_above: int | None = None) -> int:
        """How many cells ``cells()`` makes, counted without making them; past ``stop_above`` it stops early and
        returns a number above ``stop_above`` (a lower bound of the count)."""
        runs = sum(len(self.classifiers) if get_method(m).uses_classifier else 1 for m in self.methods)
        floor = len(self.datasets) * len(self.backbones) * runs * len(self.seeds)
        if stop_above is not None and floor > stop_above:
            return floor  # each (dataset, backbone, method, classifier) makes at least one cell per seed
        total = 0
        for *_, params, keys in self._runs():
            total += math.prod(len(_distinct(params[k])) for k in keys) * len(self.seeds)
            if stop_above is not None and total > stop_above:
                return total
        return total

    def check_size(self) -> int:
        """The number of cells; ParamError when it passes ``max_cells``."""
        count = self.count_cells(stop_above=self.max_cells)
        if count > self.max_cells:
            raise ParamError(too_many(count, self.max_cells, at_least=True))
        return count

    def check_params(self) -> None:
        """ParamError when a parameter of the spec reaches no cell of the grid."""
        used = set().union(*(keys for *_, keys in self._runs()))
        unused = set(self.params) - used
        for method, extra in self.method_params.items():
            unused |= {f"{method}: {k}" for k in set(extra) - used}
        if unused:
            raise ParamError(f"sweep spec: parameter(s) {', '.join(sorted(unused))} apply to no cell of the grid")

    def iter_cells(self) -> Iterator[Cell]:
        """The cells one at a time, in a stable order, each with only the params that apply to it; the grid's size
        and parameters are checked first, so a caller may stop early without the rest being made."""
        self.check_size()
        self.check_params()
        for method, backbone, dataset, classifier, params, keys in self._runs():
            combos = {json.dumps(c, sort_keys=True, default=str): c
                      for c in _grid({k: v for k, v in params.items() if k in keys})}
            for combo, seed in itertools.product(combos.values(), self.seeds):
                spec = RunSpec(method, backbone, dataset, classifier, {**_defaults(method, params), **combo}, seed)
                yield Cell(digest(spec.to_dict()), spec)

    def cells(self) -> list[Cell]:
        """Every run of the grid (see ``iter_cells``)."""
        return list(self.iter_cells())


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


def _distinct(value: Any) -> list:
    """The distinct points of one axis (a scalar is a one-point axis)."""
    values = value if isinstance(value, list) else [value]
    return list({json.dumps(v, sort_keys=True, default=str): v for v in values}.values())


def _grid(params: dict) -> list[dict]:
    """The cartesian product of list-valued params (scalars are one-point axes)."""
    keys = list(params)
    axes = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
    return [dict(zip(keys, values)) for values in itertools.product(*axes)]
