"""Data-selection studies: fine-tuning on subsets chosen by different rules, at equal subset sizes.

For each fraction and seed, one fine-tuning run per rule (by default entropy-high, entropy-low and
random), all with the same split, image size and schedule; the summary is test accuracy, mean ± std
over seeds, per (rule, fraction). The rules are described in ``data_selection``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ParamError
from ..research.data_selection import SELECT_RULES
from ..spec import RunSpec, resolve
from .common import Cell, Plan, Study, finished, parse_floats, seed_count, seeds_text
from .compare import FINE, PRESETS, preset_settings

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
    if not fractions:
        raise ParamError("a selection study needs at least one fraction")
    p = preset_settings(preset)
    common = {**p["shared"], **p["fine"], **(shared or {})}
    specs = [RunSpec(FINE, backbone, dataset, None, {**common, "select": rule, "fraction": fraction}, seed)
             for seed in range(seed_count(seeds, p)) for fraction in fractions for rule in rules]
    resolve(specs[0])
    return Plan(specs, preset=p["name"], seeds=seed_count(seeds, p))


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
    def from_runs(cls, rows: list[dict]) -> SelectionStudy | None:
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
        return [{"rule": rule, "fraction": fraction, "subset_size": self.subset_sizes.get(fraction), **cell.as_dict()}
                for (rule, fraction), cell in sorted(self.cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def describe(payload: dict) -> str:
    fractions = ",".join(f"{v:g}" for v in payload.get("fractions") or [])
    return (f"selection study · {' / '.join(payload.get('rules') or [])} at {fractions} · {payload['backbone']} · "
            f"{payload['dataset']} · {seeds_text(payload)}")


STUDY = Study("select-study", "selection study", plan, SelectionStudy.from_runs, _label, describe,
              presets=PRESETS, prefix="sel-")

