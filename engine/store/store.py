"""The run store: one DuckDB file, one writer path, read-only queries.

Nobody keeps the file open (``locking``): every write is one short transaction under the exclusive side
of a cross-process read-write lock, every read a short read-only connection under its shared side. The
writer migrates the schema first (``schema``); users' SQL runs in a sandbox (``sandbox``). Live progress
never goes through the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from ..errors import ParamError, StoreError
from . import query_process, sandbox, schema
from .locking import opened
from .queries import housekeeping
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
        self._not_a_folder()
        return opened(self.path, read_only, config, self.busy_timeout_s)

    def _not_a_folder(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a folder; give a file, e.g. {self.path / DEFAULT_PATH}")

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

    def exists(self) -> bool:
        """Whether the store's file exists (reads never create it; a folder at its path is refused)."""
        self._not_a_folder()
        return self.path.exists()

    def _ensure_current(self) -> None:
        """Migrate an existing file from an older toptune before a read (readers cannot write)."""
        with self._open(read_only=True) as con:
            found = schema.version(con)
        schema.check_not_newer(found, self.path)
        if found != schema.SCHEMA_VERSION:
            with self._writer():
                pass

    @contextmanager
    def _reader(self, config: dict | None = None) -> Iterator[Any]:
        """A short read-only connection to the existing file; "no store at PATH" where there is none."""
        self._check_schema()
        with self._open(read_only=True, config=config) as con:
            yield con

    def _check_schema(self) -> None:
        """Once per Store object: the file exists, and is migrated if an older toptune wrote it."""
        self.require()
        if self._checked_version != schema.SCHEMA_VERSION:
            self._ensure_current()
            self._checked_version = schema.SCHEMA_VERSION

    def require(self) -> None:
        """StoreError "no store at PATH" unless the file exists: for reads that have nothing to show without one."""
        if not self.exists():
            raise StoreError(f"no store at {self.path}: nothing has been recorded there (runs, comparisons, studies "
                             "and sweeps create it); check --store or TOPTUNE_STORE")

    def create(self) -> int:
        """Create the file (or migrate it) now, as any write would; returns the schema version."""
        with self._writer() as con:
            return schema.version(con)

    def schema_version(self) -> int:
        """The file's schema version; 0 where there is no store yet (a read creates nothing)."""
        if not self.exists():
            return 0
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
        with self._writer() as con:
            self._reap_stale(con)
            if row.get("dataset_label"):
                row["dataset_label"] = self._distinct_label(con, row["dataset_label"], record.get("info"))
            elif row.get("dataset"):
                row["dataset_label"] = row["dataset"]  # a run that names no label is labelled by its plugin
            cols = list(row)
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
            if "info" in values:  # what the run said at its start (its plan, where its data is) stays
                started = con.execute("SELECT info FROM runs WHERE id = ?", [run_id]).fetchone()
                if started and started[0]:
                    values["info"] = json.dumps({**json.loads(started[0]), **json.loads(values["info"])},
                                                sort_keys=True, default=str)
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
    def _distinct_label(con, label: str, info) -> str:
        """A dataset label that names one folder: the folder's own name, unless runs on another folder with the
        same name came first; then the name and a short fingerprint of the folder's path (``photos-3f2a1c``).
        Runs on the same folder keep the label its first run got."""
        info = json.loads(info) if isinstance(info, str) else (info or {})
        where = info.get("dataset_path")
        if not where:
            return label
        rows = con.execute("""SELECT dataset_label, json_extract_string(info, '$.dataset_path') AS path, created_at
                              FROM runs WHERE dataset_label = ? OR json_extract_string(info, '$.dataset_path') = ?
                              ORDER BY created_at""", [label, where]).fetchall()
        same = [found for found, path, _ in rows if path == where]
        if same:
            return same[0]
        if any(path is not None for _, path, _ in rows):
            return f"{label}-{hashlib.sha256(where.encode()).hexdigest()[:6]}"
        return label

    # ---- housekeeping: names, notes, tags, archiving, deleting (the same writer path) ----------
    def rename(self, run_id: str, name: str | None) -> None:
        """Give a run a name (shown beside its id); an empty name removes it."""
        name = _text(name, "a run's name", NAME_CHARS, one_line=True)
        with self._known([run_id]) as con:
            con.execute("UPDATE runs SET name = ? WHERE id = ?", [name, run_id])

    def annotate(self, run_id: str, note: str | None) -> None:
        """Set a run's note (free text, several lines allowed); an empty note removes it."""
        note = _text(note, "a note", NOTE_CHARS, one_line=False)
        with self._known([run_id]) as con:
            con.execute("UPDATE runs SET note = ? WHERE id = ?", [note, run_id])

    def tag(self, run_ids, add=(), remove=()) -> int:
        """Add and remove tags on runs (kept sorted, each once); returns how many runs changed."""
        add, remove = [_tag(t) for t in add], [_tag(t) for t in remove]
        if not add and not remove:
            raise ParamError("give a tag to add or to remove")
        changed = 0
        with self._known(run_ids) as con:
            for run_id, tags in con.execute("SELECT id, tags FROM runs WHERE id IN (SELECT unnest(?))",
                                            [list(run_ids)]).fetchall():
                new = sorted((set(tags or []) | set(add)) - set(remove))
                if new != sorted(tags or []):
                    con.execute("UPDATE runs SET tags = ? WHERE id = ?", [new or None, run_id])
                    changed += 1
        return changed

    def archive(self, run_ids) -> int:
        """Hide runs from every list and summary (they stay in the store, ``restore`` brings them back);
        returns how many were not archived yet. Running runs are refused: they are still being written."""
        with self._known(run_ids, not_running="archive") as con:
            return self._count(con, "UPDATE runs SET archived_at = ? WHERE id IN (SELECT unnest(?)) "
                                    "AND archived_at IS NULL", [utcnow(), list(run_ids)])

    def restore(self, run_ids) -> int:
        """Bring archived runs back; returns how many were archived."""
        with self._known(run_ids) as con:
            return self._count(con, "UPDATE runs SET archived_at = NULL WHERE id IN (SELECT unnest(?)) "
                                    "AND archived_at IS NOT NULL", [list(run_ids)])

    def delete_runs(self, run_ids) -> int:
        """Delete runs for good: their rows, test predictions, epoch curves and files beside the store (model,
        tables). Returns how many runs were deleted. Running runs are refused."""
        from .artifacts import run_dir

        ids = list(dict.fromkeys(run_ids))
        folders = [run_dir(self.path, run_id) for run_id in ids]  # an id that cannot be a folder fails here
        with self._known(ids, not_running="delete") as con:
            for table, column in (("predictions", "run_id"), ("epochs", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?))", [ids])
        left = []
        for folder in folders:
            try:
                shutil.rmtree(folder)
            except FileNotFoundError:
                pass
            except OSError as exc:
                left.append(f"{folder} ({exc.strerror or exc})")
        if left:
            raise StoreError(f"deleted {len(ids)} run(s) from the store, but could not remove "
                             f"{', '.join(left)}; remove it by hand")
        return len(ids)

    @contextmanager
    def _known(self, run_ids, not_running: str | None = None) -> Iterator[Any]:
        """The writer, once every id names a run of this store (and, with ``not_running``, none is running)."""
        ids = list(dict.fromkeys(str(i) for i in run_ids))
        if not ids:
            raise ParamError("give at least one run id")
        self.require()  # a mistyped --store must not create a store
        with self._writer() as con:
            found = dict(con.execute("SELECT id, status FROM runs WHERE id IN (SELECT unnest(?))", [ids]).fetchall())
            missing = [i for i in ids if i not in found]
            if missing:
                raise StoreError(f"no run with id {', '.join(missing)} in {self.path} (toptune runs lists them; "
                                 "--archived shows archived ones)")
            running = [i for i in ids if found[i] == "running"]
            if not_running and running:
                raise StoreError(f"run {', '.join(running)} is still running; {not_running} it once it has ended")
            yield con

    @staticmethod
    def _count(con, sql: str, params: list) -> int:
        return con.execute(sql, params).fetchone()[0]

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
    def runs(self, limit: int | None = None, status: str | None = None, linked_by: str | None = None, *,
             archived: bool | None = False, tags=(), **equals) -> list[dict]:
        """Runs, newest first, as dicts (params/info decoded).

        ``equals`` filters on columns (``comparison_id="…"``); ``linked_by="comparison_id"`` keeps runs
        where that column is set; ``tags`` keeps runs having every one of them. Archived runs are left out;
        ``archived=True`` lists only them, ``archived=None`` every run (as ``RunFilter.archived``).
        """
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        if status is not None:
            equals["status"] = status
        if not self.exists():
            return []
        with self._reader() as con:
            where, values = self._where(con, equals, linked_by, archived, tags)
            sql = "SELECT * FROM runs" + where + " ORDER BY created_at DESC" + (f" LIMIT {int(limit)}" if limit else "")
            cur = con.execute(sql, values)
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        here = [(r["id"], r["pid"], r["created_at"]) for r in rows
                if r["status"] == "running" and r["host"] == socket.gethostname()]
        if here and self._stale_ids(here):
            self.reap_stale()
            return self.runs(limit, None, linked_by, archived=archived, tags=tags, **equals)
        return [_decode(r) for r in rows]

    def count_runs(self, status: str | None = None, *, archived: bool | None = False, tags=(), **equals) -> int:
        """How many runs ``runs(status=…, archived=…, tags=…, **equals)`` would list without a limit."""
        if status is not None:
            equals["status"] = status
        if not self.exists():
            return 0
        with self._reader() as con:
            where, values = self._where(con, equals, None, archived, tags)
            return con.execute("SELECT count(*) FROM runs" + where, values).fetchone()[0]

    @staticmethod
    def _where(con, equals: dict, linked_by: str | None, archived: bool | None = False,
               tags=()) -> tuple[str, list]:
        """The WHERE clause for column equalities (checked against the table: names go into the SQL text), tags
        and archiving, with its parameters."""
        columns = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
        unknown = (set(equals) | ({linked_by} if linked_by else set())) - columns
        if unknown:
            raise StoreError(f"unknown runs column(s): {', '.join(sorted(unknown))}")
        kept, kept_values = housekeeping(tags, archived)
        where = [f"{c} = ?" for c in equals] + ([f"{linked_by} IS NOT NULL"] if linked_by else []) + kept
        values = list(equals.values()) + kept_values
        return (" WHERE " + " AND ".join(where) if where else ""), values

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A short read-only connection for toptune's own queries (``queries``); users' SQL goes through
        ``query``'s sandbox instead."""
        with self._reader() as con:
            yield con

    def epochs(self, run_id: str) -> list[dict]:
        """Per-epoch curves of a fine-tuning run, in order."""
        if not self.exists():
            return []
        with self._reader() as con:
            cur = con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", [run_id])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def confusion(self, run_id: str) -> list[tuple[int, int, int]]:
        """(true class, predicted class, count) over a run's test predictions."""
        if not self.exists():
            return []
        with self._reader() as con:
            return con.execute("SELECT y_true, y_pred, n FROM confusion WHERE run_id = ? ORDER BY y_true, y_pred",
                               [run_id]).fetchall()

    def get_run(self, run_id: str) -> dict:
        if not self.exists():
            raise StoreError(f"no run with id {run_id}: there is no store at {self.path}")
        with self._reader() as con:
            cur = con.execute("SELECT * FROM runs WHERE id = ?", [run_id])
            row = cur.fetchone()
            if row is None:
                raise StoreError(f"no run with id {run_id} in {self.path}")
            return _decode(dict(zip([d[0] for d in cur.description], row)))

    def query(self, sql: str, timeout_s: float = 30.0, max_rows: int | None = 10_000) -> sandbox.QueryResult:
        """Run one read-only query in the sandbox: checked first (``sandbox.check``), then run in a child process
        that is stopped at the timeout or its memory limit (``query_process``). No files, no network, no settings."""
        sandbox.check_limits(timeout_s, max_rows)
        sandbox.check(sql)
        self._check_schema()
        return query_process.run(self.path, sql, timeout_s, max_rows, self.busy_timeout_s)


NAME_CHARS, NOTE_CHARS, TAG_CHARS = 120, 4000, 40


def _text(value: str | None, what: str, limit: int, one_line: bool) -> str | None:
    """A name or note as stored: trimmed, None when empty; too long or (for one line) several lines is refused."""
    text = (value or "").strip()
    if len(text) > limit:
        raise ParamError(f"{what} takes at most {limit} characters, got {len(text)}")
    if one_line and any(c in text for c in "\r\n"):
        raise ParamError(f"{what} is one line; got several")
    return text or None


def _tag(value: str) -> str:
    """A tag: a short word or phrase, trimmed; no commas (lists of tags are comma-separated) or line breaks."""
    tag = str(value).strip()
    if not tag:
        raise ParamError("a tag cannot be empty")
    if len(tag) > TAG_CHARS or any(c in tag for c in ",\r\n\t"):
        raise ParamError(f"invalid tag {tag[:TAG_CHARS + 10]!r}: at most {TAG_CHARS} characters, no commas or "
                         "line breaks")
    return tag


def _decode(row: dict) -> dict:
    for key in JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _version_string() -> str:
    from .. import __version__

    return __version__
