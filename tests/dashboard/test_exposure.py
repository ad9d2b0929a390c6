"""Serving the dashboard beyond this machine: the access token, read-only mode, the data root, and the warning
for a non-loopback address."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.dashboard import APP, texts
from toptune.cli import dashboard as cli_dashboard
from toptune.dashboard.launch import form as lf
from toptune.dashboard.launch import sweep as launch_sweep
from toptune.errors import ParamError
from toptune.params import DATA_ROOT_ENV, confine
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store

TOKEN = "correct-horse-battery-staple"


def _app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(query or {})
    at.run()
    return at


@pytest.fixture
def token(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPTUNE_DASHBOARD_TOKEN", TOKEN)
    Store(tmp_path / "store.duckdb").create()


def test_without_the_token_no_page_is_shown(token):
    at = _app()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Access token"]
    assert "Runs" not in [t.value for t in at.title] and not at.dataframe


def test_a_wrong_token_is_refused(token):
    at = _app({"token": "guess"})
    assert "Wrong access token." in texts(at) and not at.dataframe
    assert "token" not in at.query_params  # never left in the address bar


def test_the_token_in_the_url_opens_the_session_and_leaves_the_url(token):
    at = _app({"token": TOKEN})
    assert not at.exception and not [t for t in at.text_input if t.label == "Access token"]
    assert "token" not in at.query_params
    at.run()  # the next rerun of the same session needs it no more
    assert not [t for t in at.text_input if t.label == "Access token"]


def test_the_token_form_opens_the_session(token):
    at = _app()
    at.text_input(key="token_input").input(TOKEN)
    at.button[0].click().run()
    assert not [t for t in at.text_input if t.label == "Access token"] and not at.exception


def test_read_only_leaves_out_launch(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPTUNE_DASHBOARD_READ_ONLY", "1")
    at = _app()
    assert "Read-only" in texts(at) and not at.exception
    with pytest.raises(ValueError, match="launch"):  # Streamlit serves no page outside the navigation
        at.switch_page("views/launch.py").run()


def test_a_job_outside_the_data_root_is_refused_when_queued_and_when_run(monkeypatch, tmp_path):
    root, outside = tmp_path / "data", tmp_path / "private"
    root.mkdir(), outside.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    with pytest.raises(ParamError, match="outside the data folder"):
        lf.run_payload("top-tune", "efficientnet_lite0", "imagefolder", "ridge", 0,
                       {"params": {"dataset.path": str(outside)}})
    with pytest.raises(ParamError, match="outside the data folder"):
        launch_sweep.payload(launch_sweep.from_form(["imagefolder"], ["efficientnet_lite0"], ["top-tune"], ["ridge"],
                                                    1, f"dataset.path={outside}"))
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(ParamError, match="outside the data folder"):  # the worker's path: runner.run
        run(RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge", {"backbone.weights": str(outside / "w.pt")}),
            store)
    assert not store.path.exists()


def test_confine_follows_links_and_refuses_following_them_out(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    os.symlink(tmp_path, root / "escape")
    confine({"dataset": {"path": str(root / "images"), "root": None}, "backbone": {"weights": "bundled"}}, root)
    for params in ({"dataset": {"path": str(root / "escape")}}, {"dataset": {"path": str(root / ".." / "x")}},
                   {"backbone": {"weights": "/etc/passwd"}}, {"dataset": {"path": str(root), "follow_links": True}}):
        with pytest.raises(ParamError):
            confine(params, root)
    confine({"dataset": {"path": "/etc"}})  # no root set: nothing is confined


@pytest.mark.parametrize("address, warns", [("localhost", False), ("127.0.0.1", False), ("::1", False),
                                            ("0.0.0.0", True), ("192.168.1.5", True), ("example.org", True)])
def test_a_non_loopback_address_warns(address, warns, capsys):
    settings = cli_dashboard.exposure(address, None, False, None)
    assert settings == {} and ("not a loopback address" in capsys.readouterr().err) == warns


def test_settings_reach_the_server_through_its_environment(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: seen.update(argv=argv, env=env))
    settings = cli_dashboard.exposure("localhost", TOKEN, True, tmp_path)
    cli_dashboard.serve(tmp_path / "s.duckdb", 8600, "localhost", settings)
    assert seen["env"]["TOPTUNE_DASHBOARD_TOKEN"] == TOKEN and TOKEN not in " ".join(seen["argv"])
    assert seen["env"]["TOPTUNE_DASHBOARD_READ_ONLY"] == "1"
    assert seen["env"][DATA_ROOT_ENV] == str(tmp_path.resolve())
