"""Data selection inside a fine-tuning run: the first subset, and choosing again every k epochs.

The rules and the reasons behind them are in ``research.data_selection``; this module wires them to the
fine-tuning loop without changing it: the training loader keeps its sampler and batch size, only the
list of images it decodes is swapped between epochs.
"""

from __future__ import annotations

import numpy as np

from ..features.source import FeatureSource
from ..progress import Progress
from ..research.data_selection import Selection, out_of_fold_proba, pick


def choose_subset(rs, splits, backbone, dataset, pool: np.ndarray, cache, device: str,
                  progress: Progress) -> tuple[np.ndarray, Selection | None]:
    """(training indices, Selection): ``pool`` unchanged and None when the run selects nothing."""
    run = rs.params["run"]
    rule, seed = run.get("select"), rs.spec.seed
    if not rule:
        return pool, None
    if rule == "random":
        chosen = pool[pick(rule, run["fraction"], n=len(pool), seed=seed)]
    else:
        whole = np.array_equal(pool, np.arange(len(splits.train)))
        fs = FeatureSource(rs, backbone, dataset, cache, device, progress).get("train", splits.train,
                                                                          None if whole else pool)
        with progress.stage("score training images for selection"):
            proba, classes = out_of_fold_proba(fs.features, fs.labels, seed)
        chosen = fs.indices[pick(rule, run["fraction"], proba, fs.labels, classes)]
    progress.note(f"selection {rule}: {len(chosen)} of {len(pool)} training images")
    selection = Selection(rule, run["fraction"], run.get("select_every"), seed, pool, chosen)
    if rule == "random":
        selection.scorer = "uniform draw seeded by the run seed"
    elif selection.every:
        selection.scorer += "; later: the network being fine-tuned (softmax)"
    return chosen, selection


def probabilities(model, loader, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, softmax outputs) of ``model`` over a loader; leaves the model's train/eval mode as it was."""
    import torch

    was_training = model.training
    model.eval()
    seen, parts = [], []
    try:
        with torch.inference_mode():
            for indices, x, _ in loader:
                if x is not None:
                    parts.append(torch.softmax(model(x.to(device)).float(), dim=1).cpu().numpy())
                    seen.extend(indices)
    finally:
        model.train(was_training)
    return np.asarray(seen, dtype=np.int64), np.concatenate(parts)


class Reselecting:
    """A training loader that, every ``selection.every`` epochs, trains on a newly chosen subset."""

    def __init__(self, loader, selection: Selection, model, pool_loader, labels: np.ndarray, device: str,
                 progress: Progress):
        self.loader, self.selection, self.model, self.pool_loader = loader, selection, model, pool_loader
        self.labels, self.device, self.progress = labels, device, progress
        self.epoch = 0

    @property
    def dataset(self):
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.epoch += 1
        if self.epoch > 1 and (self.epoch - 1) % self.selection.every == 0:
            self._choose_again()
        return iter(self.loader)

    def _choose_again(self) -> None:
        s = self.selection
        if s.rule == "random":
            chosen = s.pool[pick(s.rule, s.fraction, n=len(s.pool), seed=s.seed + self.epoch)]
        else:
            seen, proba = probabilities(self.model, self.pool_loader, self.device)
            chosen = seen[pick(s.rule, s.fraction, proba, self.labels[seen])]
        self.loader.dataset.subset = chosen  # the sampler reads the length, which stays the same
        s.indices = chosen
        s.chosen_at.append(self.epoch)
        self.progress.note(f"epoch {self.epoch}: selection {s.rule} chose {len(chosen)} images again")


def reselecting(loader, selection: Selection | None, model, pool_loader_fn, labels, device, progress):
    """``loader`` itself unless the run chooses its subset again every k epochs."""
    if selection is None or not selection.every:
        return loader
    return Reselecting(loader, selection, model, pool_loader_fn(selection.pool), labels, device, progress)
