"""Covariate-shift robustness: how accuracy falls as the images (or features) drift, per method.

A study runs one top-tuning run per (shift level, classifier, seed) and, with fine-tuning, one
fine-tuning run per (level, seed); every run shifts the same split(s) with the same kind of shift,
and the presets match ``toptune compare`` so the methods stay comparable. Level 0 is the clean
baseline (it shares the clean feature cache). The summary is accuracy, mean ± std over seeds, per
series (a method, and for top-tuning its classifier) and level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ParamError
from ..research.shift import SHIFT_KINDS, SHIFT_SPLITS
from ..spec import RunSpec, resolve
from .common import Cell, Plan, Study, finished, parse_floats, seed_count, seeds_text
from .compare import FINE, PRESETS, TOP, preset_settings

DEFAULT_LEVELS = {"awgn": (0.0, 0.05, 0.1, 0.2), "blur": (0.0, 1.0, 2.0, 4.0), "embedding": (0.0, 5.0, 10.0, 20.0)}


def parse_levels(text: str, shift: str) -> list[float]:
    return parse_floats(text, "--levels", 0.0, 1.0 if shift == "awgn" else 1e6)


def plan(dataset: str, backbone: str, shift: str, levels=None, classifiers=("kernel",), with_fine_tune: bool = False,
         seeds: int | None = None, shift_on: str = "test", shared: dict | None = None, top: dict | None = None,
         fine: dict | None = None, preset: str = "auto") -> list[RunSpec]:
    """The study's specs, level by level; one of each method validated before anything runs."""
    if shift not in SHIFT_KINDS or shift == "none":
        raise ParamError(f"--shift must be one of {', '.join(SHIFT_KINDS[1:])}, got {shift!r}")
    if shift_on not in SHIFT_SPLITS:
        raise ParamError(f"--shift-on must be one of {', '.join(SHIFT_SPLITS)}, got {shift_on!r}")
    if with_fine_tune and shift == "embedding":
        raise ParamError("an embedding shift offsets extracted features, which fine-tuning never uses: "
                         "drop --with-fine-tune or use awgn / blur")
    if not classifiers:
        raise ParamError("a robustness study needs at least one classifier")
    p = preset_settings(preset)
    levels = list(levels if levels is not None else DEFAULT_LEVELS[shift])
    common = {**p["shared"], **(shared or {}), "shift": shift, "shift_on": shift_on}
    specs = []
    for seed in range(seed_count(seeds, p)):
        for level in levels:
            at = {**common, "shift_level": level}
            specs += [RunSpec(TOP, backbone, dataset, c, {**at, **(top or {})}, seed) for c in classifiers]
            if with_fine_tune:
                specs.append(RunSpec(FINE, backbone, dataset, None, {**at, **p["fine"], **(fine or {})}, seed))
    for spec in {(s.method, s.classifier): s for s in specs}.values():
        resolve(spec)
    return Plan(specs, preset=p["name"], seeds=seed_count(seeds, p))


def _label(spec: RunSpec) -> str:
    who = spec.classifier if spec.method == TOP else "fine-tune"
    return f"{spec.params['shift']} {spec.params['shift_level']:g} · {who}"


def series(row: dict) -> str:
    """A result line of the study: 'top-tune · kernel', or 'fine-tune'."""
    return f"{TOP} · {row['classifier']}" if row["method"] == TOP else row["method"]


@dataclass
class RobustnessStudy:
    study_id: str
    dataset: str
    backbone: str
    shift: str
    shift_on: str
    levels: list[float]
    cells: dict = field(default_factory=dict)  # (series, level) -> Cell
    run_ids: list[str] = field(default_factory=list)
    created_at: object = None

    @classmethod
    def from_runs(cls, rows: list[dict]) -> RobustnessStudy | None:
        done = finished(rows)
        if not done:
            return None
        groups: dict = {}
        for r in done:
            groups.setdefault((series(r), float(r["params"]["run"]["shift_level"])), []).append(r)
        first = done[0]
        run = first["params"]["run"]
        return cls(first["study_id"], first["dataset"], first["backbone"], run["shift"], run["shift_on"],
                   sorted({level for _, level in groups}), {k: Cell.of(v) for k, v in groups.items()},
                   [r["id"] for r in done], first["created_at"])

    @property
    def series(self) -> list[str]:
        names = {name for name, _ in self.cells}
        return sorted(names, key=lambda n: (n == FINE, n))

    def table(self) -> list[tuple[str, list[str]]]:
        """Rows (series, accuracy per level)."""
        return [(name, [c.text() if (c := self.cells.get((name, level))) else "" for level in self.levels])
                for name in self.series]

    def points(self) -> list[dict]:
        """Flat records for plotting accuracy against shift strength."""
        return [{"series": name, "level": level, **cell.as_dict()}
                for (name, level), cell in sorted(self.cells.items())]


def describe(payload: dict) -> str:
    levels = ",".join(f"{v:g}" for v in payload["levels"]) if payload.get("levels") else "default levels"
    methods = " + ".join(payload.get("classifiers") or []) + (" + fine-tuning" if payload.get("with_fine_tune") else "")
    return (f"robustness study · {payload['shift']} {levels} on {payload.get('shift_on', 'test')} · "
            f"{payload['backbone']} · {methods} · {payload['dataset']} · {seeds_text(payload)}")


STUDY = Study("robustness", "robustness study", plan, RobustnessStudy.from_runs, _label, describe,
              presets=PRESETS, prefix="rob-")

