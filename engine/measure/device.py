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
