"""The SQL sandbox: one read-only statement on a read-only connection, no files, no network, capped memory.

``toptune sql`` and the dashboard's SQL page both run users' queries through ``run``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..errors import SQLError

SANDBOX = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "memory_limit": "1GB",
    "lock_configuration": True,
}
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False


def run(con, sql: str, timeout_s: float, max_rows: int | None) -> QueryResult:
    """Check ``sql`` is one read-only statement, then run it on ``con`` (opened with ``SANDBOX``)."""
    import duckdb

    statements = parse(con, sql)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cur = con.execute(statements[0].query)
        rows = cur.fetchmany(max_rows + 1) if max_rows else cur.fetchall()
        columns = [d[0] for d in cur.description]
    except duckdb.InterruptException:
        raise SQLError(f"query interrupted after the {timeout_s:g} s timeout") from None
    except duckdb.Error as exc:
        raise SQLError(first_line(exc)) from None
    finally:
        timer.cancel()
    truncated = bool(max_rows) and len(rows) > max_rows
    return QueryResult(columns, rows[:max_rows] if truncated else rows, truncated)


def parse(con, sql: str):
    import duckdb

    if not sql or not sql.strip():
        raise SQLError("empty query")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SQLError(first_line(exc)) from None
    if len(statements) != 1:
        raise SQLError(f"one statement per query, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise SQLError(f"only read-only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) are allowed, got {kind}")
    return statements


def first_line(exc: Exception) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:1] + [ln.strip() for ln in lines[1:] if ln.strip().startswith("LINE")]) or type(exc).__name__
