"""Running a spec: ``execute`` computes a RunResult; ``run`` also records it in a store.

``execute`` knows nothing about stores, CLIs or workers, so any caller (CLI, dashboard job, Ray task)
can run a spec and decide where the result goes. ``run`` is the single-process recording path:
validate first (bad input writes nothing), insert the run as running, then mark it finished, failed
or interrupted.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import numpy as np

from .artifacts import write_artifacts
from .cluster_method import cluster
from .device import PeakMemory, pick_device
from .energy import PowerMeter
from .errors import ToptuneError
from .features import FeatureCache
from .fine_tuning import fine_tune
from .progress import Progress
from .spec import ResolvedSpec, RunSpec, resolve
from .store import Store
from .top_tuning import top_tune

METHODS = {"top-tune": top_tune, "fine-tune": fine_tune, "cluster": cluster}


@dataclass
class RunResult:
    accuracy: float
    train_time_s: float
    extract_time_s: float | None
    fit_time_s: float
    predict_time_s: float
    peak_memory_mb: float
    trained_params: int
    n_train: int
    n_test: int
    n_classes: int
    feature_dim: int
    cache_hit: bool | None
    device: str
    pretrain_source: str | None
    params: dict
    info: dict
    energy_kwh: float | None = None
    co2_g: float | None = None
    energy_source: str | None = None
    metrics: dict | None = None  # method-specific figures beyond accuracy (e.g. purity for clustering)
    y_true: np.ndarray = field(default=None, repr=False)
    y_pred: np.ndarray = field(default=None, repr=False)
    samples: np.ndarray = field(default=None, repr=False)
    epochs: list = field(default_factory=list, repr=False)
    # Per-run tables too large for the store (e.g. latent codes), written beside it by ``run``.
    artifacts: dict = field(default_factory=dict, repr=False)

    def record(self) -> dict:
        """The store's columns for this result."""
        skip = {"y_true", "y_pred", "samples", "epochs", "artifacts"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


def _seed_everything(seed: int, device: str) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def execute(spec: RunSpec | ResolvedSpec, *, cache: FeatureCache | None = None,
            progress: Progress | None = None) -> RunResult:
    """Run a spec and return its result; touches no store."""
    rs = spec if isinstance(spec, ResolvedSpec) else resolve(spec)
    run = rs.params["run"]
    progress = progress or Progress()
    device = pick_device(run["device"])
    _seed_everything(rs.spec.seed, device)
    memory, power = PeakMemory(device), PowerMeter(run["cpu_watts_per_core"])
    with memory.track(), power.track():
        out = METHODS[rs.method](rs, cache if cache is not None else FeatureCache(), device, progress)
    out.update(power.reading.estimate(out["train_time_s"], run["carbon_intensity"]))
    return RunResult(peak_memory_mb=memory.peak_mb, device=device, **out)


def start_record(rs: ResolvedSpec) -> dict:
    spec = rs.spec
    return {"method": spec.method, "backbone": spec.backbone, "classifier": spec.classifier,
            "dataset": spec.dataset, "seed": spec.seed, "params": rs.params, "spec": spec.to_dict(),
            "device": pick_device(rs.params["run"]["device"]), "info": {"python": platform.python_version()}}


def record_result(store: Store, run_id: str, result: RunResult) -> None:
    """Write a finished run: artifacts beside the store, then its row, predictions and epochs."""
    write_artifacts(store.path, run_id, result.artifacts)
    store.finish_run(run_id, result.record(), y_true=result.y_true, y_pred=result.y_pred, samples=result.samples,
                     epochs=result.epochs)


def record_failure(store: Store, run_id: str, exc: BaseException) -> None:
    """Mark a run interrupted (Ctrl-C, cancel) or failed with a one-line reason."""
    if isinstance(exc, KeyboardInterrupt):
        store.interrupt_run(run_id, str(exc) or "interrupted by the user")
    else:
        store.fail_run(run_id, str(exc) if isinstance(exc, ToptuneError) else f"{type(exc).__name__}: {exc}")


def run(spec: RunSpec, store: Store | None = None, *, cache: FeatureCache | None = None,
        progress: Progress | None = None, links: dict | None = None) -> tuple[str, RunResult]:
    """Validate, record as running, execute, record the outcome. Returns (run id, result).

    ``links`` are grouping columns set by the caller, e.g. ``{"comparison_id": ...}``.
    """
    rs = resolve(spec)  # bad names or params: raise before anything is written
    store = store or Store()
    run_id = store.start_run({**start_record(rs), **(links or {})})
    try:
        result = execute(rs, cache=cache, progress=progress)
        record_result(store, run_id, result)
    except BaseException as exc:
        record_failure(store, run_id, exc)
        raise
    return run_id, result
