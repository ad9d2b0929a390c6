"""The SQL sandbox: which statements users may run on the store, checked before anything opens it.

``toptune sql`` and the dashboard's SQL page both go through ``Store.query``: ``check_limits`` and
``check`` here, then ``query_process.run``, which runs the statement in a child process that can be
stopped hard (timeout, memory). The checks fail closed: a statement is allowed only when every part of
it is known to be harmless.

- One statement, of one shape: a query (``SELECT``, ``WITH``, ``VALUES``, ``FROM …``, ``DESCRIBE``,
  ``SUMMARIZE``, ``SHOW TABLES``), or ``EXPLAIN [ANALYZE]`` of one. DuckDB parses it into a tree (the
  same parser the store uses), and the tree is walked:
- every table it names is one of the store's (``TABLES``), two ``information_schema`` views, or a
  ``WITH`` name visible at that point; so no file (the store's own included), no other database, no
  system view (settings, databases and their paths);
- table functions: only ``range``, ``generate_series`` and ``unnest``;
- every function it calls is one of DuckDB's built-ins, less those that read settings, the environment,
  files or logs (``DENIED_FUNCTIONS``); anything unknown is refused.

The connection that runs it is read-only, with external access off, no extensions, no spilling to disk,
and the child process has an OS memory limit; see ``query_process``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from ..errors import SQLError

MEMORY_LIMIT_MB = 1024
SANDBOX = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "memory_limit": f"{MEMORY_LIMIT_MB}MB",
    "temp_directory": "",  # never spill to disk: nothing is written beside the store
    "threads": 2,
    "lock_configuration": True,
}
MAX_TIMEOUT_S = 3600.0
MAX_ROWS = 1_000_000
MAX_SQL_CHARS = 100_000

TABLES = frozenset({"runs", "predictions", "epochs", "confusion", "schema_info"})
INFORMATION_SCHEMA = frozenset({"tables", "columns"})
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
SHOW_SPECIAL = frozenset({'"tables"'})  # SHOW TABLES; not SHOW DATABASES (their paths) nor SHOW ALL TABLES
# Table references that only combine others (checked in turn); any other kind is refused.
COMBINING_REFS = frozenset({"JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT"})
# Built-in functions that would show settings (temp_directory: an absolute path), the environment, files or logs.
DENIED_FUNCTIONS = frozenset({"current_setting", "getenv", "get_block_size", "write_log", "parse_duckdb_log_message",
                              "getvariable", "json_execute_serialized_sql", "query", "query_table"})
DENIED_PREFIXES = ("duckdb_", "pragma_", "read_", "glob", "sniff_", "parquet_", "__internal", "icu_collate")
SPECIAL_FUNCTIONS = frozenset({"unnest"})  # handled by the binder, so not listed by duckdb_functions()
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXPLAIN = re.compile(r"^\s*explain\s+(?:analy[sz]e\s+)?", re.IGNORECASE)
ALLOWED_KINDS = "one read-only query (SELECT, WITH, VALUES, DESCRIBE, SUMMARIZE, SHOW TABLES, EXPLAIN)"


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False


def check_limits(timeout_s, max_rows) -> None:
    """A timeout in (0, 3600] seconds and a row limit from 1 to 1,000,000 (None: no limit, for internal reads)."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) \
            or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise SQLError(f"the timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, "
                       f"got {timeout_s!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int)
                                 or not 1 <= max_rows <= MAX_ROWS):
        raise SQLError(f"the row limit must be a whole number from 1 to {MAX_ROWS:,}, got {max_rows!r}")


def check(sql: str) -> None:
    """Refuse ``sql`` (SQLError, one line saying why) unless it is one statement the sandbox allows."""
    if not isinstance(sql, str) or not sql.strip():
        raise SQLError("empty query")
    if len(sql) > MAX_SQL_CHARS:
        raise SQLError(f"the query is {len(sql):,} characters long; the sandbox takes at most {MAX_SQL_CHARS:,}")
    if "\x00" in sql:
        raise SQLError("the query contains a NUL character")
    with _parser() as con:
        kind = _statement_kind(con, sql)
        query = sql
        if kind == "EXPLAIN":
            match = EXPLAIN.match(sql)
            query = sql[match.end():] if match else ""
            if _statement_kind(con, query) != "SELECT":
                raise SQLError(f"EXPLAIN is allowed only before a query; {ALLOWED_KINDS} per call")
        tree = _tree(con, query)
    _walk(tree, frozenset())


def _statement_kind(con, sql: str) -> str:
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SQLError(first_line(exc)) from None
    if len(statements) != 1:
        raise SQLError(f"one statement per query, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in ("SELECT", "EXPLAIN"):
        raise SQLError(f"only read-only queries are allowed: {ALLOWED_KINDS}; got {kind}")
    return kind


def _tree(con, sql: str) -> dict:
    """The parse tree of one SELECT statement, as DuckDB serialises it."""
    import duckdb

    try:
        found = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    except duckdb.Error as exc:
        raise SQLError(first_line(exc)) from None
    if found.get("error") or len(found.get("statements", [])) != 1:
        why = found.get("error_message") or "it is not one SELECT statement"
        raise SQLError(f"not allowed in the sandbox: {why}")
    return found["statements"][0]["node"]


_local = threading.local()


@contextmanager
def _parser():
    """This thread's private in-memory DuckDB, for parsing only (a connection is not shared across threads)."""
    import duckdb

    if getattr(_local, "con", None) is None:
        _local.con = duckdb.connect(":memory:", config={"enable_external_access": False,
                                                        "autoload_known_extensions": False,
                                                        "autoinstall_known_extensions": False})
    yield _local.con


_functions_lock = threading.Lock()


@lru_cache(maxsize=1)
def _built_in_functions() -> frozenset[str]:
    """DuckDB's own scalar, aggregate, window and macro functions, less the denied ones."""
    with _functions_lock, _parser() as con:
        names = {row[0].lower() for row in con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('scalar', 'aggregate', 'window', 'macro')").fetchall()}
    names |= SPECIAL_FUNCTIONS
    return frozenset(n for n in names if n not in DENIED_FUNCTIONS and not n.startswith(DENIED_PREFIXES))


def allowed_function(name: str) -> bool:
    return name.lower() in _built_in_functions()


def _refuse(what: str) -> None:
    raise SQLError(f"not allowed in the sandbox: {what}; queries may read only the store's tables "
                   f"({', '.join(sorted(TABLES))})")


def _walk(node, ctes: frozenset[str]) -> None:
    """Check every part of a parse tree; ``ctes`` are the WITH names visible here (lower case)."""
    if isinstance(node, list):
        for item in node:
            _walk(item, ctes)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict) and cte_map.get("map"):
        ctes = _walk_ctes(cte_map["map"], ctes)
    for key, value in node.items():
        if key == "cte_map":
            continue
        if key == "function" and node.get("type") == "TABLE_FUNCTION":
            _table_function(value, ctes)
            continue
        _walk(value, ctes)
    if "class" in node:
        _expression(node)
    elif isinstance(node.get("type"), str) and "sample" in node and not node["type"].endswith("_NODE"):
        _table_ref(node, ctes)


def _walk_ctes(entries: list, outer: frozenset[str]) -> frozenset[str]:
    """Each WITH body sees the names before it (and its own, for recursion); the query sees them all."""
    seen = set(outer)
    for entry in entries:
        name = str(entry.get("key", ""))
        if not PLAIN_NAME.match(name) or name.lower().startswith(("duckdb_", "pragma_", "pg_", "sqlite_")):
            _refuse(f"WITH name {name!r} (use letters, digits and _, not a system name)")
        _walk(entry.get("value"), frozenset(seen | {name.lower()}))
        seen.add(name.lower())
    return frozenset(seen)


def _expression(node: dict) -> None:
    name = node.get("function_name")
    if name is None:
        return
    if node.get("catalog") or (node.get("schema") or "main").lower() != "main":
        _refuse(f"the qualified function {node.get('schema')}.{name}")
    if not allowed_function(str(name)):
        _refuse(f"the function {name}()")


def _table_function(node: dict, ctes: frozenset[str]) -> None:
    name = str(node.get("function_name", "")).lower()
    if name not in TABLE_FUNCTIONS or node.get("catalog") or (node.get("schema") or "main").lower() != "main":
        _refuse(f"the table function {node.get('function_name')}()")
    _walk({k: v for k, v in node.items() if k not in ("class", "function_name")}, ctes)


def _table_ref(node: dict, ctes: frozenset[str]) -> None:
    kind = node["type"]
    if kind == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        schema = str(node.get("schema_name") or "").lower()
        catalog = str(node.get("catalog_name") or "")
        if catalog == "" and schema == "" and name.lower() in ctes:
            return
        if catalog == "" and schema in ("", "main") and name.lower() in TABLES:
            return
        if catalog == "" and schema == "information_schema" and name.lower() in INFORMATION_SCHEMA:
            return
        _refuse(f"the table or file {'.'.join(p for p in (catalog, schema, name) if p)!r}")
    elif kind == "SHOW_REF":
        if node.get("query") is None and node.get("table_name") not in SHOW_SPECIAL:
            _refuse(f"SHOW {str(node.get('table_name', '')).strip(chr(34))}")
    elif kind not in COMBINING_REFS and kind != "TABLE_FUNCTION":  # table functions: see _table_function
        _refuse(f"a {kind.lower().replace('_', ' ')} reference")


def first_line(exc: Exception) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:1] + [ln.strip() for ln in lines[1:] if ln.strip().startswith("LINE")]) or type(exc).__name__
