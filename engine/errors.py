"""User-facing errors: each carries one actionable line; the CLI prints it and exits non-zero."""


class ToptuneError(Exception):
    """Base for every error toptune reports to a user without a traceback."""

    exit_code = 2


class PluginError(ToptuneError):
    """A plugin could not be found, imported or validated."""


class UnknownPluginError(PluginError):
    pass


class DuplicatePluginError(PluginError):
    pass


class PluginUnavailableError(PluginError):
    """A plugin's optional dependency is missing; the message says how to install it."""


class ParamError(ToptuneError, ValueError):
    """A parameter has an unknown name or an invalid value.

    Also a ValueError, the error scikit-learn-style callers expect for a bad argument.
    """


class DatasetError(ToptuneError):
    """A dataset is missing, empty or unreadable."""


class StoreError(ToptuneError):
    """The run store cannot be opened, migrated or queried."""


class SQLError(StoreError):
    """A user's SQL query was rejected or failed."""


class ModelError(ToptuneError):
    """A saved model cannot be used: none was saved, its files are damaged, or its backbone changed."""


class SolverError(ToptuneError):
    """A numerical solver failed (e.g. Cholesky even after jitter)."""
