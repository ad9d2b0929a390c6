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

from . import registry
from .data import dataset_label
from .errors import ToptuneError
from .features.cache import FeatureCache
from .measure.device import PeakMemory, pick_device
from .measure.energy import PowerMeter
from .methods import get_method
from .models.files import write as write_model
from .progress import Progress, reporting
from .results import RunResult
from .spec import ResolvedSpec, RunSpec, resolve
from .store import Store
from .store.artifacts import model_folder, write_artifacts

__all__ = ["RunResult", "execute", "preflight", "record_failure", "record_result", "run",
           "start_record"]


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
    cache = cache if cache is not None else FeatureCache()
    with memory.track(), power.track(), reporting(progress):  # plugins' notes (current()) reach the caller
        result = method.execute(rs, cache, device, progress)
    failures = getattr(cache, "failures", None)
    if failures:  # the cache is an optimisation: the run went on without it, and says so
        result.info["feature_cache"] = failures[0]
    energy = power.reading.estimate(result.train_time_s, run["carbon_intensity"])
    return dataclasses.replace(result, peak_memory_mb=memory.peak_mb, device=device, **energy)


def start_record(rs: ResolvedSpec, plan: dict | None = None) -> dict:
    """A run's row as it starts: what it is, where its data lives (the dataset's label, and the folder's
    absolute path in its info) and, for a run of a study, the settings the study was planned with."""
    spec = rs.spec
    label, where = dataset_label(spec.dataset, rs.params.get("dataset", {}))
    info = {"python": platform.python_version(), **({"dataset_path": where} if where else {}),
            **({"plan": plan} if plan else {})}
    return {"method": spec.method, "backbone": spec.backbone, "classifier": spec.classifier,
            "dataset": spec.dataset, "dataset_label": label, "seed": spec.seed, "params": rs.params,
            "spec": spec.to_dict(), "device": pick_device(rs.params["run"]["device"]), "info": info}


def record_result(store: Store, run_id: str, result: RunResult, progress: Progress | None = None) -> None:
    """Write a finished run: artifacts and model beside the store, then its row, predictions and epochs.

    Files beside the store are a bonus: when one cannot be written (a full or read-only disk, a path in the
    way), the run is still recorded, with the reason in its info and one note on ``progress``.
    """
    progress = progress or Progress()
    try:
        write_artifacts(store.path, run_id, result.artifacts)
    except (OSError, ToptuneError) as exc:
        result.info["artifacts"] = f"not written: {optional_failure(exc)}"
        progress.note(f"warning: the run's tables were not written beside the store ({optional_failure(exc)}); "
                      "the run is recorded without them")
    if result.model is not None:
        try:
            result.model_bytes = write_model(model_folder(store.path, run_id), result.model)
        except (OSError, ToptuneError) as exc:
            result.info["model"] = f"not saved: {optional_failure(exc)}"
            progress.note(f"warning: the run's model was not saved ({optional_failure(exc)}); the run is recorded "
                          "without it")
    store.finish_run(run_id, result.record(), y_true=result.y_true, y_pred=result.y_pred, samples=result.samples,
                     epochs=result.epochs)


def record_failure(store: Store, run_id: str, exc: BaseException) -> None:
    """Mark a run interrupted (Ctrl-C, cancel) or failed with a one-line reason."""
    if isinstance(exc, KeyboardInterrupt):
        store.interrupt_run(run_id, str(exc) or "interrupted by the user")
    else:
        store.fail_run(run_id, str(exc) if isinstance(exc, ToptuneError) else f"{type(exc).__name__}: {exc}")


def preflight(rs: ResolvedSpec) -> None:
    """Cheap checks of a run's plugins before anything is written: each plugin that has a ``check()`` (an unknown
    timm model, a missing weights file, a missing data folder) is created and checked; errors raise here."""
    for kind in ("backbone", "dataset", "classifier"):
        name = getattr(rs.spec, kind)
        if kind in rs.params and name and callable(getattr(registry.load(kind, name), "check", None)):
            registry.create(kind, name, **rs.params[kind]).check()


def optional_failure(exc: BaseException) -> str:
    """Why an optional write failed, as a short phrase."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror.lower()}: {exc.filename}" if exc.filename else exc.strerror.lower()
    return str(exc) or type(exc).__name__


def run(spec: RunSpec, store: Store | None = None, *, cache: FeatureCache | None = None,
        progress: Progress | None = None, links: dict | None = None, plan: dict | None = None
        ) -> tuple[str, RunResult]:
    """Validate, record as running, execute, record the outcome. Returns (run id, result).

    ``links`` are grouping columns set by the caller, e.g. ``{"comparison_id": ...}``; ``plan`` the settings
    a study planned the run with (its preset, seeds), kept in the run's info.
    """
    rs = resolve(spec)  # bad names or params: raise before anything is written
    preflight(rs)  # a missing folder, weights file or model: raise before anything is written too
    store = store or Store()
    run_id = store.start_run({**start_record(rs, plan), **(links or {})})
    try:
        result = execute(rs, cache=cache, progress=progress)
        record_result(store, run_id, result, progress)
    except BaseException as exc:
        record_failure(store, run_id, exc)
        raise
    return run_id, result
