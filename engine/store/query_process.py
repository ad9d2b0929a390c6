"""Users' SQL in a child process that can be stopped hard: the sandbox's timeout and memory limit hold for
every query, even one that builds a huge value inside a single function call (which DuckDB's own
interrupt and memory limit do not stop).

The parent checks the statement (``sandbox.check``) and starts ``python -c 'child()'``; the child takes
the store's shared lock itself (``locking.file_lock``), opens a short read-only connection with
``sandbox.SANDBOX``, sets an OS limit on its address space, says it is ready, and runs the query under
DuckDB's interrupt at the timeout and its own alarm a moment later. The parent kills it when the
timeout has passed. Killing it releases the lock and the connection with the process; the store's file
was only read.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import SQLError, StoreError
from .sandbox import MEMORY_LIMIT_MB, SANDBOX, QueryResult, first_line

READY, FAILED = b"R", b"E"
START_S = 30.0  # for a child to start and import DuckDB, beyond the wait for the store's lock
GRACE_S = 1.0  # after the timeout, for DuckDB's interrupt to land before the process is killed
MAX_RESULT_MB = 256
# The address space a query may add above what the child holds once connected: DuckDB's own limit
# (buffers) plus the same again for what it allocates outside it (strings and lists built in one call).
HEADROOM_MB = 2 * MEMORY_LIMIT_MB
CHILD = "from toptune.store.query_process import child; child()"


def run(path: Path, sql: str, timeout_s: float, max_rows: int | None, busy_timeout_s: float) -> QueryResult:
    """Run one checked statement on the store at ``path`` in a child process; SQLError when it fails or is stopped."""
    request = pickle.dumps({"path": str(path), "sql": sql, "timeout_s": timeout_s, "max_rows": max_rows,
                            "busy_timeout_s": busy_timeout_s})
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # glibc's per-thread arenas would reserve address space
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, close_fds=True)
    reply = _Reply(proc)
    try:
        proc.stdin.write(request)
        proc.stdin.close()
        if not reply.started.wait(busy_timeout_s + START_S):
            raise StoreError(f"store {path} is busy: the query could not start within {busy_timeout_s:.0f} s")
        if reply.first == READY and not reply.done.wait(timeout_s + GRACE_S):
            raise SQLError(f"query stopped after the {timeout_s:g} s timeout")
        reply.done.wait()
    except BrokenPipeError:
        reply.done.wait(START_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return reply.result(proc.returncode, timeout_s)


class _Reply:
    """Reads the child's answer on a thread: one status byte, then a pickled payload."""

    def __init__(self, proc: subprocess.Popen):
        self.started, self.done = threading.Event(), threading.Event()
        self.first, self.body = b"", b""
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        try:
            self.first = stream.read(1)
            self.started.set()
            self.body = stream.read()
        finally:
            self.started.set()
            self.done.set()

    def result(self, returncode: int, timeout_s: float) -> QueryResult:
        if self.first in (READY, FAILED) and self.body:
            kind, payload = pickle.loads(self.body)
            if kind == "ok":
                return QueryResult(*payload)
            raise (StoreError if kind == "store" else SQLError)(payload)
        if returncode == -signal.SIGALRM:
            raise SQLError(f"query stopped after the {timeout_s:g} s timeout")
        raise SQLError(f"the query stopped without an answer (exit status {returncode}): most likely it needed more "
                       f"than the sandbox's {MEMORY_LIMIT_MB} MB of memory; select fewer or smaller values")


def child() -> None:
    """The child's side: read the request, lock, connect, limit, run, answer; always exits."""
    out = os.fdopen(os.dup(1), "wb")  # the answer's own channel: whatever a library prints goes to stderr
    os.dup2(2, 1)
    request = pickle.loads(sys.stdin.buffer.read())
    try:
        con, release = _open(Path(request["path"]), request["busy_timeout_s"])
    except StoreError as exc:
        _answer(out, FAILED, ("store", str(exc)))
        return
    try:
        _limit_memory()
        out.write(READY)
        out.flush()
        _answer(out, b"", _execute(con, request["sql"], request["timeout_s"], request["max_rows"]))
    finally:
        con.close()
        release()


def _open(path: Path, busy_timeout_s: float):
    """A read-only sandboxed connection under the store's shared lock; returns it and the lock's release."""
    from .locking import connect, file_lock

    lock = file_lock(path, "read", busy_timeout_s)
    lock.__enter__()
    try:
        return connect(path, True, SANDBOX, busy_timeout_s), lambda: lock.__exit__(None, None, None)
    except BaseException:
        lock.__exit__(None, None, None)
        raise


def _limit_memory() -> None:
    """Cap the address space at what the child holds now plus HEADROOM_MB (Linux; elsewhere DuckDB's own limit and
    the timeout's kill remain)."""
    try:
        with open("/proc/self/statm") as fh:
            held = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = held + HEADROOM_MB * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError):
        pass


def _execute(con, sql: str, timeout_s: float, max_rows: int | None) -> tuple:
    import duckdb

    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    timer.start()
    signal.setitimer(signal.ITIMER_REAL, timeout_s + GRACE_S / 2)  # SIGALRM ends the process: the hard stop
    started = time.monotonic()
    try:
        cur = con.execute(sql)
        rows = cur.fetchmany(max_rows + 1) if max_rows else cur.fetchall()
        columns = [d[0] for d in cur.description]
    except duckdb.InterruptException:
        return "sql", f"query interrupted after the {timeout_s:g} s timeout"
    except duckdb.OutOfMemoryException:
        return "sql", f"the query needed more than the sandbox's {MEMORY_LIMIT_MB} MB of memory"
    except duckdb.Error as exc:
        if time.monotonic() - started >= timeout_s:
            return "sql", f"query interrupted after the {timeout_s:g} s timeout"
        return "sql", first_line(exc)
    except MemoryError:
        return "sql", f"the query needed more than the sandbox's {MEMORY_LIMIT_MB} MB of memory"
    finally:
        timer.cancel()
    truncated = bool(max_rows) and len(rows) > max_rows
    return "ok", (columns, rows[:max_rows] if truncated else rows, truncated)


def _answer(out, status: bytes, answer: tuple) -> None:
    try:
        body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        body = pickle.dumps(("sql", f"the result is too large for the sandbox's {MEMORY_LIMIT_MB} MB of memory"))
    if len(body) > MAX_RESULT_MB * 2**20:
        body = pickle.dumps(("sql", f"the result is larger than {MAX_RESULT_MB} MB; select fewer rows or columns"))
    signal.setitimer(signal.ITIMER_REAL, 0)
    out.write(status + body)
    out.flush()
