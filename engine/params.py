"""Parameter schemas: every plugin declares its parameters with types, defaults and ranges.

The same schema validates CLI ``key=value`` strings, JSON specs and the dashboard's launch form.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ParamError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter: ``type`` is 'int', 'float', 'str' or 'bool'; ``default=None`` means optional/automatic."""

    type: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    # Strings such as "auto" accepted in place of a number.
    keywords: tuple = field(default=())
    # No default the plugin could use (an image folder's path): forms mark it and ask for it.
    required: bool = False

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"Param type must be one of {sorted(_TYPES)}, got {self.type!r}")

    def describe(self) -> dict:
        d = {"type": self.type, "default": self.default, "help": self.help}
        for key in ("min", "max", "choices", "keywords"):
            if getattr(self, key) not in (None, ()):
                d[key] = getattr(self, key)
        if self.required:
            d["required"] = True
        return d

    def coerce(self, name: str, value: Any, owner: str) -> Any:
        """Convert ``value`` (possibly a CLI string) to this type and check its range."""
        where = f"{owner} parameter '{name}'"
        if value is None:
            return None
        if isinstance(value, str) and value in self.keywords:
            return value
        try:
            value = _convert(self.type, value)
        except (TypeError, ValueError, OverflowError) as exc:
            hint = f" or one of {list(self.keywords)}" if self.keywords else ""
            why = (str(exc) if isinstance(exc, _Invalid) else "out of range" if isinstance(exc, OverflowError)
                   else f"expected {self.type}{hint}")
            raise ParamError(f"invalid value for {where}: {shown(value)} ({why})") from None
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"invalid value for {where}: {shown(value)} "
                             f"(choose from {', '.join(map(str, self.choices))})")
        if self.min is not None and value < self.min:
            raise ParamError(f"invalid value for {where}: {shown(value)} (must be >= {self.min})")
        if self.max is not None and value > self.max:
            raise ParamError(f"invalid value for {where}: {shown(value)} (must be <= {self.max})")
        return value


# Integers are stored and handed to NumPy and PyTorch as 64-bit values.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class _Invalid(ValueError):
    """A value of the right type that no parameter accepts; its text says why."""


def shown(value: Any, limit: int = 60) -> str:
    """A value as quoted in an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _convert(type_name: str, value: Any) -> Any:
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if type_name == "int":
        return _integer(value)
    if type_name == "float":
        if isinstance(value, bool):
            raise TypeError(value)
        out = float(value)
        if not math.isfinite(out):  # inf, nan, 1e400: never a sensible hyper-parameter
            raise _Invalid("expected a finite number")
        return out
    return str(value)


def _integer(value: Any) -> int:
    """An int from an int, an integral float or text ("12", "1e3"); non-integral or beyond 64 bits is refused."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            value = float(text)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid("expected a finite integer")
        if not value.is_integer():
            raise ValueError(value)  # "expected int", as for any other text
    out = int(value)
    if not INT_MIN <= out <= INT_MAX:
        raise _Invalid(f"out of range: integers lie between {INT_MIN} and {INT_MAX}")
    return out


def validate(schema: dict[str, Param], values: dict[str, Any], owner: str) -> dict[str, Any]:
    """Return every parameter of ``schema``: given values coerced and checked, others at their default."""
    unknown = sorted(set(values) - set(schema))
    if unknown:
        known = ", ".join(sorted(schema)) or "none"
        raise ParamError(f"unknown {owner} parameter '{unknown[0]}' (known: {known})")
    out = {}
    for name, param in schema.items():
        out[name] = param.coerce(name, values[name], owner) if name in values else param.default
    return out


# Where a server confines what jobs may read (``toptune dashboard --data-root``); unset, nothing is confined.
DATA_ROOT_ENV = "TOPTUNE_DASHBOARD_DATA_ROOT"
PATH_NAMES = ("path", "root", "weights")  # plugin parameters holding a file or folder to read
PATH_SUFFIXES = ("_path", "_dir", "_root", "_file", "_folder")
NOT_PATHS = ("timm", "none", "bundled", "auto")  # keywords some path parameters take instead


def confine(params: dict[str, dict[str, Any]], root: str | os.PathLike | None = None) -> None:
    """Refuse (ParamError) a run whose plugins would read a file or folder outside ``root`` (by default
    $TOPTUNE_DASHBOARD_DATA_ROOT; no root, no check). ``params`` are a resolved spec's, by namespace.

    Paths are compared once resolved (links followed), so ``root/link-to-/etc`` is outside too; a folder walk
    that follows links out of the folder (``follow_links``) is refused; defaults (None) are the server's own.
    """
    root = root or os.environ.get(DATA_ROOT_ENV)
    if not root:
        return
    real_root = os.path.realpath(os.path.expanduser(root))
    for namespace in ("dataset", "backbone", "classifier"):
        for key, value in (params.get(namespace) or {}).items():
            where = f"{namespace}.{key}"
            if key == "follow_links" and value is True:
                raise ParamError(f"{where}=true is not allowed here: this dashboard reads only inside {root}")
            if not isinstance(value, str) or value in NOT_PATHS or not value.strip():
                continue
            if key in PATH_NAMES or key.endswith(PATH_SUFFIXES):
                real = os.path.realpath(os.path.expanduser(value))
                if os.path.commonpath([real, real_root]) != real_root:
                    raise ParamError(f"{where}={shown(value)} is outside the data folder this dashboard may read "
                                     f"({root}); use a path inside it")


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse CLI ``key=value`` strings; values stay strings until a schema coerces them."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"--param expects key=value, got {item!r}")
        out[key] = value.strip()
    return out


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
