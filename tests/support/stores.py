"""A small store with finished runs and predictions, and a fingerprint of what it holds, for the tests that
check bad input and hostile SQL change nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from toptune.store import Store

RECORD = {"method": "top-tune", "backbone": "efficientnet_lite0", "classifier": "ridge", "dataset": "digits",
          "seed": 0, "params": {"classifier": {"alpha": 1.0}}}


def filled(path: Path) -> Store:
    """Two finished runs with predictions and one failed run whose error reads like rich markup."""
    store = Store(path)
    for accuracy in (0.5, 0.75):
        run_id = store.start_run(RECORD)
        store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": 1.0}, y_true=[0, 1, 1, 0],
                         y_pred=[0, 1, 0, 0])
    failed = store.start_run(RECORD)
    store.fail_run(failed, "DatasetError: [/x] [bold]not bold[/bold] [red]")
    return store


def contents(path: Path) -> tuple:
    """What the store holds that bad input must never change: its finished runs and every prediction."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = con.execute("SELECT id, status, accuracy FROM runs WHERE status = 'finished' ORDER BY id").fetchall()
        predictions = con.execute("SELECT run_id, sample, y_true, y_pred FROM predictions "
                                  "ORDER BY run_id, sample").fetchall()
    finally:
        con.close()
    return runs, predictions


def digest(path: Path) -> str:
    """The store file's bytes, hashed: a read must leave them as they are."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_line(output: str) -> bool:
    """Whether a command said exactly one non-empty line, and no traceback."""
    lines = [line for line in output.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in output
