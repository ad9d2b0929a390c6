"""What every study shares: the ``Study`` row of the STUDIES table, linking runs, one summary cell, presets.

A study is a plan of run specs run one by one through the ordinary recording path, linked by one id in
one column of the runs table (``comparison_id`` for comparisons, ``study_id`` for the others). The id
may start with the study's prefix (``rob-…``, ``sel-…``), so each kind finds its own studies among every
linked run with no schema change, and SQL can tell them apart with ``study_id LIKE 'rob-%'``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from ..errors import ParamError
from ..features.cache import FeatureCache
from ..progress import Progress
from ..runner import run
from ..spec import RunSpec
from ..store import Store


@dataclass(frozen=True)
class Study:
    """One kind of study. Its job payload is ``plan``'s keyword arguments, from the CLI and Launch alike."""

    name: str  # the command, and the job kind: "compare", "robustness", …
    title: str  # what one is called in a sentence: "comparison", "robustness study", …
    plan: Callable[..., list[RunSpec]]  # (**payload) -> specs, every name and value checked
    summarise: Callable[[list[dict]], Any]  # one study's rows -> its summary, or None before a run finished
    label: Callable[[RunSpec], str]  # one run, in a progress line
    describe: Callable[[dict], str]  # a job payload in one line (the jobs panel)
    presets: dict = field(default_factory=dict)
    link: str = "study_id"  # the runs column holding the study's id
    prefix: str = ""  # its ids start with this
    method: str | None = None  # when set, only runs of this method belong to studies of this kind

    def new_id(self) -> str:
        return f"{self.prefix}{uuid4().hex[:12]}"

    def run(self, specs: list[RunSpec], store: Store, *, cache: FeatureCache | None = None,
            progress: Progress | None = None, study_id: str | None = None):
        """Run the planned specs linked by one id; returns the summary of what finished. A ``Plan``'s settings
        (its preset, seeds) are kept in each run's info."""
        study_id = study_id or self.new_id()
        progress = progress or Progress()
        settings = getattr(specs, "settings", None)
        for i, spec in enumerate(specs, 1):
            progress.overall(i - 1, len(specs))
            progress.note(f"[{study_id} {i}/{len(specs)}] {self.label(spec)} seed {spec.seed}")
            run(spec, store, cache=cache, progress=progress, links={self.link: study_id}, plan=settings)
        progress.overall(len(specs), len(specs))
        return self.summarise(store.runs(**{self.link: study_id}))

    def run_job(self, payload: dict, store: Store, progress: Progress) -> list[str]:
        """A queued job of this kind: plan the payload, run it, return the ids of the runs that finished."""
        summary = self.run(self.plan(**payload), store, progress=progress)
        return summary.run_ids if summary else []

    def index(self, store: Store, limit: int = 200):
        """The newest studies of this kind with a finished run, one row each (id, dataset, backbone, runs,
        created_at), counted in the store: a store of many thousand studies lists fast."""
        method = "AND method = ?" if self.method else ""
        sql = f"""SELECT {self.link} AS study_id, arg_min(dataset, created_at) AS dataset,
                         arg_min(backbone, created_at) AS backbone, count(*) AS runs, min(created_at) AS created_at
                  FROM runs WHERE {self.link} IS NOT NULL AND starts_with({self.link}, ?) {method}
                    AND archived_at IS NULL
                  GROUP BY 1 HAVING count(*) FILTER (WHERE status = 'finished') > 0
                  ORDER BY created_at DESC LIMIT {int(limit)}"""
        with store.reading() as con:
            return con.execute(sql, [self.prefix, *([self.method] if self.method else [])]).df()

    def summary(self, store: Store, study_id: str):
        """One study's summary, from its own runs only (None before one finished); asked for by id, it is
        found archived or not."""
        return self.summarise(store.runs(archived=None, **{self.link: study_id}))

    def find(self, store: Store) -> list:
        """The summary of every study of this kind with a finished run, oldest first."""
        groups: dict[str, list[dict]] = {}
        filters = {"method": self.method} if self.method else {}
        for row in reversed(store.runs(linked_by=self.link, **filters)):
            if str(row[self.link]).startswith(self.prefix):
                groups.setdefault(row[self.link], []).append(row)
        return [s for s in map(self.summarise, groups.values()) if s is not None]


class Plan(list):
    """A study's run specs, with the settings they were planned with (``{"preset": "cpu", "seeds": 1}``),
    which every run of the study records in its info."""

    def __init__(self, specs, **settings):
        super().__init__(specs)
        self.settings = settings


def preset(presets: dict, name: str) -> dict:
    """A preset's settings with its name; 'auto' is 'gpu' where CUDA is present, else 'cpu'."""
    if name == "auto":
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name not in presets:
        raise ParamError(f"unknown preset '{name}' (auto, {', '.join(presets)})")
    return {"name": name, **presets[name]}


def seed_count(given: int | None, chosen_preset: dict) -> int:
    n = given if given is not None else chosen_preset["seeds"]
    if n < 1:
        raise ParamError(f"seeds must be >= 1, got {n}")
    return n


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def metric(row: dict, name: str) -> float:
    """A run's figure: a column (accuracy, train_time_s) or a method-specific one from its metrics."""
    value = row.get(name)
    return value if value is not None else (row.get("metrics") or {})[name]


@dataclass
class Cell:
    """Mean ± std over the runs (seeds) of one study cell, per metric: ``cell.accuracy``, ``cell.accuracy_std``."""

    n_runs: int
    means: dict
    stds: dict

    @classmethod
    def of(cls, rows: list[dict], metrics: Sequence[str] = ("accuracy", "train_time_s")) -> Cell:
        stats = {m: mean_std([metric(r, m) for r in rows]) for m in metrics}
        return cls(len(rows), {m: s[0] for m, s in stats.items()}, {m: s[1] for m, s in stats.items()})

    def __getattr__(self, name: str) -> float:
        means, stds = self.__dict__.get("means", {}), self.__dict__.get("stds", {})
        if name.endswith("_std") and name[:-4] in stds:
            return stds[name[:-4]]
        if name in means:
            return means[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        """Flat figures for tables and charts: each metric, its ``_std``, and ``n_runs``."""
        out = {}
        for m in self.means:
            out.update({m: self.means[m], f"{m}_std": self.stds[m]})
        return {**out, "n_runs": self.n_runs}

    def text(self, name: str = "accuracy", digits: int = 4) -> str:
        """'0.9311', or '0.9311 ± 0.0042' over several runs (one run has no spread to show)."""
        mean = f"{self.means[name]:.{digits}f}"
        return mean + (f" ± {self.stds[name]:.{digits}f}" if self.n_runs > 1 else "")


def parse_floats(text: str, option: str, low: float, high: float) -> list[float]:
    """'0,0.05,0.1' -> [0.0, 0.05, 0.1]; each within [low, high], no repeats."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ParamError(f"{option} takes comma-separated numbers like 0,0.1,0.2, got {text!r}") from None
    if not values or len(set(values)) != len(values) or not all(low <= v <= high for v in values):
        raise ParamError(f"{option} needs distinct numbers in [{low:g}, {high:g}], got {text!r}")
    return values


def finished(rows: list[dict]) -> list[dict]:
    return sorted((r for r in rows if r["status"] == "finished"), key=lambda r: r["created_at"])


def seeds_text(payload: dict) -> str:
    return f"{payload.get('seeds') or 'preset'} seed(s)"
