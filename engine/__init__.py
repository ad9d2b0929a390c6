"""toptune: fine-tune or top-tune? Measure it."""

__version__ = "0.1.0"
