"""How the store opens DuckDB without lock errors: one writer or many readers, across threads and processes.

DuckDB lets one process write or many read, and an open fails while the other kind is held. So nobody
keeps the file open: every operation takes a cross-process read-write lock (writers queue on it), then a
short connection, and both retry for a while when DuckDB itself reports a lock conflict. Inside one
process a configuration gate makes threads whose connections DuckDB cannot hold together wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError


def is_lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


class ConfigGate:
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


@contextmanager
def file_lock(path: Path, mode: str, timeout_s: float) -> Iterator[None]:
    """Our own cross-process read-write lock around every DuckDB open.

    DuckDB's file locks alone are not enough: POSIX record locks belong to the process and vanish when any
    descriptor of the file closes, and a read-only open fails instead of waiting. Readers share this lock,
    writers hold it alone, and both wait up to ``timeout_s``.
    """
    from filelock import ReadWriteLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One instance per operation: threads of one process (the dashboard) then wait for each other too.
        lock = ReadWriteLock(str(path) + ".lock", timeout=timeout_s, is_singleton=False)
    except OSError as exc:
        raise StoreError(f"cannot open store {path}: {exc.strerror or exc}") from None
    held = lock.write_lock() if mode == "write" else lock.read_lock()
    try:
        held.__enter__()
    except Timeout:
        lock.close()
        raise StoreError(f"store {path} is busy: it stayed locked for {timeout_s:.0f} s") from None
    except Exception as exc:  # e.g. a read-only folder where the lock file cannot be made
        lock.close()
        raise StoreError(f"cannot lock store {path}: {exc}") from None
    try:
        yield
    finally:
        held.__exit__(None, None, None)
        lock.close()


def connect(path: Path, read_only: bool, config: dict | None, timeout_s: float):
    """A DuckDB connection, retried while another process's DuckDB lock is in the way."""
    import duckdb

    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc) or time.monotonic() > deadline:
                raise StoreError(f"cannot open store {path}: {exc}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


@contextmanager
def opened(path: Path, read_only: bool, config: dict | None, timeout_s: float) -> Iterator[Any]:
    """A connection under both locks: the in-process configuration gate, then the cross-process one."""
    key = (read_only, tuple(sorted((config or {}).items())))
    with ConfigGate.hold(path, key, timeout_s), file_lock(path, "read" if read_only else "write", timeout_s):
        con = connect(path, read_only, config, timeout_s)
        try:
            yield con
        finally:
            con.close()
