"""Hostile SQL through both ways users reach the sandbox: ``toptune sql`` and the dashboard's SQL page
(``toptune.dashboard.data.run_sql``). Every statement is refused with one line, reads no file (the store's own
included), reveals no path, and changes nothing; queries that would run past the timeout or the memory limit
are stopped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from tests.support.stores import contents, digest, filled, one_line
from toptune.cli import app
from toptune.dashboard import data
from toptune.errors import SQLError, StoreError
from toptune.store import sandbox

SECRET = "TOPSECRET-7f3a"

# {store}: the store's file, {secret}: a CSV beside it holding SECRET, {dir}: their folder.
HOSTILE = [
    # files, the store's own first
    "SELECT * FROM '{store}'",
    "FROM '{store}'",
    "SELECT * FROM 's.duckdb'",
    "SELECT * FROM \"{store}\"",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM READ_CSV('{secret}')",
    "SELECT * FROM \"read_csv\"('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{store}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM read_ndjson_objects('{secret}')",
    "SELECT * FROM read_parquet('{dir}/*.parquet')",
    "SELECT * FROM parquet_scan('{secret}')",
    "SELECT * FROM parquet_metadata('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM glob('{dir}/*')",
    "FROM glob('*')",
    "DESCRIBE '{secret}'",
    "SUMMARIZE '{secret}'",
    "SUMMARIZE SELECT * FROM read_csv('{secret}')",
    "DESCRIBE SELECT * FROM glob('/*')",
    "EXPLAIN SELECT * FROM read_csv('{secret}')",
    "EXPLAIN ANALYZE SELECT * FROM '{store}'",
    "SELECT (SELECT count(*) FROM read_csv('{secret}'))",
    "SELECT * FROM runs WHERE id IN (SELECT column0 FROM read_csv('{secret}'))",
    "SELECT * FROM runs, LATERAL (SELECT * FROM read_text('{secret}'))",
    "SELECT * FROM 'https://example.com/x.csv'",
    "SELECT * FROM 's3://bucket/x.parquet'",
    "SELECT * FROM iceberg_scan('{dir}')",
    "SELECT * FROM query('SELECT * FROM read_csv(''{secret}'')')",
    "SELECT * FROM query_table('runs')",
    "SELECT * FROM json_execute_serialized_sql('x')",
    # names that would bind to a file or a system view outside their scope
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
    "WITH \"{secret}\" AS (SELECT 1) SELECT * FROM \"{secret}\"",
    "SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1), duckdb_settings",
    "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x), x",
    # settings, the environment, databases and their paths
    "SELECT current_setting('temp_directory')",
    "SELECT CURRENT_SETTING('home_directory')",
    "SELECT main.current_setting('extension_directory')",
    "SELECT \"current_setting\"('secret_directory')",
    "SELECT getenv('HOME')",
    "SELECT * FROM duckdb_settings()",
    "SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'",
    "SELECT * FROM system.main.duckdb_settings()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM duckdb_temporary_files()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM pragma_database_list()",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM pragma_storage_info('runs')",
    "SELECT * FROM duckdb_tables",
    "SELECT * FROM information_schema.schemata",
    "SELECT * FROM pg_catalog.pg_settings",
    "SELECT * FROM s.main.runs",
    "SELECT * FROM temp.main.anything",
    "SHOW DATABASES",
    "SHOW ALL TABLES",
    "PRAGMA database_list",
    "PRAGMA show_tables",
    "CALL duckdb_settings()",
    "SELECT get_block_size('s')",
    "SELECT write_log('x')",
    # anything that is not one read-only query
    "ATTACH '{store}' AS other",
    "ATTACH ':memory:' AS m",
    "DETACH s",
    "USE system",
    "COPY runs TO '{dir}/out.csv'",
    "COPY (SELECT 1) TO '{dir}/out.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{dir}/export'",
    "IMPORT DATABASE '{dir}'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET memory_limit = '100GB'",
    "SET enable_external_access = true",
    "RESET memory_limit",
    "CREATE TABLE t AS SELECT 1",
    "CREATE MACRO m(x) AS x",
    "CREATE SECRET (TYPE s3)",
    "INSERT INTO runs (id) VALUES ('x')",
    "UPDATE runs SET status = 'finished'",
    "DELETE FROM predictions",
    "DROP TABLE runs",
    "ALTER TABLE runs ADD COLUMN x INT",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "PREPARE p AS SELECT 1",
    "SELECT 1; DROP TABLE runs",
    "SELECT 1; SELECT 2",
    "EXPLAIN COPY runs TO '{dir}/x.csv'",
    "PIVOT runs ON status",
    "",
    "   ",
    "selec 1",
    "SELECT 1\x00",
]
CAP = sandbox.MAX_SQL_CHARS


@pytest.fixture
def store(tmp_path):
    st = filled(tmp_path / "s.duckdb")
    (tmp_path / "secret.csv").write_text(f"column0\n{SECRET}\n")
    return st


def statements(store) -> list[str]:
    folder = store.path.parent
    return [q.format(store=store.path, secret=folder / "secret.csv", dir=folder) for q in HOSTILE]


def test_the_corpus_is_large_and_distinct():
    assert len(HOSTILE) >= 60 and len(set(HOSTILE)) == len(HOSTILE)


def test_every_hostile_statement_is_refused_through_the_cli(store, monkeypatch):
    monkeypatch.chdir(store.path.parent)  # relative names ('s.duckdb') would find the store's file here
    before, raw = contents(store.path), digest(store.path)
    runner = CliRunner()
    for sql in statements(store) + ["SELECT " + "1 + " * CAP + "1"]:
        res = runner.invoke(app, ["sql", sql, "--store", str(store.path)], env={"COLUMNS": "300"})
        assert res.exit_code == 2, (sql, res.output)
        assert one_line(res.output) and res.output.startswith("error: "), (sql, res.output)
        assert SECRET not in res.output and f"{store.path}.tmp" not in res.output, sql
        if str(store.path.parent) not in sql:  # a refusal may quote the user's own text, never another path
            assert str(store.path.parent) not in res.output, (sql, res.output)
    assert contents(store.path) == before and digest(store.path) == raw
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["s.duckdb", "s.duckdb.lock", "secret.csv"]


def test_every_hostile_statement_is_refused_through_the_dashboard(store, monkeypatch):
    monkeypatch.chdir(store.path.parent)
    before, raw = contents(store.path), digest(store.path)
    for sql in statements(store):
        with pytest.raises(SQLError) as refused:
            data.run_sql(store.path, sql, 5)
        message = str(refused.value)
        assert message and "\n" not in message and SECRET not in message, sql
    assert contents(store.path) == before and digest(store.path) == raw


@pytest.mark.parametrize("sql, expected", [
    ("SELECT '[/x]' AS a, '[bold]x[/bold]' AS b", [("[/x]", "[bold]x[/bold]")]),
    ("SELECT count(*) FROM runs WHERE status = 'finished'", [(2,)]),
    ("WITH f AS (SELECT * FROM runs WHERE status = 'finished') SELECT count(*) FROM f", [(2,)]),
    ("SELECT count(*) FROM predictions p JOIN runs r ON r.id = p.run_id", [(8,)]),
    ("SELECT sum(n) FROM confusion", [(8,)]),
    ("SELECT max(x) FROM range(5) t(x)", [(4,)]),
    ("SELECT error FROM runs WHERE status = 'failed'", [("DatasetError: [/x] [bold]not bold[/bold] [red]",)]),
])
def test_harmless_queries_still_answer_on_both_paths(store, sql, expected):
    assert data.run_sql(store.path, sql, 30)[0].values.tolist() == [list(row) for row in expected]
    res = CliRunner().invoke(app, ["sql", sql, "--store", str(store.path), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert all(str(value) in res.output for row in expected for value in row)


def test_describe_show_and_explain_are_allowed(store):
    for sql in ("DESCRIBE runs", "SHOW TABLES", "SUMMARIZE SELECT accuracy FROM runs", "EXPLAIN SELECT * FROM runs",
                "SELECT table_name FROM information_schema.tables"):
        assert len(store.query(sql).rows) > 0, sql


# Each would run far past its timeout or its memory limit; the first two build one value inside one function
# call, where DuckDB itself checks for neither.
RUNAWAY = [
    "SELECT count(*) FROM range(100000000000) a",
    "SELECT len(string_split(repeat('a,', 300000000), ','))",
    "SELECT length(regexp_replace(repeat('ab', 200000000), 'b', 'cc', 'g'))",
    "SELECT len(list(repeat('x', 1000))) FROM range(3000000)",
    "SELECT length(repeat(repeat('x', 100000000), 30))",
]


@pytest.mark.parametrize("sql", RUNAWAY)
def test_runaway_queries_are_stopped_on_both_paths(store, sql):
    before = contents(store.path)
    t0 = time.monotonic()
    with pytest.raises(SQLError, match="timeout|memory"):
        data.run_sql(store.path, sql, 2)
    assert time.monotonic() - t0 < 2 + 5
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["sql", sql, "--store", str(store.path), "--timeout", "2"])
    assert res.exit_code == 2 and one_line(res.output) and ("timeout" in res.output or "memory" in res.output)
    assert time.monotonic() - t0 < 2 + 5
    assert contents(store.path) == before
    assert store.query("SELECT count(*) FROM runs").rows == [(3,)]  # the lock was released with the process


def test_the_memory_limit_holds_at_the_os_level(store):
    """The query process never holds much more than the sandbox's limit, whatever the query builds."""
    script = textwrap.dedent(f"""
        import resource
        from toptune.errors import SQLError, StoreError
        from toptune.store import Store
        for sql in ["SELECT length(repeat(repeat('x', 100000000), 30))",
                    "SELECT len(list(repeat('x', 1000))) FROM range(3000000)"]:
            try:
                Store({str(store.path)!r}).query(sql, timeout_s=20)
            except SQLError as exc:
                print("stopped:", exc)
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stdout
    lines = out.splitlines()
    assert len(lines) == 3 and all("memory" in line for line in lines[:2]), out
    limit_mb = sandbox.MEMORY_LIMIT_MB + 2 * sandbox.MEMORY_LIMIT_MB  # DuckDB's own limit + the OS headroom
    assert int(lines[-1]) < limit_mb, out


@pytest.mark.parametrize("options, message", [
    (["--timeout", "-1"], "timeout"), (["--timeout", "0"], "timeout"), (["--timeout", "nan"], "timeout"),
    (["--timeout", "inf"], "timeout"), (["--timeout", "1e9"], "timeout"), (["--max-rows", "-1"], "row limit"),
    (["--max-rows", "0"], "row limit"), (["--format", "xml"], "--format"),
])
def test_bad_options_are_refused_before_the_query(store, options, message):
    res = CliRunner().invoke(app, ["sql", "SELECT 1", "--store", str(store.path), *options])
    assert res.exit_code == 2 and one_line(res.output) and message in res.output, res.output


def test_a_query_on_a_missing_store_creates_nothing(tmp_path):
    target = tmp_path / "new" / "s.duckdb"
    res = CliRunner().invoke(app, ["sql", "SELECT 1", "--store", str(target)])
    assert res.exit_code == 2 and one_line(res.output) and "no store at" in res.output
    with pytest.raises(StoreError, match="no store at"):
        data.run_sql(target, "SELECT 1", 5)
    assert not (tmp_path / "new").exists()
