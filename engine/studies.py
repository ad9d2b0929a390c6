"""Pieces shared by the robustness and data-selection studies.

A study is a list of run specs run one by one through the ordinary recording path and linked by a
``study_id``. The id starts with the study's kind (``rob-…``, ``sel-…``), so each kind finds its own
studies among every linked run (clustering studies use bare ids) with no schema change, and SQL can
tell them apart with ``study_id LIKE 'rob-%'``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from uuid import uuid4

from .errors import ParamError
from .features import FeatureCache
from .progress import Progress
from .runner import run
from .spec import RunSpec
from .store import Store


@dataclass
class Cell:
    """Accuracy of one study cell: mean ± std over its seeds."""

    accuracy: float
    accuracy_std: float
    train_time_s: float
    n_runs: int

    @classmethod
    def of(cls, rows: list[dict]) -> "Cell":
        acc = [r["accuracy"] for r in rows]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        return cls(statistics.fmean(acc), std, statistics.fmean(r["train_time_s"] for r in rows), len(rows))

    def text(self) -> str:
        return f"{self.accuracy:.4f}" + (f" ± {self.accuracy_std:.4f}" if self.n_runs > 1 else "")


def parse_floats(text: str, option: str, low: float, high: float) -> list[float]:
    """'0,0.05,0.1' -> [0.0, 0.05, 0.1]; each within [low, high], no repeats."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ParamError(f"{option} takes comma-separated numbers like 0,0.1,0.2, got {text!r}") from None
    if not values or len(set(values)) != len(values) or not all(low <= v <= high for v in values):
        raise ParamError(f"{option} needs distinct numbers in [{low:g}, {high:g}], got {text!r}")
    return values


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid4().hex[:12]}"


def run_linked(specs: list[RunSpec], store: Store, study_id: str, label, *, cache: FeatureCache | None = None,
               progress: Progress | None = None) -> list[dict]:
    """Run each spec linked by ``study_id``; returns the study's rows from the store."""
    progress = progress or Progress()
    for i, spec in enumerate(specs, 1):
        progress.note(f"[{study_id} {i}/{len(specs)}] {label(spec)} seed {spec.seed}")
        run(spec, store, cache=cache, progress=progress, links={"study_id": study_id})
    return store.runs(study_id=study_id)


def finished(rows: list[dict]) -> list[dict]:
    return sorted((r for r in rows if r["status"] == "finished"), key=lambda r: r["created_at"])


def grouped(store: Store, prefix: str) -> list[list[dict]]:
    """The rows of every study whose id starts with ``prefix``, one list per study."""
    groups: dict[str, list[dict]] = {}
    for row in store.runs(linked_by="study_id"):
        if str(row["study_id"]).startswith(prefix):
            groups.setdefault(row["study_id"], []).append(row)
    return list(groups.values())


def run_job(kind: str, payload: dict, store: Store, progress: Progress) -> list[str]:
    """A dashboard job of kind 'robustness' or 'select-study': ``payload`` holds the plan's arguments."""
    from . import robustness, select_study

    module = {"robustness": robustness, "select-study": select_study}[kind]
    study = module.run_study(module.plan(**payload), store, progress=progress)
    return study.run_ids if study else []
