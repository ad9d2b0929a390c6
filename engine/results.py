"""RunResult: what one run produced, as plain data. Methods return it; the store's result columns are
its scalar fields, so a new figure is one field here (and a migration adding its column)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class RunResult:
    accuracy: float | None
    train_time_s: float
    extract_time_s: float | None
    fit_time_s: float
    predict_time_s: float | None
    trained_params: int
    n_train: int
    n_test: int
    n_classes: int
    feature_dim: int
    cache_hit: bool | None
    pretrain_source: str | None
    params: dict
    info: dict
    metrics: dict | None = None  # method-specific figures beyond accuracy (e.g. purity for clustering)
    # Measured around the method by the runner, which knows the device and watches memory and power.
    device: str | None = None
    peak_memory_mb: float | None = None
    energy_kwh: float | None = None
    co2_g: float | None = None
    energy_source: str | None = None
    model_bytes: int | None = None  # the saved model's files beside the store (None: no model was saved)
    # Where a sweep cell ran: the Ray node's id and host (None outside sweeps).
    node_id: str | None = None
    node_host: str | None = None
    # Not columns: per-sample and per-epoch rows go to their own tables, artifacts beside the store.
    y_true: np.ndarray = field(default=None, repr=False, metadata={"column": False})
    y_pred: np.ndarray = field(default=None, repr=False, metadata={"column": False})
    samples: np.ndarray = field(default=None, repr=False, metadata={"column": False})
    epochs: list = field(default_factory=list, repr=False, metadata={"column": False})
    # Per-run tables too large for the store (e.g. latent codes), written beside it.
    artifacts: dict = field(default_factory=dict, repr=False, metadata={"column": False})
    # The trained model (``toptune.models.ModelFiles``), written beside the store as ``<run id>/model/``.
    model: object = field(default=None, repr=False, metadata={"column": False})

    def record(self) -> dict:
        """The store's columns for this result."""
        return {name: getattr(self, name) for name in result_columns()}


def result_columns() -> tuple[str, ...]:
    """The runs-table columns a result fills in, in field order."""
    return tuple(f.name for f in fields(RunResult) if f.metadata.get("column", True))
