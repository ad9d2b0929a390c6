"""Fine-tuning vs top-tuning on the same split and seeds: summaries, verdicts, the aggregate report.

The verdict follows the research this project implements: "same" when the top-tuning accuracy is
within ±1 point of fine-tuning's, otherwise whichever is better. The speed-up is fine-tuning's
training time over top-tuning's, feature extraction included.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ..spec import RunSpec, resolve
from .common import Cell, Study, finished, seed_count, seeds_text
from .common import preset as resolve_preset

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


@dataclass
class Comparison:
    comparison_id: str
    dataset: str
    backbone: str
    classifier: str
    top: Cell
    fine: Cell
    run_ids: list[str] = field(default_factory=list)
    created_at: object = None

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
    def from_runs(cls, rows: list[dict]) -> Comparison | None:
        """Summarise one comparison's finished runs; None while either method has none."""
        done = finished(rows)
        top = [r for r in done if r["method"] == TOP]
        fine = [r for r in done if r["method"] == FINE]
        if not top or not fine:
            return None
        first = top[0]
        return cls(first["comparison_id"], first["dataset"], first["backbone"], first["classifier"],
                   Cell.of(top), Cell.of(fine), [r["id"] for r in top + fine], done[0]["created_at"])


def plan(dataset: str, backbone: str, classifier: str = "kernel", seeds: int | None = None,
         shared: dict | None = None, top: dict | None = None, fine: dict | None = None,
         preset: str = "auto") -> list[RunSpec]:
    """The specs of a comparison (top-tune then fine-tune per seed), validated before anything runs."""
    p = preset_settings(preset)
    common = {**p["shared"], **(shared or {})}
    specs = []
    for seed in range(seed_count(seeds, p)):
        specs.append(RunSpec(TOP, backbone, dataset, classifier, {**common, **(top or {})}, seed))
        specs.append(RunSpec(FINE, backbone, dataset, None, {**common, **p["fine"], **(fine or {})}, seed))
    for spec in specs[:2]:
        resolve(spec)
    return specs


def preset_settings(name: str) -> dict:
    """What a preset sets ('auto' resolved): shared params, fine-tuning params, seeds; robustness and
    selection studies use the same presets, so their methods stay comparable."""
    return resolve_preset(PRESETS, name)


def describe(payload: dict) -> str:
    return (f"comparison · {payload['backbone']} · {payload['classifier']} · {payload['dataset']} · "
            f"{seeds_text(payload)}")


STUDY = Study("compare", "comparison", plan, Comparison.from_runs, lambda spec: spec.method, describe,
              presets=PRESETS, link="comparison_id")


def compare(specs: list[RunSpec], store, *, cache=None, progress=None, comparison_id: str | None = None):
    """Run a planned comparison, linked by one comparison_id, and summarise it."""
    return STUDY.run(specs, store, cache=cache, progress=progress, study_id=comparison_id)


def comparisons(store) -> list[Comparison]:
    """Every complete comparison in the store, oldest first."""
    return STUDY.find(store)


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
