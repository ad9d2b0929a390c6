import subprocess
import sys
import time

import duckdb
import pytest

from toptune.errors import SQLError, StoreError
from toptune.store import SCHEMA_VERSION, Store

RECORD = {"method": "top-tune", "backbone": "b", "classifier": "c", "dataset": "d", "seed": 0,
          "params": {"classifier": {"M": 10}}}


def test_status_transitions(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    a = st.start_run(RECORD)
    assert st.get_run(a)["status"] == "running"
    st.finish_run(a, {"accuracy": 0.9, "train_time_s": 1.5}, y_true=[0, 1, 1], y_pred=[0, 1, 0])
    row = st.get_run(a)
    assert row["status"] == "finished" and row["accuracy"] == 0.9 and row["finished_at"] >= row["created_at"]
    assert row["params"] == {"classifier": {"M": 10}}
    b = st.start_run(RECORD)
    st.fail_run(b, "ValueError: bad")
    c = st.start_run(RECORD)
    st.interrupt_run(c)
    statuses = {r["id"]: (r["status"], r["error"]) for r in st.runs()}
    assert statuses[b] == ("failed", "ValueError: bad")
    assert statuses[c] == ("interrupted", "interrupted by the user")
    with pytest.raises(StoreError, match="already finished"):
        st.fail_run(a, "late")  # a finished run never changes again
    conf = st.query(f"select y_true, y_pred, n from confusion where run_id = '{a}' order by all").rows
    assert conf == [(0, 0, 1), (1, 0, 1), (1, 1, 1)]


def test_plain_duckdb_opens_the_store_and_schema_is_versioned(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).start_run(RECORD)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select max(version) from schema_info").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("select count(*) from runs").fetchone()[0] == 1
    con.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).start_run(RECORD)
    con = duckdb.connect(str(path))
    con.execute("insert into schema_info values (?, now())", [SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(StoreError, match="newer than this toptune"):
        Store(path).runs()


def test_sql_is_read_only_and_sandboxed(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    st.start_run(RECORD)
    assert st.query("select count(*) as n from runs").rows == [(1,)]
    for bad, message in [
        ("delete from runs", "only read-only queries"),
        ("drop table runs", "only read-only queries"),
        ("copy runs to 'x.csv'", "only read-only queries"),
        ("select 1; select 2", "one statement"),
        ("select * from read_csv('/etc/passwd')", "not allowed in the sandbox"),
        ("attach 'other.db'", "only read-only queries"),
        ("set enable_external_access = true", "only read-only queries"),
        ("selec 1", "syntax error"),
        ("", "empty query"),
    ]:
        with pytest.raises(SQLError, match=message):
            st.query(bad)
    assert st.query("select count(*) from runs").rows == [(1,)]  # nothing was damaged


def test_sql_timeout_interrupts(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    st.create()
    t0 = time.monotonic()
    with pytest.raises(SQLError, match="timeout"):
        st.query("select count(*) from range(10000000000) a", timeout_s=0.5)
    assert time.monotonic() - t0 < 10


def test_reads_wait_for_a_writer_instead_of_failing(tmp_path):
    """A read-only open fails while another process writes; the store retries until it can read."""
    path = tmp_path / "s.duckdb"
    Store(path).start_run(RECORD)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(1.5)"),
        str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    rows = Store(path, busy_timeout_s=20).runs()
    assert len(rows) == 1 and time.monotonic() - t0 > 0.5
    holder.wait()


def test_busy_store_gives_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).start_run(RECORD)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(5)"),
        str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StoreError, match="Conflicting lock"):
        Store(path, busy_timeout_s=0.3).runs()
    holder.kill()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "s.duckdb"
    code = ("import sys; from toptune.store import Store; st = Store(sys.argv[1]);\n"
            "for i in range(15):\n"
            "    rid = st.start_run({'method': 'top-tune', 'dataset': 'd'}); st.finish_run(rid, {'accuracy': 1.0})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(3)]
    reader = Store(path)
    while any(p.poll() is None for p in procs):
        reader.runs(limit=5)  # the dashboard keeps reading meanwhile
    assert all(p.returncode == 0 for p in procs)
    assert reader.query("select status, count(*) from runs group by status").rows == [("finished", 45)]


def test_stale_running_run_of_a_dead_process_becomes_interrupted(tmp_path):
    path = tmp_path / "s.duckdb"
    code = ("import os, sys; from toptune.store import Store; "
            "Store(sys.argv[1]).start_run({'method': 'top-tune', 'dataset': 'd'}); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    (row,) = Store(path).runs()
    assert row["status"] == "interrupted" and "ended without recording" in row["error"]


def test_an_older_store_is_migrated_on_first_read(tmp_path, monkeypatch):
    from toptune.store import schema as store_mod

    path = tmp_path / "s.duckdb"
    old_id = Store(path).start_run(RECORD)
    extra = ["ALTER TABLE runs ADD COLUMN future_col VARCHAR"]
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + [extra])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    st = Store(path)
    assert st.schema_version() == SCHEMA_VERSION + 1
    (row,) = st.runs()
    assert row["id"] == old_id and row["future_col"] is None  # old runs survive the upgrade


def test_a_failing_migration_leaves_the_store_untouched(tmp_path, monkeypatch):
    from toptune.store import schema as store_mod

    path = tmp_path / "s.duckdb"
    Store(path).start_run(RECORD)
    broken = ["ALTER TABLE runs ADD COLUMN ok_col VARCHAR", "ALTER TABLE nowhere ADD COLUMN x INT"]
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + [broken])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="migrating store"):
        Store(path).runs()
    monkeypatch.undo()
    con = duckdb.connect(str(path), read_only=True)
    cols = [r[0] for r in con.execute("describe runs").fetchall()]
    assert "ok_col" not in cols and con.execute("select max(version) from schema_info").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_sql_sandbox_and_plain_reads_share_one_process(tmp_path):
    """DuckDB refuses two configurations of one file in one process; threads must wait, not fail."""
    import threading

    st = Store(tmp_path / "s.duckdb")
    st.finish_run(st.start_run(RECORD), {"accuracy": 0.5})
    errors, results, opened = [], [], threading.Event()

    def hold_plain_reader():
        with st._reader() as con:  # e.g. the Runs page's fragment refreshing
            opened.set()
            time.sleep(0.5)
            con.execute("SELECT 1").fetchall()

    def sandboxed_query():
        opened.wait()
        try:
            results.append(st.query("SELECT count(*) FROM runs").rows)
            results.append(len(st.runs()))
        except Exception as exc:  # noqa: BLE001 - the failure is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=hold_plain_reader), threading.Thread(target=sandboxed_query)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and results == [[(1,)], 1]
