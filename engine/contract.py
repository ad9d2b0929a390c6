"""Metadata checks of the plugin contract that go beyond "has the right methods".

``registry.interface_problem`` calls ``class_problem`` when a plugin class is loaded; ``registry.create``
calls ``instance_problem`` on every new plugin object, because a backbone's ``pretrain_source`` and
``preprocessing`` may depend on its parameters (e.g. random init vs. a weights file) and so can only be
checked once it exists. Each function returns one sentence saying what is wrong, or None.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from .errors import ParamError
from .params import Param, validate

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_REQUIRED_PREPROCESSING = ("input_size", "mean", "std")


def class_problem(kind: str, cls: Any) -> str | None:
    """Problems in a plugin class's metadata: parameter defaults, variant and check parameters."""
    schema: dict[str, Param] = cls.params
    owner = f"{kind} '{getattr(cls, '__name__', cls)}'"
    for name, param in schema.items():
        try:
            param.coerce(name, param.default, owner)
        except ParamError as exc:
            return f"the default of parameter '{name}' breaks its own schema: {exc}"
    variant_param = getattr(cls, "variant_param", None)
    if variant_param is not None and variant_param not in schema:
        return f"variant_param '{variant_param}' is not one of its params ({', '.join(schema) or 'none'})"
    return _init_problem(cls, schema) or _check_params_problem(cls, schema, owner)


def _init_problem(cls: Any, schema: dict[str, Param]) -> str | None:
    """The class is created with every parameter as a keyword argument: ``__init__`` must take each one, with
    the schema's default where it sets one, so the defaults a user reads and the ones that run are the same."""
    if not isinstance(cls, type) or cls.__init__ is object.__init__:
        return f"its __init__ takes no parameters but params declares {', '.join(schema)}" if schema else None
    try:
        arguments = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # a C-implemented or otherwise opaque __init__: nothing to compare
        return None
    if any(a.kind is inspect.Parameter.VAR_KEYWORD for a in arguments.values()):
        return None
    for name, param in schema.items():
        argument = arguments.get(name)
        if argument is None or argument.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                     inspect.Parameter.KEYWORD_ONLY):
            return f"parameter '{name}' of params is not a keyword argument of __init__"
        if argument.default is not inspect.Parameter.empty and argument.default != param.default:
            return (f"parameter '{name}' defaults to {param.default!r} in params but to {argument.default!r} in "
                    "__init__; make them the same")
    return None


def _check_params_problem(cls: Any, schema: dict[str, Param], owner: str) -> str | None:
    check_params = getattr(cls, "check_params", {})
    if not isinstance(check_params, dict):
        return "class attribute 'check_params' must be a dict of parameter values"
    try:
        validate(schema, check_params, owner)
    except ParamError as exc:
        return f"class attribute 'check_params' is invalid: {exc}"
    return None


def instance_problem(kind: str, obj: Any) -> str | None:
    """Problems only visible on a created plugin (today: a backbone's data-dependent metadata)."""
    if kind != "backbone":
        return None
    source = getattr(obj, "pretrain_source", None)
    if not isinstance(source, str) or not source:
        return ("attribute 'pretrain_source' must be a non-empty string naming the pre-training data "
                f"(e.g. 'imagenet-1k', or 'none' for random weights), got {source!r}")
    try:
        pre = obj.preprocessing
    except Exception as exc:  # noqa: BLE001 - a property of third-party code may raise anything
        return f"reading 'preprocessing' raised {type(exc).__name__}: {exc}"
    return preprocessing_problem(pre)


def preprocessing_problem(pre: Any) -> str | None:
    """What is wrong with a backbone's ``preprocessing`` dict (see ``protocols.Backbone``), or None."""
    if not isinstance(pre, dict):
        return f"'preprocessing' must be a dict, got {type(pre).__name__}"
    missing = [key for key in _REQUIRED_PREPROCESSING if key not in pre]
    if missing:
        return f"'preprocessing' lacks {', '.join(repr(k) for k in missing)}"
    size = pre["input_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return f"preprocessing 'input_size' must be a positive int, got {size!r}"
    if pre.get("interpolation", "bilinear") not in INTERPOLATIONS:
        return f"preprocessing 'interpolation' must be one of {', '.join(INTERPOLATIONS)}, got {pre['interpolation']!r}"
    crop = pre.get("crop_pct", 1.0)
    if not isinstance(crop, (int, float)) or not 0 < crop <= 1:
        return f"preprocessing 'crop_pct' must be in (0, 1], got {crop!r}"
    for key in ("mean", "std"):
        if not _three_finite(pre[key]):
            return f"preprocessing '{key}' must be 3 finite numbers (one per RGB channel), got {pre[key]!r}"
    if any(v <= 0 for v in pre["std"]):
        return f"preprocessing 'std' must be positive, got {pre['std']!r}"
    return None


def _three_finite(values: Any) -> bool:
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return len(floats) == 3 and all(math.isfinite(v) for v in floats)
