"""Studies as the pages read them: comparisons, clustering studies, robustness and selection studies.

Every kind is found through the engine's ``STUDIES`` table; a store file that does not exist reads as
having no studies (looking must not create it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from toptune.store import queries as q
from toptune.store.artifacts import artifact_path
from toptune.studies import STUDIES, clustering
from toptune.studies import compare as cmp

from .runs import cached, open_store


@cached
def study_index(path, name: str, limit: int = 200) -> pd.DataFrame:
    """The newest studies of one kind, one row each (study_id, dataset, backbone, runs, created_at)."""
    store = open_store(path)
    return STUDIES[name].index(store, limit) if store else pd.DataFrame(columns=["study_id"])


@cached
def study_summary(path, name: str, study_id: str):
    """One study's summary, read from its own runs."""
    store = open_store(path)
    return STUDIES[name].summary(store, study_id) if store else None


def points_frame(study) -> pd.DataFrame:
    """A study summary's flat figures (``points()``), one row per cell, for its chart and table."""
    return pd.DataFrame(study.points())


@cached(shared=True)
def load_comparisons(path, flt=None) -> list[cmp.Comparison]:
    """Complete comparisons (of the runs ``flt`` keeps), aggregated in the store, oldest first (shared, not copied:
    read only)."""
    store = open_store(path)
    return cmp.comparisons(store, flt) if store else []


@dataclass(frozen=True)
class ComparisonView:
    """What the Compare page shows of the comparisons a filter and chosen settings keep, computed once per store
    version and choice (a page rerun over many thousand comparisons then costs nothing)."""

    options: dict  # each setting's values among all the filter keeps
    kept: list  # the comparisons whose settings are among the chosen
    frame: pd.DataFrame  # comparisons_frame(kept)
    cards: list  # verdict cards of kept
    summary: list  # verdict_summary(kept)
    kept_options: dict  # setting values among kept


@cached(shared=True)
def comparison_view(path, flt=None, chosen: tuple = ()) -> ComparisonView:
    """The Compare page's comparisons: those whose every setting is among ``chosen``, ((setting, (values…)), …);
    a setting not named takes any value."""
    everything = load_comparisons(path, flt)
    values = [tuple(setting(c, name) for name in SETTINGS) for c in everything]  # each read once
    options = kept_options = _options(values)
    kept = everything
    if chosen:  # nothing chosen keeps everything: no pass over the comparisons
        wanted = [set(dict(chosen).get(name, ())) for name in SETTINGS]
        picked = [i for i, row in enumerate(values) if all(not w or v in w for v, w in zip(row, wanted))]
        kept, kept_options = [everything[i] for i in picked], _options([values[i] for i in picked])
    return ComparisonView(options, kept, comparisons_frame(kept), cmp.verdict_cards(kept), cmp.aggregate(kept),
                          kept_options)


# The settings a verdict holds for, as the Compare page filters by them: (label, how a comparison reads it).
SETTINGS = {"image_size": "Image size (px)", "epochs": "Fine-tuning epochs", "preset": "Preset", "seeds": "Seeds"}


def setting(c: cmp.Comparison, name: str) -> str:
    """A comparison's value of one setting as a filter shows it ("224", "3", "cpu"; "?" where unknown). Image
    size is the top-tuning side's, with the fine-tuning side's after a slash when they differ."""
    if name == "image_size":
        top, fine = c.image_size, c.fine_image_size if c.fine_image_size is not None else c.image_size
        return "/".join(str(v if v is not None else "?") for v in dict.fromkeys([top, fine]))
    if name == "seeds":
        return str(c.seed_count)
    value = getattr(c, name)
    return "?" if value is None else str(value)


def _options(values: list[tuple]) -> dict[str, list[str]]:
    """Each setting's values among the rows of ``values`` (one tuple of settings per comparison), numbers in
    numeric order."""
    def order(v: str):
        head = v.split("/")[0]
        return (0, int(head), v) if head.isdigit() else (1, 0, v)

    return {name: sorted({row[i] for row in values}, key=order) for i, name in enumerate(SETTINGS)}


def comparisons_frame(items: list[cmp.Comparison]) -> pd.DataFrame:
    """One row per comparison: its data and setup, the settings its verdict holds for (image size, epochs, preset,
    seeds), both methods' accuracy and time, Δ in points, speed-up, verdict."""
    columns = ["comparison_id", "dataset", "backbone", "classifier", "pretrain_source", "setup", "image_size",
               "epochs", "preset", "seeds", "top_accuracy", "top_std", "fine_accuracy", "fine_std", "top_time_s",
               "fine_time_s", "delta_points", "delta_std_points", "speedup", "verdict"]
    # Built column by column from the cells' dicts: tens of thousands of comparisons in a fraction of a second.
    sizes = [c.size_text for c in items]
    frame = pd.DataFrame({
        "comparison_id": [c.comparison_id for c in items], "dataset": [c.label for c in items],
        "backbone": [c.backbone for c in items], "classifier": [c.classifier for c in items],
        "pretrain_source": [c.pretrain_source for c in items],
        "setup": [f"{c.backbone} · {c.classifier} · {size}" for c, size in zip(items, sizes)], "image_size": sizes,
        "epochs": pd.array([c.epochs for c in items], dtype="Int64"), "preset": [c.preset for c in items],
        "seeds": [c.seed_count for c in items],
        "top_accuracy": [c.top.means["accuracy"] for c in items], "top_std": [c.top.stds["accuracy"] for c in items],
        "fine_accuracy": [c.fine.means["accuracy"] for c in items],
        "fine_std": [c.fine.stds["accuracy"] for c in items],
        "top_time_s": [c.top.means["train_time_s"] for c in items],
        "fine_time_s": [c.fine.means["train_time_s"] for c in items],
        "delta_points": [c.delta_points for c in items], "speedup": [c.speedup for c in items],
        "verdict": [c.verdict for c in items]}, columns=[c for c in columns if c != "delta_std_points"])
    frame["delta_std_points"] = 100.0 * (frame["top_std"] ** 2 + frame["fine_std"] ** 2) ** 0.5
    return frame[columns]


def verdict_cards(items: list[cmp.Comparison]) -> list[cmp.Card]:
    """The one-line answer per dataset and setup (the newest comparison's), as ``toptune report`` prints it."""
    return cmp.verdict_cards(items)


@cached
def points(path, flt=None, limit: int = 5000) -> tuple[pd.DataFrame, int]:
    """Finished runs for the accuracy-against-time chart, sampled past ``limit`` (Pareto fronts kept); their
    ``dataset`` is the dataset's label, so two image folders never share a front."""
    store = open_store(path)
    if store is None:
        return pd.DataFrame(), 0
    runs, total = q.points(store, flt, limit)
    if "dataset_label" in runs:
        runs = runs.assign(dataset=runs["dataset_label"].fillna(runs["dataset"]))
    return runs, total


@cached
def ablation(path, by: str, value: str, flt=None) -> pd.DataFrame:
    """Mean ± std of ``value`` per ``by`` and method over the finished runs ``flt`` keeps."""
    store = open_store(path)
    return q.grouped_stats(store, by, value, flt) if store else pd.DataFrame()


def verdict_summary(items: list[cmp.Comparison]) -> list[cmp.Aggregate]:
    return cmp.aggregate(items)


def study_runs(path, study_id: str) -> list[dict]:
    """A study's runs (any status), decoded, newest first."""
    return open_store(path).runs(study_id=study_id)


def has_latents(path, run_id: str) -> bool:
    """Whether the run exported its latent codes (``--export-latents``), which a projection needs."""
    return artifact_path(path, run_id, "latent").exists()


def latent_projection(path, run_id: str, method: str) -> pd.DataFrame:
    """One row per image: x, y (PCA or t-SNE of the latent codes), cluster, label, sample."""
    return pd.DataFrame(clustering.latent_projection(path, run_id, method))


def sized(flt, sizes: list[str]):
    """``flt`` keeping only runs of these image sizes (values as ``setting`` shows them: "224", "224/128"); as
    given where no size is chosen. The sizes go into the SQL as checked integers."""
    wanted = sorted({int(part) for size in sizes or [] for part in str(size).split("/") if part.isdigit()})
    return flt.also(f"{q.IMAGE_SIZE} IN ({', '.join(str(n) for n in wanted)})") if wanted else flt


def image_size_groups(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The runs of an accuracy-against-time chart split by the image size they saw ("128 px", …; "size unknown"
    for runs that recorded none), smallest first: one list item where every run saw the same size."""
    if "image_size" not in runs or runs["image_size"].nunique(dropna=False) <= 1:
        return [("", runs)]
    sizes = runs["image_size"].astype("Float64")
    order = sorted(sizes.dropna().unique()) + ([None] if sizes.isna().any() else [])
    return [(f"{int(size)} px" if size is not None else "size unknown",
             runs[sizes.isna().to_numpy()] if size is None else runs[(sizes == size).fillna(False).to_numpy()])
            for size in order]
