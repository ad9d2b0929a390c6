"""The run store: one DuckDB file, one writer path, read-only queries.

Nobody keeps the file open (``locking``): every write is one short transaction under the exclusive side
of a cross-process read-write lock, every read a short read-only connection under its shared side. The
writer migrates the schema first (``schema``); users' SQL runs in a sandbox (``sandbox``). Live progress
never goes through the database.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from ..errors import StoreError
from . import sandbox, schema
from .locking import opened
from .schema import EPOCH_COLUMNS, JSON_COLUMNS, RESULT_COLUMNS, STATUSES, utcnow

DEFAULT_PATH = "toptune.duckdb"


def default_path() -> Path:
    return Path(os.environ.get("TOPTUNE_STORE") or DEFAULT_PATH)


class Store:
    """A DuckDB run store. Cheap to construct; opens the file only for each short operation."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_s: float = 60.0):
        self.path = Path(path) if path else default_path()
        self.busy_timeout_s = busy_timeout_s
        self._checked_version: int | None = None  # schema checked once per Store object

    # ---- connections -------------------------------------------------------------------------
    def _open(self, read_only: bool, config: dict | None = None):
        return opened(self.path, read_only, config, self.busy_timeout_s)

    @contextmanager
    def _writer(self) -> Iterator[Any]:
        """The one writer path: lock, open, migrate, one transaction, close."""
        with self._open(read_only=False) as con:
            schema.migrate(con, self.path)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _ensure_current(self) -> None:
        """Create the file, or migrate it, before a read (readers cannot write)."""
        if self.path.exists():
            with self._open(read_only=True) as con:
                found = schema.version(con)
            schema.check_not_newer(found, self.path)
            if found == schema.SCHEMA_VERSION:
                return
        with self._writer():
            pass

    @contextmanager
    def _reader(self, config: dict | None = None) -> Iterator[Any]:
        if self._checked_version != schema.SCHEMA_VERSION:
            self._ensure_current()
            self._checked_version = schema.SCHEMA_VERSION
        with self._open(read_only=True, config=config) as con:
            yield con

    def schema_version(self) -> int:
        with self._reader() as con:
            return schema.version(con)

    # ---- the writer path ---------------------------------------------------------------------
    def start_run(self, record: dict) -> str:
        """Insert a run as 'running' before any work starts; returns its id."""
        run_id = record.get("id") or uuid4().hex[:12]
        row = {
            "id": run_id, "created_at": utcnow(), "status": "running", "host": socket.gethostname(),
            "pid": os.getpid(), "toptune_version": _version_string(), **record,
        }
        row["id"] = run_id
        for key in ("params", "info", "spec"):
            if key in row and not isinstance(row[key], str):
                row[key] = json.dumps(row[key], sort_keys=True, default=str)
        cols = list(row)
        with self._writer() as con:
            self._reap_stale(con)
            con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [row[c] for c in cols])
        return run_id

    def finish_run(self, run_id: str, result: dict, y_true=None, y_pred=None, samples=None,
                   epochs: list[dict] | None = None) -> None:
        """Record a finished run's results, test predictions and epoch curves in one transaction."""
        values = {k: result[k] for k in RESULT_COLUMNS if k in result}
        values.setdefault("finished_at", utcnow())
        for key in ("params", "info", "metrics"):
            if key in values and not isinstance(values[key], str):
                values[key] = json.dumps(values[key], sort_keys=True, default=str)
        with self._writer() as con:
            self._set(con, run_id, status="finished", **values)
            if y_true is not None:
                samples = list(range(len(y_true))) if samples is None else [int(s) for s in samples]
                con.execute("INSERT INTO predictions SELECT ?, unnest(?), unnest(?), unnest(?)",
                            [run_id, samples, [int(v) for v in y_true], [int(v) for v in y_pred]])
            if epochs:
                con.executemany(
                    f"INSERT INTO epochs (run_id, {', '.join(EPOCH_COLUMNS)}) VALUES (?{', ?' * len(EPOCH_COLUMNS)})",
                    [[run_id, *(e.get(c) for c in EPOCH_COLUMNS)] for e in epochs])

    def fail_run(self, run_id: str, error: str) -> None:
        with self._writer() as con:
            self._set(con, run_id, status="failed", error=error, finished_at=utcnow())

    def interrupt_run(self, run_id: str, reason: str = "interrupted by the user") -> None:
        with self._writer() as con:
            self._set(con, run_id, status="interrupted", error=reason, finished_at=utcnow())

    @staticmethod
    def _set(con, run_id: str, **values) -> None:
        current = con.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
        if current is None:
            raise StoreError(f"no run with id {run_id}")
        if current[0] != "running":
            raise StoreError(f"run {run_id} is already {current[0]}; only running runs can change status")
        assign = ", ".join(f"{k} = ?" for k in values)
        con.execute(f"UPDATE runs SET {assign} WHERE id = ?", [*values.values(), run_id])

    @staticmethod
    def _stale_ids(rows: list[tuple]) -> list[str]:
        """Running runs of this host whose process is gone (killed hard, machine slept...)."""
        import psutil

        stale = []
        for run_id, pid, created in rows:
            try:
                started = datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
                alive = started.replace(tzinfo=None) <= created
            except (psutil.Error, TypeError, ValueError):
                alive = False
            if not alive:
                stale.append(run_id)
        return stale

    def _reap_stale(self, con) -> int:
        rows = con.execute("SELECT id, pid, created_at FROM runs WHERE status = 'running' AND host = ?",
                           [socket.gethostname()]).fetchall()
        stale = self._stale_ids(rows)
        for run_id in stale:
            self._set(con, run_id, status="interrupted", finished_at=utcnow(),
                      error="the process running it ended without recording a result")
        return len(stale)

    def reap_stale(self) -> int:
        """Mark running runs whose process died as interrupted; returns how many."""
        with self._writer() as con:
            return self._reap_stale(con)

    # ---- reads -------------------------------------------------------------------------------
    def runs(self, limit: int | None = None, status: str | None = None, linked_by: str | None = None,
             **equals) -> list[dict]:
        """Runs, newest first, as dicts (params/info decoded).

        ``equals`` filters on columns (``comparison_id="…"``); ``linked_by="comparison_id"`` keeps runs
        where that column is set.
        """
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        if status is not None:
            equals["status"] = status
        with self._reader() as con:
            columns = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
            unknown = (set(equals) | ({linked_by} if linked_by else set())) - columns
            if unknown:
                raise StoreError(f"unknown runs column(s): {', '.join(sorted(unknown))}")
            where = [f"{c} = ?" for c in equals] + ([f"{linked_by} IS NOT NULL"] if linked_by else [])
            sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
            sql += " ORDER BY created_at DESC" + (f" LIMIT {int(limit)}" if limit else "")
            cur = con.execute(sql, list(equals.values()))
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        here = [(r["id"], r["pid"], r["created_at"]) for r in rows
                if r["status"] == "running" and r["host"] == socket.gethostname()]
        if here and self._stale_ids(here):
            self.reap_stale()
            return self.runs(limit, None, linked_by, **equals)
        return [_decode(r) for r in rows]

    def epochs(self, run_id: str) -> list[dict]:
        """Per-epoch curves of a fine-tuning run, in order."""
        with self._reader() as con:
            cur = con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", [run_id])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def confusion(self, run_id: str) -> list[tuple[int, int, int]]:
        """(true class, predicted class, count) over a run's test predictions."""
        with self._reader() as con:
            return con.execute("SELECT y_true, y_pred, n FROM confusion WHERE run_id = ? ORDER BY y_true, y_pred",
                               [run_id]).fetchall()

    def get_run(self, run_id: str) -> dict:
        with self._reader() as con:
            cur = con.execute("SELECT * FROM runs WHERE id = ?", [run_id])
            row = cur.fetchone()
            if row is None:
                raise StoreError(f"no run with id {run_id} in {self.path}")
            return _decode(dict(zip([d[0] for d in cur.description], row)))

    def query(self, sql: str, timeout_s: float = 30.0, max_rows: int | None = 10_000) -> sandbox.QueryResult:
        """Run one read-only SELECT in a sandbox (no files, no network, no extensions, capped memory)."""
        with self._reader(config=sandbox.SANDBOX) as con:
            return sandbox.run(con, sql, timeout_s, max_rows)


def _decode(row: dict) -> dict:
    for key in JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _version_string() -> str:
    from .. import __version__

    return __version__
