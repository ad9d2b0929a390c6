"""Shared fixtures: isolated store and cache folders, and fake plugin distributions on sys.path."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import pytest

from toptune import registry


@pytest.fixture(autouse=True)
def _isolated_paths(tmp_path, monkeypatch):
    """No test touches the user's ./toptune.duckdb or ~/.cache/toptune/features."""
    monkeypatch.setenv("TOPTUNE_STORE", str(tmp_path / "store.duckdb"))
    monkeypatch.setenv("TOPTUNE_CACHE_DIR", str(tmp_path / "features"))


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A folder on sys.path where tests install fake distributions; the registry re-discovers."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # for CLI subprocesses
    registry.refresh()
    yield site
    for mod in [m for m, v in sys.modules.items() if getattr(v, "__file__", "") and str(site) in str(v.__file__)]:
        del sys.modules[mod]
    registry.refresh()


@pytest.fixture
def no_network(monkeypatch):
    """Every download fails at once, as offline, whatever the machine running the tests can reach."""
    attempts = []

    def offline(request, *args, **kwargs):
        attempts.append(getattr(request, "full_url", request))
        raise urllib.error.URLError("no network in tests")

    # torchvision.datasets.utils calls urllib.request.urlopen for every download, so this is its one
    # network entry point.
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hf dataset plugin: the Hub counts as unreachable
    return attempts
