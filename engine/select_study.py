"""Data-selection studies: fine-tuning on subsets chosen by different rules, at equal subset sizes.

For each fraction and seed, one fine-tuning run per rule (by default entropy-high, entropy-low and
random), all with the same split, image size and schedule; the summary is test accuracy, mean ± std
over seeds, per (rule, fraction). The rules are described in ``data_selection``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compare import FINE, _preset
from .errors import ParamError
from .features import FeatureCache
from .progress import Progress
from .research_params import SELECT_RULES
from .spec import RunSpec, resolve
from .store import Store
from .studies import Cell, finished, grouped, new_id, parse_floats, run_linked

PREFIX = "sel-"
DEFAULT_RULES = ("entropy-high", "entropy-low", "random")
DEFAULT_FRACTIONS = (0.25, 0.5)


def parse_fractions(text: str) -> list[float]:
    return parse_floats(text, "--fractions", 0.001, 1.0)


def plan(dataset: str, backbone: str, fractions=DEFAULT_FRACTIONS, rules=DEFAULT_RULES, seeds: int | None = None,
         shared: dict | None = None, preset: str = "auto") -> list[RunSpec]:
    """Fine-tuning specs per (seed, fraction, rule); the first is validated before anything runs."""
    unknown = [r for r in rules if r not in SELECT_RULES]
    if unknown or not rules:
        raise ParamError(f"--rules takes names from {', '.join(SELECT_RULES)}, got {', '.join(rules) or 'none'}")
    p = _preset(preset)
    n_seeds = seeds if seeds is not None else p["seeds"]
    if n_seeds < 1 or not fractions:
        raise ParamError("a selection study needs seeds >= 1 and at least one fraction")
    common = {**p["shared"], **p["fine"], **(shared or {})}
    specs = [RunSpec(FINE, backbone, dataset, None, {**common, "select": rule, "fraction": fraction}, seed)
             for seed in range(n_seeds) for fraction in fractions for rule in rules]
    resolve(specs[0])
    return specs


def run_study(specs: list[RunSpec], store: Store, *, cache: FeatureCache | None = None,
              progress: Progress | None = None, study_id: str | None = None) -> "SelectionStudy":
    study_id = study_id or new_id(PREFIX)
    return SelectionStudy.from_runs(run_linked(specs, store, study_id, _label, cache=cache, progress=progress))


def _label(spec: RunSpec) -> str:
    return f"{spec.params['select']} at {spec.params['fraction']:g}"


@dataclass
class SelectionStudy:
    study_id: str
    dataset: str
    backbone: str
    fractions: list[float]
    rules: list[str]
    cells: dict = field(default_factory=dict)  # (rule, fraction) -> Cell
    subset_sizes: dict = field(default_factory=dict)  # fraction -> images trained on
    run_ids: list[str] = field(default_factory=list)
    created_at: object = None

    @classmethod
    def from_runs(cls, rows: list[dict]) -> "SelectionStudy | None":
        done = [r for r in finished(rows) if r["params"]["run"].get("select")]
        if not done:
            return None
        groups: dict = {}
        for r in done:
            run = r["params"]["run"]
            groups.setdefault((run["select"], float(run["fraction"])), []).append(r)
        rules = [r for r in SELECT_RULES if any(rule == r for rule, _ in groups)]
        sizes = {key[1]: rs[0]["n_train"] for key, rs in groups.items()}
        first = done[0]
        return cls(first["study_id"], first["dataset"], first["backbone"], sorted(sizes), rules,
                   {k: Cell.of(v) for k, v in groups.items()}, sizes, [r["id"] for r in done], first["created_at"])

    def table(self) -> list[tuple[str, list[str]]]:
        """Rows (rule, accuracy per fraction)."""
        return [(rule, [c.text() if (c := self.cells.get((rule, f))) else "" for f in self.fractions])
                for rule in self.rules]

    def points(self) -> list[dict]:
        return [{"rule": rule, "fraction": fraction, "subset_size": self.subset_sizes.get(fraction), **vars(cell)}
                for (rule, fraction), cell in sorted(self.cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def studies(store: Store) -> list[SelectionStudy]:
    """Every selection study with a finished run, oldest first."""
    found = [s for s in map(SelectionStudy.from_runs, grouped(store, PREFIX)) if s is not None]
    return sorted(found, key=lambda s: s.created_at)
