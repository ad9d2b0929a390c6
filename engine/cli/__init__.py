"""The ``toptune`` command line (``app``), one module per group of commands."""

from .app import app, main

__all__ = ["app", "main"]
