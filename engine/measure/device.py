"""Device choice and peak-memory measurement, CUDA when present, CPU otherwise."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from ..errors import ParamError


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ParamError(f"device '{requested}' requested but CUDA is not available here; use --param device=cpu")
    return requested


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
