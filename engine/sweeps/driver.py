"""Sweeps on Ray: a grid of runs, feature extraction shared, one writer, resumable.

The driver (this process) is the only one that opens the store: Ray workers compute, results travel
back, and the driver records them through the same store code as single runs. Top-tuning cells that
share a (backbone, dataset, preprocessing, subset) get their features from one extraction task whose
result reaches them through Ray's object store, so the grid also works on machines that share no disk.
A cell's id is a digest of its spec and the sweep's a digest of the grid: running the same spec again
skips finished cells. A task whose worker dies is retried once by Ray; a second death fails the cell.
Each result carries the Ray node (id, IP) its cell ran on. Joining a running cluster (``--address``, token
authentication, one-line errors) is ``cluster.join``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

from ..errors import ToptuneError
from ..features.cache import FeatureCache
from ..features.source import sharing_key
from ..methods import get_method
from ..progress import Progress
from ..runner import record_failure, record_result, start_record
from ..spec import ResolvedSpec, resolve
from ..store import Store
from .cluster import join
from .spec import Cell, SweepSpec


@dataclass
class SweepReport:
    sweep_id: str
    total: int
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    interrupted: int = 0
    run_ids: list = field(default_factory=list)
    seconds: float = 0.0


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def _extract_task(rs: ResolvedSpec, cache_dir: str | None, threads: int):
    """Ray task: the features of every split a cell needs, keyed like the feature cache."""
    from ..measure.device import pick_device

    _set_threads(threads)
    device = pick_device(rs.params["run"]["device"])
    return get_method(rs.method).extract(rs, FeatureCache(cache_dir), device, Progress())


def _run_task(rs: ResolvedSpec, features: dict | None, cache_dir: str | None, threads: int):
    """Ray task: one cell, start to result; features (when given) come from the object store."""
    from ..features.cache import PreloadedCache
    from ..runner import execute

    _set_threads(threads)
    cache = PreloadedCache(features or {}, FeatureCache(cache_dir))
    return replace(execute(rs, cache=cache), **where_this_runs())


def where_this_runs() -> dict:
    """The Ray node of the calling task: its id and the IP address Ray knows it by (None outside Ray)."""
    import ray

    if not ray.is_initialized():
        return {"node_id": None, "node_host": None}
    return {"node_id": ray.get_runtime_context().get_node_id(), "node_host": ray.util.get_node_ip_address()}


def feature_group(rs: ResolvedSpec) -> str | None:
    """Cells with the same group share one extraction (the feature cache's own rule); None for methods
    with no shareable feature half."""
    return sharing_key(rs) if get_method(rs.method).extract is not None else None


def finished_cells(store: Store, sweep_id: str) -> set[str]:
    # archived cells count too: archiving hides a result, it does not ask for the cell again
    return {r["cell_key"] for r in store.runs(sweep_id=sweep_id, status="finished", archived=None)}


def _resources(rs: ResolvedSpec, gpus_available: bool, cpus_per_task: int) -> dict:
    if gpus_available and get_method(rs.method).trains_network:
        return {"num_gpus": 1, "num_cpus": cpus_per_task}
    return {"num_cpus": cpus_per_task}


class _Driver:
    def __init__(self, spec: SweepSpec, store: Store, cache_dir, max_concurrent: int, cpus_per_task: int,
                 progress: Progress):
        import ray

        self.ray, self.spec, self.store, self.progress = ray, spec, store, progress
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.max_concurrent, self.cpus = max_concurrent, cpus_per_task
        self.gpus = ray.cluster_resources().get("GPU", 0) > 0
        self.report = SweepReport(spec.sweep_id, 0)
        # Extraction is a forward pass over the whole dataset: on a cluster with GPUs it gets one too.
        self.extract = ray.remote(_extract_task).options(max_retries=1, num_cpus=cpus_per_task,
                                                         num_gpus=1 if self.gpus else 0)
        self.run_one = ray.remote(_run_task)
        self.features: dict[str, object] = {}
        self.in_flight: dict[object, tuple[Cell, str]] = {}

    def _start(self, cell: Cell, rs: ResolvedSpec) -> str:
        links = {"sweep_id": self.spec.sweep_id, "cell_key": cell.key}
        run_id = self.store.start_run({**start_record(rs), **links})
        self.report.run_ids.append(run_id)
        return run_id

    def _invalid(self, cell: Cell, exc: ToptuneError) -> None:
        """A cell whose spec does not validate fails alone, recorded like any failed run."""
        run_id = self.store.start_run({"method": cell.spec.method, "backbone": cell.spec.backbone,
                                       "classifier": cell.spec.classifier, "dataset": cell.spec.dataset,
                                       "seed": cell.spec.seed, "spec": cell.spec.to_dict(),
                                       "sweep_id": self.spec.sweep_id, "cell_key": cell.key})
        self.report.run_ids.append(run_id)
        record_failure(self.store, run_id, exc)
        self.report.failed += 1
        self._tick()

    def _tick(self) -> None:
        r = self.report
        self.progress.advance()
        self.progress.postfix(f"finished {r.finished + r.skipped} · failed {r.failed} · running {len(self.in_flight)}")

    def _submit(self, cell: Cell, rs: ResolvedSpec) -> None:
        group = feature_group(rs)
        if group is not None and group not in self.features:
            self.features[group] = self.extract.remote(rs, self.cache_dir, self.cpus)
        task = self.run_one.options(max_retries=1, **_resources(rs, self.gpus, self.cpus))
        ref = task.remote(rs, self.features.get(group), self.cache_dir, self.cpus)
        self.in_flight[ref] = (cell, self._start(cell, rs))

    def _collect(self, timeout: float | None) -> None:
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        for ref in ready:
            cell, run_id = self.in_flight.pop(ref)
            try:
                record_result(self.store, run_id, self.ray.get(ref))
                self.report.finished += 1
            except Exception as exc:  # the cell's own error, or its worker died twice
                record_failure(self.store, run_id, _unwrap(exc))
                self.report.failed += 1
            self._tick()

    def interrupt(self) -> None:
        for ref, (_, run_id) in self.in_flight.items():
            self.ray.cancel(ref, force=True)
            self.store.interrupt_run(run_id, "sweep interrupted")
            self.report.interrupted += 1
        self.in_flight.clear()

    def drive(self, todo: list[Cell]) -> None:
        pending = list(todo)
        while pending or self.in_flight:
            while pending and len(self.in_flight) < self.max_concurrent:
                cell = pending.pop(0)
                try:
                    self._submit(cell, resolve(cell.spec))
                except ToptuneError as exc:
                    self._invalid(cell, exc)
            if self.in_flight:
                self._collect(timeout=1.0)


def _unwrap(exc: Exception) -> Exception:
    """The user's error inside Ray's wrapper, so the stored message says what went wrong."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def preflight(spec: SweepSpec) -> None:
    """Load every dataset once before the grid starts (downloading what can be downloaded), so a missing
    one stops the sweep with one clear message instead of failing hundreds of cells."""
    from .. import registry
    from ..errors import DatasetError

    missing = {}
    for name in spec.datasets:
        try:
            registry.create("dataset", name, **_dataset_params(spec, name)).load()
        except DatasetError as exc:
            missing[name] = str(exc)
    if missing:
        first = next(iter(missing))
        raise DatasetError(f"{len(missing)} of {len(spec.datasets)} datasets are not available and could not be "
                           f"downloaded: {', '.join(missing)}. First error: {missing[first]}")


def _dataset_params(spec: SweepSpec, name: str) -> dict:
    """The sweep's scalar dataset params that this dataset declares (for the preflight load)."""
    from .. import registry

    schema = registry.load("dataset", name).params
    out = {}
    for key, value in spec.params.items():
        ns, dot, param = key.partition(".")
        param = param if dot else key
        if (not dot or ns == "dataset") and param in schema and not isinstance(value, list):
            out[param] = value
    return out


def connect(address: str | None = None, num_cpus: int | None = None, token_file=None) -> None:
    """Join a Ray cluster (address or RAY_ADDRESS), else start Ray on this machine.

    Joining checks the address, the auth token (``token_file``, else where Ray looks) and the Ray version
    first, each failure one ``ClusterError`` line (``toptune.sweeps.cluster``)."""
    try:
        import ray
    except ImportError:
        raise ToptuneError("sweeps run on Ray, which is not installed: pip install 'toptune[sweep]'") from None

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    # Workers import toptune from this interpreter's environment; silence Ray's own banners.
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        join(address, token_file, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)


def sweep(spec: SweepSpec, store: Store, *, cache_dir=None, max_concurrent: int | None = None,
          cpus_per_task: int = 1, progress: Progress | None = None, address: str | None = None,
          token_file=None) -> SweepReport:
    """Run every unfinished cell of ``spec`` on Ray; returns counts and the run ids recorded. ``address`` (or
    RAY_ADDRESS) joins a running cluster, ``token_file`` holding its auth token; nothing is written to the
    store before the cluster is joined."""
    cells = spec.cells()
    done = finished_cells(store, spec.sweep_id)
    todo = [c for c in cells if c.key not in done]
    connect(address, token_file=token_file)
    import ray

    slots = int(ray.cluster_resources().get("CPU", 1)) // max(1, cpus_per_task)
    driver = _Driver(spec, store, cache_dir, max_concurrent or max(1, slots), cpus_per_task, progress or Progress())
    driver.report.total, driver.report.skipped = len(cells), len(cells) - len(todo)
    t0 = time.perf_counter()
    # The bar counts the whole grid; cells finished by an earlier run of the spec count as done at once.
    with driver.progress.stage(f"sweep {spec.sweep_id}", len(cells), unit="cell"):
        if driver.report.skipped:
            driver.progress.advance(driver.report.skipped)
            driver.progress.postfix(f"{driver.report.skipped} finished earlier")
        try:
            driver.drive(todo)
        except KeyboardInterrupt:
            driver.interrupt()
            raise
    driver.report.seconds = time.perf_counter() - t0
    return driver.report
