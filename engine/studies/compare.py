"""Fine-tuning vs top-tuning on the same split and seeds: summaries, verdicts, the aggregate report.

The verdict follows the research this project implements: "same" when the top-tuning accuracy is
within ±1 point of fine-tuning's, otherwise whichever is better. The speed-up is fine-tuning's
training time over top-tuning's, feature extraction included.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cached_property

from ..spec import RunSpec, resolve
from .common import Cell, Plan, Study, finished, seed_count, seeds_text
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
    pretrain_source: str | None = None
    # The settings a verdict holds for: the data's label, the input size each method saw (the backbone's own
    # when the run set none), fine-tuning's epochs, the preset it was planned with, how many seeds ran.
    dataset_label: str | None = None
    image_size: int | None = None
    fine_image_size: int | None = None
    epochs: int | None = None
    preset: str | None = None
    seeds: int | None = None

    # Figures, computed once: a report over tens of thousands of comparisons reads each several times.
    delta_points: float = field(init=False, repr=False)  # top-tuning − fine-tuning accuracy, in points
    speedup: float = field(init=False, repr=False)  # fine-tuning's training time over top-tuning's
    verdict: str = field(init=False, repr=False)

    def __post_init__(self):
        self.delta_points = 100.0 * (self.top.means["accuracy"] - self.fine.means["accuracy"])
        self.speedup = self.fine.means["train_time_s"] / max(self.top.means["train_time_s"], 1e-9)
        self.verdict = verdict(self.delta_points)

    @property
    def label(self) -> str:
        """The data, as shown and grouped: the dataset's label, else the plugin's name."""
        return self.dataset_label or self.dataset

    @property
    def size_text(self) -> str:
        """'224 px', 'top 224 px / fine 128 px' when the methods saw different sizes, '? px' when unknown."""
        sizes = [self.image_size, self.fine_image_size if self.fine_image_size is not None else self.image_size]
        if sizes[0] == sizes[1]:
            return f"{sizes[0] if sizes[0] is not None else '?'} px"
        return " / ".join(f"{side} {size if size is not None else '?'} px" for side, size in zip(("top", "fine"),
                                                                                                 sizes))

    @property
    def seed_count(self) -> int:
        """How many seeds ran: as recorded, else the larger side's run count (comparisons from before it was)."""
        return self.seeds if self.seeds is not None else max(self.top.n_runs, self.fine.n_runs)

    @property
    def settings_text(self) -> str:
        """What the verdict holds for, besides the image size: '3 epochs, 1 seed, cpu preset'."""
        seeds = self.seed_count
        parts = [f"{self.epochs} epoch{'' if self.epochs == 1 else 's'}" if self.epochs is not None else None,
                 f"{seeds} seed{'' if seeds == 1 else 's'}",
                 f"{self.preset} preset" if self.preset else None]
        return ", ".join(p for p in parts if p)

    @cached_property
    def setup_label(self) -> str:
        """'efficientnet_lite0 · 128 px · 3 epochs · cpu preset': the settings verdicts are grouped by."""
        parts = [self.backbone, self.size_text, f"{self.epochs} epochs" if self.epochs is not None else None,
                 f"{self.preset} preset" if self.preset else None]
        return " · ".join(p for p in parts if p)

    @cached_property
    def setup(self) -> tuple:
        """What must match for two comparisons to answer the same question."""
        return (self.label, self.backbone, self.classifier, self.image_size, self.fine_image_size, self.epochs,
                self.preset)

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
                   Cell.of(top), Cell.of(fine), [r["id"] for r in top + fine], done[0]["created_at"],
                   first.get("pretrain_source"), first.get("dataset_label"), run_image_size(first),
                   run_image_size(fine[0]), (fine[0].get("params") or {}).get("run", {}).get("epochs"),
                   ((done[0].get("info") or {}).get("plan") or {}).get("preset"), len({r["seed"] for r in done}))


def run_image_size(row: dict) -> int | None:
    """The input size a run's images were resized to: its parameter, else its recorded preprocessing."""
    size = ((row.get("params") or {}).get("run") or {}).get("image_size")
    if size is None:
        size = ((row.get("info") or {}).get("preprocessing") or {}).get("input_size")
    return int(size) if size is not None else None


def plan(dataset: str, backbone: str, classifier: str = "kernel", seeds: int | None = None,
         shared: dict | None = None, top: dict | None = None, fine: dict | None = None,
         preset: str = "auto") -> list[RunSpec]:
    """The specs of a comparison (top-tune then fine-tune per seed), validated before anything runs."""
    p = preset_settings(preset)
    common = {**p["shared"], **(shared or {})}
    n_seeds = seed_count(seeds, p)
    specs = Plan([], preset=p["name"], seeds=n_seeds)
    for seed in range(n_seeds):
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


def comparisons(store, flt=None) -> list[Comparison]:
    """Every complete comparison in the store (of the runs ``flt`` keeps), oldest first.

    Aggregated in the store, one row per comparison, so a store of many thousand runs reads fast; the same
    figures as ``Comparison.from_runs`` on the runs themselves.
    """
    from ..store.queries import comparisons as table

    frame = table(store, TOP, FINE, flt)
    columns = {c: frame[c].tolist() for c in frame.columns}  # column lists: far faster than a dict per row

    def cells(side: str) -> list[Cell]:
        n, acc, acc_std, time_s, time_std = (columns[f"{side}_{c}"] for c in CELL_COLUMNS)
        return [Cell(int(k), {"accuracy": float(a), "train_time_s": float(t)},
                     {"accuracy": float(a_std), "train_time_s": float(t_std)})
                for k, a, a_std, t, t_std in zip(n, acc, acc_std, time_s, time_std)]

    fields = zip(columns["comparison_id"], columns["dataset"], columns["backbone"], columns["classifier"],
                 cells("first"), cells("second"), columns["run_ids"], columns["created_at"],
                 columns["pretrain_source"], columns["dataset_label"], columns["first_image_size"],
                 columns["second_image_size"], columns["second_epochs"], columns["preset"], columns["seeds"])
    return [Comparison(cid, dataset, backbone, classifier, top, fine, list(run_ids), created, source, label,
                       _int(top_size), _int(fine_size), _int(epochs), _text(preset), _int(seeds))
            for (cid, dataset, backbone, classifier, top, fine, run_ids, created, source, label, top_size, fine_size,
                 epochs, preset, seeds) in fields]


CELL_COLUMNS = ("n", "accuracy", "accuracy_std", "train_time_s", "train_time_s_std")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):  # None, or NaN / NA from pandas: missing
        return None


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Card:
    """The one-line answer for one dataset and setup: its newest comparison's verdict, with the settings it
    holds for. ``text`` is what the CLI and the dashboard print; the comparison's own fields and figures
    (``verdict``, ``delta_points``, ``speedup``, ``image_size``, ``epochs``, ``preset``, ``seeds``,
    ``comparison_id``, ``run_ids``, ``created_at``, …) read through the card."""

    comparison: Comparison
    comparisons: int = 1  # of this dataset and setup; the card shows the newest

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "comparison":
            raise AttributeError(name)
        return getattr(self.comparison, name)

    @property
    def dataset(self) -> str:
        return self.comparison.label

    @property
    def top_accuracy(self) -> float:
        return self.comparison.top.accuracy

    @property
    def fine_accuracy(self) -> float:
        return self.comparison.fine.accuracy

    @property
    def answer(self) -> str:
        """'same, 9.7× faster', 'fine-tuning better by 2.1 points, 3.2× faster', '… 1.4× slower'."""
        said = self.verdict if self.verdict == "same" else f"{self.verdict} by {abs(self.delta_points):.1f} points"
        pace = f"{self.speedup:.1f}× faster" if self.speedup >= 1 else f"{1 / max(self.speedup, 1e-9):.1f}× slower"
        return f"{said}, {pace}"

    @property
    def text(self) -> str:
        return (f"{self.dataset} · {self.backbone} · {self.size_text}: top-tune ({self.classifier}) "
                f"{self.top_accuracy:.3f} vs fine-tune {self.fine_accuracy:.3f} ({self.settings_text}): {self.answer}")


def verdict_cards(items: list[Comparison]) -> list[Card]:
    """One card per dataset and setup (backbone, classifier, image sizes, epochs, preset): the newest
    comparison's verdict, so a setup re-run after a change answers with its latest result. By dataset, then
    the newest setup first."""
    newest: dict[tuple, Comparison] = {}
    counts: dict[tuple, int] = {}
    for c in _oldest_first(items):
        newest[c.setup] = c
        counts[c.setup] = counts.get(c.setup, 0) + 1
    cards = [Card(c, counts[key]) for key, c in newest.items()]
    by_time = sorted(cards, key=lambda card: str(card.created_at), reverse=True)
    return sorted(by_time, key=lambda card: card.dataset.lower())


def _oldest_first(items: list[Comparison]) -> list[Comparison]:
    try:
        return sorted(items, key=lambda c: c.created_at)  # timestamps of one kind: compared as they are
    except TypeError:  # a mix (or a missing one): ISO text sorts by time too
        return sorted(items, key=lambda c: str(c.created_at or ""))


@dataclass
class Aggregate:
    group: str
    n: int
    counts: dict
    speedup_min: float
    speedup_median: float
    speedup_max: float


def aggregate(items: list[Comparison], by: str = "backbone") -> list[Aggregate]:
    """Verdict counts and speed-up range per backbone, or per setup (``by="setup"``: backbone, image size,
    epochs and preset, so verdicts at different settings are not counted together), then overall ('all')."""
    if by not in ("backbone", "setup"):
        raise ValueError(f"aggregate by 'backbone' or 'setup', not {by!r}")
    groups: dict[str, list[Comparison]] = {}
    for c in items:
        groups.setdefault(c.backbone if by == "backbone" else c.setup_label, []).append(c)
    if items:
        groups["all"] = list(items)
    out = []
    for name, cs in groups.items():
        speedups = [c.speedup for c in cs]
        counts = dict.fromkeys(VERDICTS, 0)
        for c in cs:
            counts[c.verdict] += 1
        out.append(Aggregate(name, len(cs), counts, min(speedups), statistics.median(speedups), max(speedups)))
    return out
