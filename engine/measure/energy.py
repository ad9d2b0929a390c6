"""Energy and CO2 estimates for a run: training wall time × the device's average power.

codecarbon's offline tracker supplies the power: NVML for NVIDIA GPUs, RAPL or its CPU database for
CPUs, plus RAM. Multiplying the average power of this run by ``train_time_s`` keeps the estimate
consistent with the reported training time, cached feature extraction included. Every figure is an
estimate and is stored with a label saying how it was made.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

FALLBACK_WATTS_PER_CORE = 10.0


@dataclass
class PowerReading:
    watts: float
    source: str

    def estimate(self, seconds: float, carbon_intensity: float) -> dict:
        kwh = self.watts * seconds / 3.6e6
        return {"energy_kwh": kwh, "co2_g": kwh * carbon_intensity,
                "energy_source": f"estimate: {self.watts:.1f} W × train time ({self.source}); "
                                 f"{carbon_intensity:g} gCO2e/kWh"}


def _threads() -> int:
    import torch

    return max(1, torch.get_num_threads())


class PowerMeter:
    """Average power drawn while a block of work runs."""

    def __init__(self, cpu_watts_per_core: float | None = None):
        self.cpu_watts_per_core = cpu_watts_per_core
        self.reading: PowerReading | None = None

    @contextmanager
    def track(self):
        tracker = self._start()
        t0 = time.perf_counter()
        try:
            yield self
        finally:
            self.reading = self._stop(tracker, time.perf_counter() - t0)

    def _start(self):
        try:
            from codecarbon import OfflineEmissionsTracker

            kwargs = {}
            if self.cpu_watts_per_core is not None:
                kwargs["force_cpu_power"] = self.cpu_watts_per_core * _threads()
            # codecarbon warns at every start that several trackers may run; runs print their own summary.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            tracker = OfflineEmissionsTracker(country_iso_code="USA", output_methods=[], log_level="error",
                                              tracking_mode="process", measure_power_secs=5,
                                              allow_multiple_runs=True, **kwargs)
            tracker.start()
            return tracker
        except Exception:  # an estimate must never fail a run
            return None

    def _stop(self, tracker, seconds: float) -> PowerReading:
        if tracker is not None:
            try:
                tracker.stop()
                data = tracker.final_emissions_data
                if data.duration > 0 and data.energy_consumed > 0:
                    forced = " with the given CPU watts per core" if self.cpu_watts_per_core is not None else ""
                    return PowerReading(data.energy_consumed * 3.6e6 / data.duration, f"codecarbon{forced}")
            except Exception:
                pass
        per_core = self.cpu_watts_per_core if self.cpu_watts_per_core is not None else FALLBACK_WATTS_PER_CORE
        return PowerReading(per_core * _threads(), f"{per_core:g} W per core × {_threads()} threads")
