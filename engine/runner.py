"""Running a spec: ``execute`` computes a RunResult; ``run`` also records it in a store.

``execute`` knows nothing about stores, CLIs or workers, so any caller (CLI, dashboard job, Ray task)
can run a spec and decide where the result goes. ``run`` is the single-process recording path:
validate first (bad input writes nothing), insert the run as running, then mark it finished, failed
or interrupted.
"""

from __future__ import annotations

import dataclasses
import platform

import numpy as np

from .errors import ToptuneError
from .features.cache import FeatureCache
from .measure.device import PeakMemory, pick_device
from .measure.energy import PowerMeter
from .methods import get_method
from .models.files import write as write_model
from .models.model import model_folder
from .progress import Progress
from .results import RunResult
from .spec import ResolvedSpec, RunSpec, resolve
from .store import Store
from .store.artifacts import write_artifacts

__all__ = ["RunResult", "execute", "record_failure", "record_result", "run", "start_record"]


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
    method = get_method(rs.method)
    with memory.track(), power.track():
        result = method.execute(rs, cache if cache is not None else FeatureCache(), device, progress)
    energy = power.reading.estimate(result.train_time_s, run["carbon_intensity"])
    return dataclasses.replace(result, peak_memory_mb=memory.peak_mb, device=device, **energy)


def start_record(rs: ResolvedSpec) -> dict:
    spec = rs.spec
    return {"method": spec.method, "backbone": spec.backbone, "classifier": spec.classifier,
            "dataset": spec.dataset, "seed": spec.seed, "params": rs.params, "spec": spec.to_dict(),
            "device": pick_device(rs.params["run"]["device"]), "info": {"python": platform.python_version()}}


def record_result(store: Store, run_id: str, result: RunResult) -> None:
    """Write a finished run: artifacts and model beside the store, then its row, predictions and epochs.

    Files beside the store are a bonus: when one cannot be written (a full or read-only disk), the run is still
    recorded, with the reason in its info.
    """
    try:
        write_artifacts(store.path, run_id, result.artifacts)
    except OSError as exc:
        result.info["artifacts"] = f"not written: {exc}"
    if result.model is not None:
        try:
            result.model_bytes = write_model(model_folder(store.path, run_id), result.model)
        except OSError as exc:
            result.info["model"] = f"not saved: {exc}"
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
