"""Shared pieces of the dashboard tests: a store filled through the real engine, and page helpers.

The store is built once per session with a tiny in-process CNN (a run takes about a second): two
comparisons (ridge over two seeds, logistic over one), a run that failed, and one still running (it
belongs to this test process, so it stays 'running' while the tests read it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.support import plugins
from toptune import registry
from toptune.errors import DatasetError
from toptune.features.cache import FeatureCache
from toptune.runner import run, start_record
from toptune.spec import RunSpec, resolve
from toptune.store import Store
from toptune.studies import compare as cmp

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGES = ("runs", "compare", "clustering", "sweeps", "robustness", "selection", "predict", "launch", "sql", "plugins")
TINY = {"max_train": 120, "max_test": 60, "image_size": 16, "batch_size": 32}
BACKBONE = "dash-tiny-cnn"


class _TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.num_features = 8

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


class TinyBackbone(plugins.TinyBackbone):
    description = "a tiny CNN for dashboard tests"
    net, digest = _TinyNet, "dash-tiny"


def fill_store(path: Path, cache_dir: Path) -> dict:
    """Write the runs described above; returns their ids by role."""
    registry.register_backbone(BACKBONE)(TinyBackbone)
    try:
        store, cache = Store(path), FeatureCache(cache_dir)
        fine = {"epochs": 2, "lr": 3e-3, "warmup_epochs": 0.5}
        ridge = cmp.compare(cmp.plan("digits", BACKBONE, "ridge", 2, TINY, fine=fine, preset="cpu"), store,
                            cache=cache)
        logistic = cmp.compare(cmp.plan("digits", BACKBONE, "logistic", 1, TINY, fine=fine, preset="cpu"), store,
                               cache=cache)
        broken = RunSpec("top-tune", BACKBONE, "imagefolder", "ridge", {**TINY, "dataset.path": str(path) + ".none"})
        with pytest.raises(DatasetError):
            run(broken, store, cache=cache)
        running = store.start_run(start_record(resolve(RunSpec("top-tune", BACKBONE, "digits", "kernel", TINY))))
    finally:
        registry.unregister("backbone", BACKBONE)
    failed = store.runs(status="failed")[0]["id"]
    return {"ridge": ridge, "logistic": logistic, "failed": failed, "running": running}


@pytest.fixture(scope="session")
def filled_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard-store")
    path = folder / "runs.duckdb"
    return path, fill_store(path, folder / "features")


@pytest.fixture
def filled(filled_store, monkeypatch):
    """The filled store as the dashboard's store (TOPTUNE_STORE), and the ids of its runs."""
    path, ids = filled_store
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    return path, ids


def open_page(page: str, query: dict | None = None, timeout: float = 60) -> AppTest:
    """Run the app, switch to ``page`` (a name from PAGES) and run it, with optional URL query params."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.query_params.update(query or {})  # as in a browser, the URL is there from the first run
    at.run()
    if page != PAGES[0]:
        at.switch_page(f"views/{page}.py").run()
    return at


def texts(at: AppTest) -> str:
    """Every markdown, caption, info, error and metric text on the page, for substring checks."""
    parts = []
    for kind in ("markdown", "caption", "info", "error", "warning", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(parts)


def frames(at: AppTest) -> list:
    """The DataFrames the page shows, in order."""
    return [e.value for e in at.dataframe]


def frame_with(at: AppTest, *columns: str):
    """The first DataFrame on the page that has these columns (AppTest does not expose table keys)."""
    return next(f for f in frames(at) if set(columns) <= set(f.columns))


def array(value):
    """A figure's data array: Plotly sends numbers as base64 ('bdata') that from_json leaves encoded."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def charts(at: AppTest) -> list:
    """The Plotly figures on the page, rebuilt from what Streamlit sent to the browser."""
    import plotly.io

    return [plotly.io.from_json(e.proto.spec) for e in at.get("plotly_chart")]
