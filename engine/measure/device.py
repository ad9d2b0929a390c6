"""Device choice and peak-memory measurement, CUDA when present, CPU otherwise."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import ParamError

if TYPE_CHECKING:
    import torch


def resolve_device(requested: str | torch.device | None = "auto") -> torch.device:
    """None or 'auto' means CUDA when present; asking for CUDA without it is an error, not a silent fallback.

    Raises ParamError, which is also a ValueError, for a device torch does not know or CUDA that is absent.
    """
    import torch  # imported here: the rest of this module, and so its importers, need no torch

    if requested is None or requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ParamError(f"unknown device {requested!r}; use device=cpu, cuda or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParamError(f"device '{device}' was requested but CUDA is not available here; "
                         "use device=cpu or device=auto")
    return device


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, e.g. a container's share), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_workers(requested: int | None, device: str, batches: int) -> int:
    """DataLoader worker processes decoding images: ``requested``, or for None a choice by device and machine.

    On CUDA the CPU only feeds the GPU, so workers decode in parallel: one per core beside the main
    process, at most 8. On a CPU the forward pass already keeps every core busy and decoding with resizing
    costs a few percent of it per image, so a worker mostly takes cores from the network: on 2 cores one
    worker cost WORKER_COST_2_CORES of extraction's throughput. A CPU gets a worker per 8 cores from 8 on, at
    most 4. Never more workers than batches after the first (each worker starts a process).
    """
    if requested is not None:
        return int(requested)
    cores = cpu_cores()
    wanted = min(8, cores - 1) if str(device).startswith("cuda") else min(4, cores // 8)
    return max(0, min(wanted, batches - 1))


def pick_device(requested: str | None = "auto") -> str:
    """``resolve_device`` as a string ('cpu', 'cuda', 'cuda:1'), for run records and the CLI."""
    return str(resolve_device(requested))


class PeakMemory:
    """Peak memory of a block of work, in MB.

    On CUDA: the allocator's peak (what the GPU had to hold). On CPU: the process's peak resident set
    size, sampled every 20 ms, since torch's CPU allocations are invisible to tracemalloc.
    """

    def __init__(self, device: str):
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample_rss(self) -> None:
        import psutil

        proc = psutil.Process(os.getpid())
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            self._stop.wait(0.02)

    @contextmanager
    def track(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
            try:
                yield self
            finally:
                self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        thread = threading.Thread(target=self._sample_rss, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
