"""What a method is to the rest of toptune: one row of the ``METHODS`` table.

A method names its run parameters (the schema ``spec.resolve`` validates), says whether it trains a
classifier plugin on features, checks combinations its schema cannot express, may settle the spec
(drop a plugin it does not use), and executes a resolved spec into a ``RunResult``. Everything else
(the CLI's choices, sweeps' classifier axis, the Launch form's fields) reads the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..measure.precision import PRECISION_PARAM
from ..params import Param

# Parameters every method takes.
COMMON_PARAMS = {
    "device": Param("str", "auto", "where the work runs", choices=("auto", "cpu", "cuda")),
    "batch_size": Param("int", 32, "images per batch", min=1, max=4096),
    "num_workers": Param("int", None, "DataLoader worker processes decoding images (default: by device and "
                         "cores: 0 on CPUs under 8 cores, where workers take cores from the network)", min=0, max=64),
    **PRECISION_PARAM,
    "max_train": Param("int", None, "use a fixed stratified subset of at most this many training images", min=2),
    "max_test": Param("int", None, "use a fixed stratified subset of at most this many test images", min=1),
    "image_size": Param("int", None, "input size in pixels instead of the backbone's (e.g. a CPU preset)",
                        min=16, max=1024),
    "cpu_watts_per_core": Param("float", None, "CPU power per busy core for the energy estimate "
                                "(default: codecarbon's figure for this CPU)", min=0.0),
    "carbon_intensity": Param("float", 475.0, "grid carbon intensity in gCO2e/kWh for the CO2 estimate "
                              "(default: world average)", min=0.0),
}
CACHE_PARAM = {"cache": Param("bool", True, "reuse and store extracted features in the feature cache")}


def _no_check(run: dict) -> None:
    return None


def _as_is(spec, params: dict) -> tuple:
    return spec, params


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    params: dict[str, Param]
    # (resolved spec, feature cache, device, progress) -> RunResult
    execute: Callable
    uses_classifier: bool = False
    # Raises ParamError for run-parameter combinations the schema alone allows.
    check: Callable[[dict], None] = _no_check
    # (spec, params) -> (spec, params), after validation: e.g. drop a backbone the run never uses.
    settle: Callable = _as_is
    # The features-only half of a run, {cache key: FeatureSet}, that runs sharing it can reuse (sweeps).
    extract: Callable | None = None
    # Trains a network (a GPU helps it most): sweeps give its cells a GPU on clusters that have one.
    trains_network: bool = False
