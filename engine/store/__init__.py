"""The run store: DuckDB file, schema and migrations, locking, the SQL sandbox, artifacts beside it."""

from .sandbox import QueryResult
from .schema import SCHEMA_VERSION
from .store import DEFAULT_PATH, Store, default_path

__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "QueryResult", "Store", "default_path"]
