"""While runs write to the store, the Runs and SQL pages keep answering, without a lock error."""

import subprocess
import sys
import time

import pytest

from tests.support.dashboard import frame_with, open_page
from toptune.store import Store

RECORD = {"method": "top-tune", "backbone": "b", "classifier": "ridge", "dataset": "digits"}

# Holds the store's write lock (and DuckDB's read-write open) the way a run's recording does, only longer.
HOLD = """
import sys, time
from toptune.store import Store
with Store(sys.argv[1])._writer() as con:
    con.execute("UPDATE runs SET accuracy = 0.5")
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""

WRITE = """
import sys, time
from toptune.store import Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    run_id = store.start_run({"method": "top-tune", "backbone": "b", "classifier": "ridge", "dataset": "digits"})
    time.sleep(0.05)
    store.finish_run(run_id, {"accuracy": 0.9, "train_time_s": 1.0}, y_true=[0, 1, 1], y_pred=[0, 1, 0])
"""


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "busy.duckdb"
    st = Store(path)
    st.finish_run(st.start_run(RECORD), {"accuracy": 0.75, "train_time_s": 2.0})
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    return path


@pytest.mark.parametrize("page", ["runs", "sql"])
def test_pages_wait_for_a_writer_instead_of_failing(store, page):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store), "2.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        at = open_page(page, {"sql": "SELECT count(*) AS n, max(accuracy) AS best FROM runs"})
        if page == "sql":
            at.button(key="run_query").click().run()
        waited = time.monotonic() - start
    finally:
        holder.wait(timeout=30)
    assert not at.exception and not at.error
    if page == "runs":
        table = frame_with(at, "status_badge", "id")
        assert len(table) == 1 and table["accuracy"].iloc[0] == 0.5  # the writer's committed update
    else:
        result = at.dataframe[0].value
        assert result["n"].iloc[0] == 1 and result["best"].iloc[0] == 0.5
    assert waited > 2.0  # it queued behind the writer (2.5 s) rather than erroring out


def test_pages_keep_answering_while_runs_are_recorded(store):
    writers = [subprocess.Popen([sys.executable, "-c", WRITE, str(store), "12"]) for _ in range(2)]
    loads = 0
    try:
        while any(w.poll() is None for w in writers) or loads < 2:
            for page in ("runs", "sql"):
                at = open_page(page, {"sql": "SELECT status, count(*) AS n FROM runs GROUP BY status"})
                if page == "sql":
                    at.button(key="run_query").click().run()
                assert not at.exception and not at.error, [e.value for e in at.error]
                loads += 1
    finally:
        for w in writers:
            w.wait(timeout=60)
    assert all(w.returncode == 0 for w in writers)
    table = frame_with(open_page("runs"), "status_badge", "id")
    assert len(table) == 1 + 2 * 12 and set(table["status_badge"].str[0]) == {"finished"}  # nothing was lost
