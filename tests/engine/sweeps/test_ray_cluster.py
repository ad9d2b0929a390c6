"""Sweeps on a real multi-node Ray cluster: a head and a worker node, each its own ``ray start``, with token
authentication, kept on loopback (``tests.support.ray_cluster``). Drivers are ``toptune sweep --address``
processes, as a user runs them: one-line errors before anything is stored, cells spread over both nodes,
and a worker node killed mid-sweep loses no finished cell."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from tests.support.ray_cluster import LOOPBACK, CannotStart, LocalCluster, free_port
from toptune.cli import app
from toptune.store import Store
from toptune.sweeps.cluster import (
    ClusterError,
    auth_settings,
    check_local_node,
    check_reachable,
    classify,
    find_token,
    init_error,
)

ray = pytest.importorskip("ray")
CELLS = 9  # the worker node's first cell (a cold worker) takes as long as ~5 on the head
SWEEP = ["--datasets", "digits", "--backbones", "efficientnet_lite0", "--methods", "fine-tune", "--seeds", str(CELLS),
         "-p", "max_train=40", "-p", "max_test=20", "-p", "image_size=32", "-p", "epochs=2", "-p", "batch_size=8"]


@pytest.fixture(scope="module")
def cluster():
    # A short root: Ray's unix sockets live under --temp-dir and their paths may not pass 107 characters.
    root = Path(tempfile.mkdtemp(prefix="tt-ray-", dir="/tmp"))
    made = LocalCluster(root, cpus=1, workers=1)
    t0 = time.perf_counter()
    try:
        made.start()
    except CannotStart as exc:  # only the head failing skips; a worker node that cannot join fails the tests
        made.stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"skipped: Ray cannot start here: {exc}")
        pytest.skip(f"Ray cannot start here: {exc}")
    except BaseException:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    print(f"cluster up in {time.perf_counter() - t0:.1f} s ({made.confined or 'not confined'}), at {made.address}")
    try:
        yield made
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)


def _home(base: Path, token: str | None) -> Path:
    """A home folder, holding Ray's default token file when ``token`` is given (as on the head machine)."""
    home = base / ("home-with-token" if token else "home")
    (home / ".ray").mkdir(parents=True, exist_ok=True)
    if token:
        (home / ".ray" / "auth_token").write_text(token)
    return home


def _sweep(cluster: LocalCluster, store: Path, *args: str, home: Path):
    cmd = [sys.executable, "-m", "toptune.cli", "sweep", *SWEEP, "--store", str(store), "--cache-dir",
           str(store.parent / "features"), "-q", *args]
    return cluster.popen(cmd, cluster.base_env(HOME=home), stdout=-1, stderr=-1, text=True)


def _runs(store: Path) -> list[dict]:
    return Store(store).runs() if store.exists() else []


def test_the_cluster_is_two_nodes_on_loopback(cluster):
    ids = [node.node_id() for node in cluster.nodes]
    assert len(ids) == 2 and all(ids) and ids[0] != ids[1]
    listening = cluster.listening()
    print(f"cluster processes listen on {sorted(listening)}")
    if cluster.ns is not None:
        assert listening and listening <= set(LOOPBACK)


def test_joining_fails_in_one_line_before_any_run_is_stored(cluster, tmp_path):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 64)
    store = tmp_path / "s.duckdb"
    tries = {  # started at once, they run side by side
        "missing token": _sweep(cluster, store, "--address", cluster.address, home=_home(tmp_path, None)),
        "wrong token": _sweep(cluster, store, "--address", cluster.address, "--ray-token-file", str(wrong),
                              home=_home(tmp_path, None)),
    }
    # Meanwhile, in this process: an address nothing listens on fails before Ray is asked anything.
    if ray.is_initialized():  # a local Ray left by another test would take the sweep
        ray.shutdown()
    res = CliRunner().invoke(app, ["sweep", *SWEEP, "--store", str(store), "-q", "--address",
                                   f"127.0.0.1:{free_port()}"], env={"COLUMNS": "400"})
    said = {"unreachable": res.output.strip()}
    assert res.exit_code == 2 and len(said["unreachable"].splitlines()) == 1, res.output
    for name, proc in tries.items():
        out, err = proc.communicate(timeout=60)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        print(f"{name}: exit status {proc.returncode}: {err.strip()}")
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, out, err)
        said[name] = lines[0]
    print(f"unreachable: exit status {res.exit_code}: {said['unreachable']}")
    assert "requires an auth token and none was found" in said["missing token"]
    assert "ray get-auth-token" in said["missing token"] and "--ray-token-file" in said["missing token"]
    assert f"rejected the auth token from --ray-token-file {wrong}" in said["wrong token"]
    assert said["unreachable"].startswith("error: cannot reach a Ray cluster at 127.0.0.1:")
    assert "(connection refused)" in said["unreachable"]
    assert _runs(store) == []  # checked before the sweep wrote anything


class CellWatch:
    """Which cells a node runs, from its worker processes: Ray titles a worker after the task it runs
    (``ray::_run_task``), and ``ray::IDLE`` between tasks."""

    def __init__(self, node):
        self.node, self.running, self.starts = node, set(), 0

    def look(self) -> bool:
        """True while the node runs a cell; counts each cell start seen."""
        now = set()
        for proc in self.node.family():
            try:
                if "ray::_run_task" in " ".join(proc.cmdline()):
                    now.add(proc.pid)
            except psutil.Error:
                continue
        self.starts += len(now - self.running)
        self.running = now
        return bool(now)


def test_a_sweep_spreads_over_the_nodes_and_survives_losing_one(cluster, tmp_path):
    head, worker = cluster.nodes
    head_id, worker_id = head.node_id(), worker.node_id()
    store = tmp_path / "s.duckdb"
    t0 = time.perf_counter()
    # On the head machine a driver needs nothing but Ray's default token file (~/.ray/auth_token).
    driver = _sweep(cluster, store, "--address", cluster.address,
                    home=_home(tmp_path, cluster.token_file.read_text()))
    # Kill the worker node once it has finished a cell (seen in the store, read once a second, or as a second
    # cell start in the process table), while it runs the next; or 5 s after, if no next one came.
    watch, killed_at, next_read, done_there = CellWatch(worker), None, 0.0, None
    while driver.poll() is None and time.perf_counter() - t0 < 150:
        busy = watch.look()
        if done_there is None and watch.starts >= 2:
            done_there = time.perf_counter()
        if done_there is None and time.perf_counter() > next_read:
            next_read = time.perf_counter() + 1.0
            if any(r["node_id"] == worker_id for r in _runs(store)):
                done_there = time.perf_counter()
        if done_there is not None and (busy or time.perf_counter() - done_there > 5):
            worker.kill()
            killed_at, killed_busy = time.perf_counter() - t0, busy
            break
        time.sleep(0.1)
    at_kill = _runs(store)
    before = {r["id"]: r["node_id"] for r in at_kill if r["status"] == "finished"}
    in_flight = {r["id"] for r in at_kill if r["status"] == "running"}
    out, err = driver.communicate(timeout=150)
    seconds = time.perf_counter() - t0
    assert killed_at is not None, f"the worker node never finished a cell: {out} {err}"

    rows = _runs(store)
    finished = [r for r in rows if r["status"] == "finished"]
    per_node = {name: sum(r["node_id"] == nid for r in finished) for name, nid in (("head", head_id),
                                                                                     ("worker", worker_id))}
    print(f"sweep of {CELLS} cells: {seconds:.1f} s (driver start to exit), worker node killed at {killed_at:.1f} s "
          f"({'running a cell' if killed_busy else 'idle'}); "
          f"cells finished per node {per_node}, failed {len(rows) - len(finished)}, finished before the kill "
          f"{len(before)}\n{out}{err}")
    assert driver.returncode in (0, 1), err  # 1: some cell failed
    assert len({r["cell_key"] for r in rows}) == len(rows) == CELLS  # one row per cell
    assert all(r["status"] in ("finished", "failed") for r in rows)  # none left running
    assert per_node["head"] and per_node["worker"] and sum(per_node.values()) == len(finished)  # on both nodes
    assert cluster.ns is None or all(r["node_host"] == "127.0.0.1" for r in finished)
    # What had finished when the worker died is kept, where it ran; the cells then in flight (the worker's was
    # retried by Ray) finished on the head, or failed; no cell started later ran on the dead node.
    assert {r["id"]: r["node_id"] for r in finished if r["id"] in before} == before
    assert all(r["node_id"] == head_id for r in finished if r["id"] in in_flight)
    assert all(r["node_id"] == head_id for r in finished if r["id"] not in before.keys() | in_flight)
    assert all(r["node_id"] is None and r["error"] for r in rows if r["status"] == "failed")

    # The same spec again, from a driver given the token file: finished cells are skipped, the rest run.
    again = _sweep(cluster, store, "--address", cluster.address, "--ray-token-file", str(cluster.token_file),
                   home=_home(tmp_path, None))
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert {r["cell_key"] for r in Store(store).runs(status="finished")} == {r["cell_key"] for r in rows}
    assert len(Store(store).runs(status="finished")) == CELLS  # no finished cell ran twice


# Canned texts of what Ray prints, for the cases a single machine with one Ray cannot produce.
RAY_STATUS_VERSION = ("RuntimeError: Ray version mismatch: cluster has Ray version 2.59.0 but local Ray version "
                      "is 2.60.0\n")
RAY_INIT_VERSION = ("Version mismatch: The cluster was started with:\n    Ray: 2.60.0\n    Python: 3.11.2\n"
                    "This process on node 10.0.0.2 was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n")


def test_a_ray_version_mismatch_is_one_line_naming_the_version_to_install(monkeypatch):
    monkeypatch.setattr("toptune.sweeps.cluster.probe", lambda address, env: classify(1, RAY_STATUS_VERSION))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ClusterError) as info:
        auth_settings("10.0.0.1:6379")
    assert "\n" not in str(info.value) and "cluster has Ray version 2.59.0" in str(info.value)
    assert "pip install ray==2.59.0" in str(info.value)
    python = str(init_error("10.0.0.1:6379", RuntimeError(RAY_INIT_VERSION), ""))
    assert "\n" not in python and "cluster Ray 2.60.0, Python 3.11.2; this driver Ray 2.60.0, Python 3.11.7" in python


def test_the_token_is_found_where_ray_looks(monkeypatch, tmp_path):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_token() is None
    default = _home(tmp_path / "h", "t" * 32) / ".ray" / "auth_token"
    monkeypatch.setenv("HOME", str(default.parent.parent))
    assert find_token().source == str(default)
    path = tmp_path / "token"
    path.write_text("p" * 32)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert find_token().source == f"RAY_AUTH_TOKEN_PATH={path}"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "e" * 32)
    assert find_token().source == "RAY_AUTH_TOKEN"
    given = find_token(path)  # --ray-token-file comes first, and hides RAY_AUTH_TOKEN from Ray
    assert given.env == {"RAY_AUTH_TOKEN_PATH": str(path.resolve()), "RAY_AUTH_TOKEN": None}
    path.write_text("")
    with pytest.raises(ClusterError, match="token file is empty"):
        find_token(path)


def test_an_address_nothing_listens_on_fails_at_once():
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:\d+ \(connection refused\)"):
        check_reachable(f"127.0.0.1:{free_port()}")
    assert time.perf_counter() - t0 < 1
    with pytest.raises(ClusterError, match="is not HOST:PORT"):
        check_reachable("head-node")


def test_a_driver_on_a_machine_that_is_no_node_of_the_cluster_is_told_to_join_it():
    # Ray itself would look for a raylet of that cluster in the process table for 60 s.
    with pytest.raises(ClusterError, match=r"no Ray node of the cluster at 10\.0\.0\.1:\d+ runs on this machine"):
        check_local_node(f"10.0.0.1:{free_port()}")
