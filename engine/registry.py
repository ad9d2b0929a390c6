"""Plugin discovery, loading and creation, through entry points.

Discovery reads entry-point metadata only (nothing is imported), loading imports one plugin at a time,
and every failure is attributed to the distribution that registered the plugin, so one broken plugin
never hides the others. Built-in plugins register through toptune's own pyproject exactly like
third-party ones. ``register_backbone`` & co. add plugins in-process (notebooks, tests).

Names follow timm's conventions: ``list_backbones('efficientnet*')`` filters with wildcards and
``create_backbone(name, **params)`` is the one factory. A name ``family:variant`` creates plugin
``family`` with its ``variant_param`` set to ``variant`` (e.g. ``timm:resnet50``).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata as md
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import contract
from . import params as P
from .errors import DuplicatePluginError, PluginError, PluginUnavailableError, ToptuneError, UnknownPluginError
from .protocols import API_VERSION, required_methods

GROUPS = {"backbone": "toptune.backbones", "classifier": "toptune.classifiers", "dataset": "toptune.datasets"}

LOCAL_DIST = "<in-process>"


@dataclass(frozen=True)
class PluginInfo:
    """What discovery knows about a plugin without importing it."""

    kind: str
    name: str
    target: str  # "module:attr", or a repr for in-process plugins
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginStatus:
    info: PluginInfo
    error: str | None  # None when the plugin loads and satisfies its interface
    unavailable: bool = False  # sound, but an optional dependency is missing; ``error`` says how to install it

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "unavailable" if self.unavailable else "error"

    @property
    def reason(self) -> str:
        """The plugin's own words for an unavailable one (e.g. 'falkon not installed: pip install ...')."""
        prefix = " is unavailable: "
        return self.error.split(prefix, 1)[-1] if self.unavailable and self.error else (self.error or "")


_local: dict[str, dict[str, tuple[PluginInfo, type]]] = {kind: {} for kind in GROUPS}
_loaded: dict[tuple[str, str], type] = {}
_discovered: dict[str, dict[str, list[tuple[PluginInfo, Any]]]] | None = None


def _check_kind(kind: str) -> None:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r} (kinds: {', '.join(GROUPS)})")


def refresh() -> None:
    """Forget discovered and loaded plugins (after installing a distribution in a running process)."""
    global _discovered
    _discovered = None
    _loaded.clear()
    importlib.invalidate_caches()


def _discover() -> dict[str, dict[str, list[tuple[PluginInfo, Any]]]]:
    global _discovered
    if _discovered is None:
        found: dict[str, dict[str, list[tuple[PluginInfo, Any]]]] = {kind: {} for kind in GROUPS}
        seen = set()
        for dist in md.distributions():
            dist_name = dist.metadata["Name"] or "unknown"
            for ep in dist.entry_points:
                kind = next((k for k, g in GROUPS.items() if g == ep.group), None)
                # The same distribution can appear twice on sys.path (e.g. an editable install next to
                # a build folder); that is one registration, not a clash.
                if kind is None or (kind, ep.name, dist_name, ep.value) in seen:
                    continue
                seen.add((kind, ep.name, dist_name, ep.value))
                info = PluginInfo(kind, ep.name, ep.value, dist_name, dist.version or "")
                found[kind].setdefault(ep.name, []).append((info, ep))
        _discovered = found
    return _discovered


def _candidates(kind: str, name: str) -> list[tuple[PluginInfo, Any]]:
    found = list(_discover()[kind].get(name, []))
    if name in _local[kind]:
        found.append(_local[kind][name])
    return found


def discover(kind: str | None = None) -> list[PluginInfo]:
    """Every registered plugin (of one kind, or all), sorted, without importing any of them."""
    kinds = [kind] if kind else list(GROUPS)
    out = []
    for k in kinds:
        _check_kind(k)
        names = set(_discover()[k]) | set(_local[k])
        for name in names:
            out.extend(info for info, _ in _candidates(k, name))
    return sorted(out, key=lambda i: (list(GROUPS).index(i.kind), i.name, i.distribution))


def list_plugins(kind: str, pattern: str = "*") -> list[str]:
    """Names of plugins of ``kind`` matching a shell-style wildcard, e.g. ``list_plugins('backbone', 'eff*')``."""
    _check_kind(kind)
    names = set(_discover()[kind]) | set(_local[kind])
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def list_backbones(pattern: str = "*") -> list[str]:
    return list_plugins("backbone", pattern)


def list_classifiers(pattern: str = "*") -> list[str]:
    return list_plugins("classifier", pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return list_plugins("dataset", pattern)


def split_name(name: str) -> tuple[str, str | None]:
    family, sep, variant = name.partition(":")
    return family, (variant if sep else None)


def info(kind: str, name: str) -> PluginInfo:
    """The one registration behind ``name``; raises for unknown or duplicate names."""
    _check_kind(kind)
    found = _candidates(kind, name)
    if not found:
        known = list_plugins(kind)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownPluginError(f"unknown {kind} '{name}'{hint} (available: {', '.join(known) or 'none'})")
    if len(found) > 1:
        dists = " and ".join(f"'{i.distribution}' ({i.target})" for i, _ in found)
        raise DuplicatePluginError(
            f"{kind} name '{name}' is registered by both {dists}; uninstall one of them or rename the plugin"
        )
    return found[0][0]


def load(kind: str, name: str) -> type:
    """Import and validate one plugin class. Errors name the plugin and its distribution."""
    family, _ = split_name(name)
    key = (kind, family)
    if key in _loaded:
        return _loaded[key]
    plugin_info = info(kind, family)
    local = _local[kind].get(family)
    if local is not None and local[0] == plugin_info:
        cls = local[1]
    else:
        (_, ep), = [c for c in _candidates(kind, family) if c[0] == plugin_info]
        try:
            cls = ep.load()
        except (Exception, SystemExit) as exc:  # any import-time failure of third-party code, sys.exit too
            raise PluginError(
                f"{kind} '{family}' from distribution '{plugin_info.distribution}' failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    try:
        problem = interface_problem(kind, cls)
    except Exception as exc:  # metadata that breaks the checks themselves (e.g. a str param with a numeric min)
        problem = f"its metadata could not be checked: {type(exc).__name__}: {exc}"
    if problem:
        raise PluginError(
            f"{kind} '{family}' from distribution '{plugin_info.distribution}' does not satisfy the "
            f"{kind} interface: {problem}"
        )
    # A plugin whose optional dependency is missing says so (and how to install it) in ``unavailable``.
    missing = getattr(cls, "unavailable", None)
    if missing:
        raise PluginUnavailableError(
            f"{kind} '{family}' from distribution '{plugin_info.distribution}' is unavailable: {missing}")
    _loaded[key] = cls
    return cls


def interface_problem(kind: str, cls: Any) -> str | None:
    """Why ``cls`` is not a valid plugin of ``kind``, or None."""
    if not callable(cls):
        return f"entry point resolves to {type(cls).__name__}, not a class or factory"
    version = getattr(cls, "api_version", None)
    if not isinstance(version, int) or isinstance(version, bool):
        return "missing integer class attribute 'api_version'"
    if version < 1:
        return f"api_version must be >= 1, got {version}"
    if version > API_VERSION:
        return (f"written for plugin API v{version}, but this toptune supports v{API_VERSION}; "
                "upgrade toptune or install an older version of the plugin")
    for method in required_methods(kind):
        if not callable(getattr(cls, method, None)):
            return f"missing method '{method}'"
    schema = getattr(cls, "params", None)
    if not isinstance(schema, dict) or not all(isinstance(p, P.Param) for p in schema.values()):
        return "class attribute 'params' must be a dict of toptune.params.Param"
    if not isinstance(getattr(cls, "description", None), str):
        return "missing string class attribute 'description'"
    return contract.class_problem(kind, cls)


def check(kind: str | None = None) -> list[PluginStatus]:
    """Load every plugin one at a time; report each as ok or with its error, never raising."""
    out = []
    for plugin_info in discover(kind):
        try:
            load(plugin_info.kind, plugin_info.name)
            out.append(PluginStatus(plugin_info, None))
        except PluginUnavailableError as exc:
            out.append(PluginStatus(plugin_info, str(exc), unavailable=True))
        except PluginError as exc:
            out.append(PluginStatus(plugin_info, str(exc)))
    return out


def resolve_params(kind: str, name: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``values`` against the plugin's schema; returns every parameter with defaults filled in."""
    cls = load(kind, name)
    values = dict(values or {})
    family, variant = split_name(name)
    if variant is not None:
        variant_param = getattr(cls, "variant_param", None)
        if not variant_param:
            raise UnknownPluginError(f"{kind} '{family}' takes no variant, so '{name}' is not a valid name")
        values.setdefault(variant_param, variant)
    return P.validate(cls.params, values, f"{kind} '{family}'")


def create(kind: str, name: str, **values: Any) -> Any:
    """The one factory: validate parameters, then instantiate the plugin with them."""
    cls = load(kind, name)
    resolved = resolve_params(kind, name, values)
    try:
        obj = cls(**resolved)
    except ToptuneError:
        raise
    except Exception as exc:
        dist = info(kind, split_name(name)[0]).distribution
        raise PluginError(f"{kind} '{name}' from distribution '{dist}' could not be created: "
                          f"{type(exc).__name__}: {exc}") from exc
    problem = contract.instance_problem(kind, obj)
    if problem:
        dist = info(kind, split_name(name)[0]).distribution
        raise PluginError(f"{kind} '{name}' from distribution '{dist}' does not satisfy the {kind} interface: "
                          f"{problem}")
    return obj


def create_backbone(name: str, **params: Any) -> Any:
    return create("backbone", name, **params)


def create_classifier(name: str, **params: Any) -> Any:
    return create("classifier", name, **params)


def create_dataset(name: str, **params: Any) -> Any:
    return create("dataset", name, **params)


def _register(kind: str, name: str | None) -> Callable[[type], type]:
    def decorator(cls: type) -> type:
        plugin_name = name or cls.__name__.lower()
        problem = interface_problem(kind, cls)
        if problem:
            raise PluginError(f"cannot register {kind} '{plugin_name}': {problem}")
        info_ = PluginInfo(kind, plugin_name, f"{cls.__module__}:{cls.__qualname__}", LOCAL_DIST, "")
        _local[kind][plugin_name] = (info_, cls)
        _loaded.pop((kind, plugin_name), None)
        return cls

    return decorator


def register_backbone(name: str | None = None):
    """Register a backbone class in this process only (entry points are the way to ship one)."""
    return _register("backbone", name)


def register_classifier(name: str | None = None):
    return _register("classifier", name)


def register_dataset(name: str | None = None):
    return _register("dataset", name)


def unregister(kind: str, name: str) -> None:
    _local[kind].pop(name, None)
    _loaded.pop((kind, name), None)
