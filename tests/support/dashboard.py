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
        empty = Path(str(path) + ".empty")  # exists, so the run is recorded, and fails as it loads: no classes
        empty.mkdir(exist_ok=True)
        broken = RunSpec("top-tune", BACKBONE, "imagefolder", "ridge", {**TINY, "dataset.path": str(empty)})
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


@pytest.fixture
def launch(tmp_path, monkeypatch):
    """The Launch page on a fresh store, with worker starts recorded instead of spawned: (page, store, starts)."""
    from toptune import jobs

    path = tmp_path / "runs.duckdb"
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    started = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda p: started.append(str(p)))
    at = open_page("launch")
    assert not at.exception and not at.error
    return at, path, started


def field(at: AppTest, suffix: str):
    """A Launch form widget of a parameter, by the end of its key ('params.max_train', 'top.classifier.M')."""
    widgets = [w for kind in ("text_input", "number_input", "selectbox", "checkbox") for w in getattr(at, kind)]
    (match,) = [w for w in widgets if (w.key or "").endswith("." + suffix)]
    return match


def submit(at: AppTest) -> AppTest:
    """Press the form's submit button (the first button of the page) and run the page."""
    return at.button[0].click().run()


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


def write_comparison(store: Store, label: str, top: tuple[float, float], fine: tuple[float, float], *,
                     image_size: int = 224, epochs: int = 3, preset: str = "cpu", seeds: int = 1,
                     dataset: str = "digits", folder: str | None = None, classifier: str = "ridge",
                     backbone: str = "efficientnet_lite0") -> str:
    """A comparison written straight into the store (no training): per seed a top-tuning and a fine-tuning run
    with these (accuracy, training time) figures and settings; returns its comparison id. ``folder`` is the
    data's path, which tells two folders of the same name apart."""
    from uuid import uuid4

    comparison_id = uuid4().hex[:12]
    info = {"plan": {"preset": preset, "seeds": seeds}, **({"dataset_path": folder} if folder else {})}
    for seed in range(seeds):
        for method, (accuracy, seconds) in (("top-tune", top), ("fine-tune", fine)):
            run = {"run": {"image_size": image_size, **({"epochs": epochs} if method == "fine-tune" else {})},
                   **({"dataset": {"path": folder}} if folder else {})}
            head = classifier if method == "top-tune" else None
            run_id = store.start_run({"method": method, "backbone": backbone, "dataset": dataset, "classifier": head,
                                      "dataset_label": label, "seed": seed, "params": run, "info": info,
                                      "comparison_id": comparison_id})
            store.finish_run(run_id, {"accuracy": accuracy + 0.002 * seed, "train_time_s": seconds})
    return comparison_id
