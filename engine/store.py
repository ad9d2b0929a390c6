"""The run store: one DuckDB file, one writer path, read-only queries.

Concurrency: DuckDB lets one process write or many read, and an open fails while the other kind is
held. So nobody keeps the file open: every write is a short transaction taken under an inter-process
file lock (writers queue on it), every read is a short read-only connection, and both retry for a
while when DuckDB reports a lock conflict. Users never see a lock error unless the file stays busy
for ``busy_timeout_s``. Live progress never goes through the database.

Schema changes are numbered migrations applied by the writer; readers of an old file trigger them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from uuid import uuid4

from .errors import SQLError, StoreError

DEFAULT_PATH = "toptune.duckdb"

# Each entry upgrades the schema from version i to i+1; never edit one that has shipped, append.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            status VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            backbone VARCHAR,
            pretrain_source VARCHAR,
            classifier VARCHAR,
            dataset VARCHAR NOT NULL,
            seed INTEGER,
            params JSON,
            device VARCHAR,
            host VARCHAR,
            pid INTEGER,
            accuracy DOUBLE,
            train_time_s DOUBLE,
            extract_time_s DOUBLE,
            fit_time_s DOUBLE,
            predict_time_s DOUBLE,
            peak_memory_mb DOUBLE,
            trained_params BIGINT,
            n_train INTEGER,
            n_test INTEGER,
            n_classes INTEGER,
            feature_dim INTEGER,
            cache_hit BOOLEAN,
            error VARCHAR,
            info JSON,
            spec JSON,
            toptune_version VARCHAR
        )""",
        """CREATE TABLE predictions (
            run_id VARCHAR NOT NULL,
            sample INTEGER NOT NULL,
            y_true INTEGER NOT NULL,
            y_pred INTEGER NOT NULL
        )""",
        """CREATE VIEW confusion AS
            SELECT run_id, y_true, y_pred, count(*) AS n FROM predictions GROUP BY run_id, y_true, y_pred""",
    ],
    [
        # Fine-tuning vs top-tuning comparisons, per-epoch curves, and the energy estimate.
        "ALTER TABLE runs ADD COLUMN comparison_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN energy_kwh DOUBLE",
        "ALTER TABLE runs ADD COLUMN co2_g DOUBLE",
        "ALTER TABLE runs ADD COLUMN energy_source VARCHAR",
        """CREATE TABLE epochs (
            run_id VARCHAR NOT NULL,
            epoch INTEGER NOT NULL,
            train_loss DOUBLE,
            train_accuracy DOUBLE,
            val_accuracy DOUBLE,
            lr DOUBLE,
            time_s DOUBLE
        )""",
    ],
    [
        # Studies (robustness, data selection, clustering, sweeps) link runs; method-specific metrics
        # (purity, NMI, ...) live in one JSON column so new methods need no schema change.
        "ALTER TABLE runs ADD COLUMN study_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN metrics JSON",
    ],
    [
        # Sweeps: the grid's id and each cell's id, so a sweep can resume where it stopped.
        "ALTER TABLE runs ADD COLUMN sweep_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN cell_key VARCHAR",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

STATUSES = ("running", "finished", "failed", "interrupted")
RESULT_COLUMNS = (
    "finished_at", "accuracy", "train_time_s", "extract_time_s", "fit_time_s", "predict_time_s",
    "peak_memory_mb", "trained_params", "n_train", "n_test", "n_classes", "feature_dim", "cache_hit",
    "device", "pretrain_source", "params", "info", "energy_kwh", "co2_g", "energy_source", "metrics",
)
EPOCH_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "lr", "time_s")
SANDBOX = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "memory_limit": "1GB",
    "lock_configuration": True,
}
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


def default_path() -> Path:
    return Path(os.environ.get("TOPTUNE_STORE") or DEFAULT_PATH)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


class _ConfigGate:
    """Connections of one process to one file that can be open together.

    DuckDB keeps one database instance per file per process and refuses a second connection with another
    configuration (the SQL sandbox's, read-only vs read-write) while any is open. Threads of one process
    (the dashboard's pages and fragments) therefore wait here until the open connections share their
    configuration, instead of failing.
    """

    _cond = threading.Condition()
    _open: dict[str, tuple[Any, int]] = {}  # file -> (configuration key, open connections)

    @classmethod
    @contextmanager
    def hold(cls, path: Path, key: Any, timeout_s: float) -> Iterator[None]:
        name = str(path.resolve())
        with cls._cond:
            ready = cls._cond.wait_for(lambda: cls._open.get(name, (key, 0))[0] == key or
                                       cls._open[name][1] == 0, timeout=timeout_s)
            if not ready:
                raise StoreError(f"store {path} is busy: another connection of this process stayed open "
                                 f"for {timeout_s:.0f} s")
            cls._open[name] = (key, cls._open.get(name, (key, 0))[1] + 1)
        try:
            yield
        finally:
            with cls._cond:
                k, count = cls._open[name]
                cls._open[name] = (k, count - 1)
                cls._cond.notify_all()


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False


class Store:
    """A DuckDB run store. Cheap to construct; opens the file only for each short operation."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_s: float = 60.0):
        self.path = Path(path) if path else default_path()
        self.busy_timeout_s = busy_timeout_s
        self._checked_version: int | None = None  # schema checked once per Store object

    # ---- connections -------------------------------------------------------------------------
    def _connect(self, read_only: bool, config: dict | None = None):
        import duckdb

        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config or {})
            except duckdb.IOException as exc:
                if not _is_lock_conflict(exc) or time.monotonic() > deadline:
                    raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    @contextmanager
    def _open(self, read_only: bool, config: dict | None = None) -> Iterator[Any]:
        """A connection under both locks: the in-process configuration gate, then the cross-process one."""
        key = (read_only, tuple(sorted((config or {}).items())))
        with _ConfigGate.hold(self.path, key, self.busy_timeout_s), self._lock("read" if read_only else "write"):
            con = self._connect(read_only=read_only, config=config)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def _lock(self, mode: str) -> Iterator[None]:
        """Our own cross-process read-write lock around every DuckDB open.

        DuckDB's file locks alone are not enough: POSIX record locks belong to the process and vanish
        when any descriptor of the file closes, and a read-only open fails instead of waiting. Readers
        share this lock, writers hold it alone, and both wait up to ``busy_timeout_s``.
        """
        from filelock import ReadWriteLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One instance per operation: threads of one process (the dashboard) then wait for each other too.
        lock = ReadWriteLock(str(self.path) + ".lock", timeout=self.busy_timeout_s, is_singleton=False)
        try:
            with lock.write_lock() if mode == "write" else lock.read_lock():
                yield
        except Timeout:
            raise StoreError(f"store {self.path} is busy: it stayed locked for {self.busy_timeout_s:.0f} s") from None
        finally:
            lock.close()

    @contextmanager
    def _writer(self) -> Iterator[Any]:
        """The one writer path: lock, open, migrate, one transaction, close."""
        with self._open(read_only=False) as con:
            self._migrate(con)
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
                version = self._version(con)
            if version > SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema v{version}, newer than this toptune "
                                 f"(v{SCHEMA_VERSION}); upgrade toptune")
            if version == SCHEMA_VERSION:
                return
        with self._writer():
            pass

    @contextmanager
    def _reader(self, config: dict | None = None) -> Iterator[Any]:
        if self._checked_version != SCHEMA_VERSION:
            self._ensure_current()
            self._checked_version = SCHEMA_VERSION
        with self._open(read_only=True, config=config) as con:
            yield con

    @staticmethod
    def _version(con) -> int:
        has = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'").fetchone()[0]
        if not has:
            return 0
        return con.execute("SELECT coalesce(max(version), 0) FROM schema_info").fetchone()[0]

    def _migrate(self, con) -> None:
        version = self._version(con)
        if version > SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema v{version}, newer than this toptune "
                             f"(v{SCHEMA_VERSION}); upgrade toptune")
        if version == SCHEMA_VERSION:
            return
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_info (version INTEGER, applied_at TIMESTAMP)")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    con.execute(statement)
                con.execute("INSERT INTO schema_info VALUES (?, ?)", [target, utcnow()])
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise StoreError(f"migrating store {self.path} to schema v{SCHEMA_VERSION} failed: {exc}") from exc

    def schema_version(self) -> int:
        with self._reader() as con:
            return self._version(con)

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
                started = datetime.fromtimestamp(psutil.Process(pid).create_time(), timezone.utc)
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

    def query(self, sql: str, timeout_s: float = 30.0, max_rows: int | None = 10_000) -> QueryResult:
        """Run one read-only SELECT in a sandbox (no files, no network, no extensions, capped memory)."""
        import duckdb

        with self._reader(config=SANDBOX) as con:
            statements = _parse(con, sql)
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.start()
            try:
                cur = con.execute(statements[0].query)
                rows = cur.fetchmany(max_rows + 1) if max_rows else cur.fetchall()
                columns = [d[0] for d in cur.description]
            except duckdb.InterruptException:
                raise SQLError(f"query interrupted after the {timeout_s:g} s timeout") from None
            except duckdb.Error as exc:
                raise SQLError(_first_line(exc)) from None
            finally:
                timer.cancel()
        truncated = bool(max_rows) and len(rows) > max_rows
        return QueryResult(columns, rows[:max_rows] if truncated else rows, truncated)


def _decode(row: dict) -> dict:
    for key in ("params", "info", "spec", "metrics"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _parse(con, sql: str):
    import duckdb

    if not sql or not sql.strip():
        raise SQLError("empty query")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SQLError(_first_line(exc)) from None
    if len(statements) != 1:
        raise SQLError(f"one statement per query, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise SQLError(f"only read-only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) are allowed, got {kind}")
    return statements


def _first_line(exc: Exception) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:1] + [ln.strip() for ln in lines[1:] if ln.strip().startswith("LINE")]) or type(exc).__name__


def _version_string() -> str:
    from . import __version__

    return __version__
