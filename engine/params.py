"""Parameter schemas: every plugin declares its parameters with types, defaults and ranges.

The same schema validates CLI ``key=value`` strings, JSON specs and the dashboard's launch form.
"""

from __future__ import annotations

import json
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

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"Param type must be one of {sorted(_TYPES)}, got {self.type!r}")

    def describe(self) -> dict:
        d = {"type": self.type, "default": self.default, "help": self.help}
        for key in ("min", "max", "choices", "keywords"):
            if getattr(self, key) not in (None, ()):
                d[key] = getattr(self, key)
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
        except (TypeError, ValueError):
            hint = f" or one of {list(self.keywords)}" if self.keywords else ""
            raise ParamError(f"invalid value for {where}: {value!r} (expected {self.type}{hint})") from None
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"invalid value for {where}: {value!r} (choose from {', '.join(map(str, self.choices))})")
        if self.min is not None and value < self.min:
            raise ParamError(f"invalid value for {where}: {value!r} (must be >= {self.min})")
        if self.max is not None and value > self.max:
            raise ParamError(f"invalid value for {where}: {value!r} (must be <= {self.max})")
        return value


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
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
    if type_name == "float":
        if isinstance(value, bool):
            raise TypeError(value)
        out = float(value)
        if out != out:  # NaN never makes sense as a hyper-parameter
            raise ValueError(value)
        return out
    return str(value)


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
