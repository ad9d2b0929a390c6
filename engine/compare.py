"""Fine-tuning vs top-tuning on the same split and seeds: summaries, verdicts, the aggregate report.

The verdict follows the research this project implements: "same" when the top-tuning accuracy is
within ±1 point of fine-tuning's, otherwise whichever is better. The speed-up is fine-tuning's
training time over top-tuning's, feature extraction included.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from uuid import uuid4

from .errors import ParamError
from .features import FeatureCache
from .progress import Progress
from .runner import run
from .spec import RunSpec, resolve
from .store import Store

SAME_BAND_POINTS = 1.0
TOP, FINE = "top-tune", "fine-tune"
VERDICTS = ("same", "fine-tuning better", "top-tuning better")

# Defaults follow common GPU fine-tuning practice; on a CPU the 'cpu' preset keeps a compare to minutes
# (smaller images and fewer epochs, for both methods alike so the comparison stays fair).
PRESETS = {
    "gpu": {"shared": {}, "fine": {}, "seeds": 3},
    "cpu": {"shared": {"image_size": 128}, "fine": {"epochs": 3, "lr": 1e-3}, "seeds": 1},
}


def verdict(delta_points: float, band: float = SAME_BAND_POINTS) -> str:
    """'same' if |Δ| <= band points, else which method is better (Δ = top-tuning − fine-tuning)."""
    if abs(delta_points) <= band + 1e-9:
        return "same"
    return "top-tuning better" if delta_points > 0 else "fine-tuning better"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


@dataclass
class MethodSummary:
    accuracy: float
    accuracy_std: float
    train_time_s: float
    n_runs: int

    @classmethod
    def of(cls, rows: list[dict]) -> "MethodSummary":
        acc, std = _mean_std([r["accuracy"] for r in rows])
        return cls(acc, std, statistics.fmean(r["train_time_s"] for r in rows), len(rows))


@dataclass
class Comparison:
    comparison_id: str
    dataset: str
    backbone: str
    classifier: str
    top: MethodSummary
    fine: MethodSummary
    run_ids: list[str] = field(default_factory=list)

    @property
    def delta_points(self) -> float:
        return 100.0 * (self.top.accuracy - self.fine.accuracy)

    @property
    def speedup(self) -> float:
        return self.fine.train_time_s / max(self.top.train_time_s, 1e-9)

    @property
    def verdict(self) -> str:
        return verdict(self.delta_points)

    @classmethod
    def from_runs(cls, rows: list[dict]) -> "Comparison | None":
        """Summarise one comparison's finished runs; None while either method has none."""
        top = [r for r in rows if r["method"] == TOP and r["status"] == "finished"]
        fine = [r for r in rows if r["method"] == FINE and r["status"] == "finished"]
        if not top or not fine:
            return None
        first = top[0]
        return cls(first["comparison_id"], first["dataset"], first["backbone"], first["classifier"],
                   MethodSummary.of(top), MethodSummary.of(fine), [r["id"] for r in top + fine])


def _preset(name: str) -> dict:
    if name == "auto":
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PRESETS:
        raise ParamError(f"unknown preset '{name}' (auto, {', '.join(PRESETS)})")
    return {"name": name, **PRESETS[name]}


def plan(dataset: str, backbone: str, classifier: str = "kernel", seeds: int | None = None,
         shared: dict | None = None, top: dict | None = None, fine: dict | None = None,
         preset: str = "auto") -> list[RunSpec]:
    """The specs of a comparison (top-tune then fine-tune per seed), validated before anything runs."""
    p = _preset(preset)
    n_seeds = seeds if seeds is not None else p["seeds"]
    if n_seeds < 1:
        raise ParamError(f"seeds must be >= 1, got {n_seeds}")
    common = {**p["shared"], **(shared or {})}
    specs = []
    for seed in range(n_seeds):
        specs.append(RunSpec(TOP, backbone, dataset, classifier, {**common, **(top or {})}, seed))
        specs.append(RunSpec(FINE, backbone, dataset, None, {**common, **p["fine"], **(fine or {})}, seed))
    for spec in specs[:2]:
        resolve(spec)
    return specs


def compare(specs: list[RunSpec], store: Store, *, cache: FeatureCache | None = None,
            progress: Progress | None = None, comparison_id: str | None = None) -> Comparison:
    """Run the planned specs, linked by one comparison_id, and summarise them."""
    comparison_id = comparison_id or uuid4().hex[:12]
    for spec in specs:
        (progress or Progress()).note(f"[{comparison_id}] {spec.method} seed {spec.seed}")
        run(spec, store, cache=cache, progress=progress, links={"comparison_id": comparison_id})
    return Comparison.from_runs(store.runs(comparison_id=comparison_id))


def comparisons(store: Store) -> list[Comparison]:
    """Every complete comparison in the store, oldest first."""
    groups: dict[str, list[dict]] = {}
    for row in reversed(store.runs(linked_by="comparison_id")):
        groups.setdefault(row["comparison_id"], []).append(row)
    return [c for c in (Comparison.from_runs(rows) for rows in groups.values()) if c is not None]


@dataclass
class Aggregate:
    group: str
    n: int
    counts: dict
    speedup_min: float
    speedup_median: float
    speedup_max: float


def aggregate(items: list[Comparison]) -> list[Aggregate]:
    """Verdict counts and speed-up range per backbone, then overall (group 'all')."""
    groups: dict[str, list[Comparison]] = {}
    for c in items:
        groups.setdefault(c.backbone, []).append(c)
    if items:
        groups["all"] = list(items)
    out = []
    for name, cs in groups.items():
        speedups = [c.speedup for c in cs]
        out.append(Aggregate(name, len(cs), {v: sum(c.verdict == v for c in cs) for v in VERDICTS},
                             min(speedups), statistics.median(speedups), max(speedups)))
    return out
