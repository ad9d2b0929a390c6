"""Methods: how a resolved run spec becomes a result. One row of ``METHODS`` per method.

``top_tune`` fits a classifier plugin on frozen features, ``fine_tune`` trains the backbone with a new
head, ``cluster`` groups images without labels. A new method is one module defining a ``Method`` and one
line here; ``spec``, the runner, sweeps, the CLI and the dashboard read it from the table.
"""

from __future__ import annotations

from ..errors import ParamError
from .base import COMMON_PARAMS, Method
from .cluster.method import METHOD as CLUSTER
from .fine_tune import METHOD as FINE_TUNE
from .top_tune import METHOD as TOP_TUNE

METHODS: dict[str, Method] = {m.name: m for m in (TOP_TUNE, FINE_TUNE, CLUSTER)}

__all__ = ["COMMON_PARAMS", "METHODS", "Method", "get_method", "method_names"]


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ParamError(f"unknown method '{name}' (available: {', '.join(METHODS)})")
    return METHODS[name]


def method_names(uses_classifier: bool | None = None) -> list[str]:
    """Method names, all or those that do (or do not) train a classifier plugin."""
    return [n for n, m in METHODS.items() if uses_classifier is None or m.uses_classifier == uses_classifier]
