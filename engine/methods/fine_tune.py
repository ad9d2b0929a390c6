"""Fine-tuning: the backbone plus a new linear head, trained end to end on the images.

Common practice for small datasets, each part a run parameter: AdamW (or SGD with momentum), linear
warm-up then cosine decay stepped per batch, label smoothing, random resized crop / flip / rotation /
colour jitter, the run's ``precision`` (bf16 autocast on CPUs with native bf16, fp16 AMP on CUDA, in
channels_last), optional partial freezing and early stopping on a validation split carved from train.
Every epoch's loss, accuracies, learning rate and time are returned for the epochs table.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import numpy as np

from .. import registry
from ..data import dataset_info, fixed_subset, holdout, preprocessing, unreadable, unreadable_note
from ..errors import DatasetError, ParamError
from ..features.extract import DecodedSplit, Pixels, build_transform, collate, on_device, resize_steps
from ..measure.device import loader_workers
from ..measure.precision import Compute, checked_forward, error_line, resolve, run_batch
from ..models import save
from ..params import Param
from ..progress import Progress
from ..research import data_selection, shift
from ..results import RunResult
from .base import COMMON_PARAMS, Method
from .subset_training import choose_subset, reselecting

PARAMS = {
    **COMMON_PARAMS,
    "epochs": Param("int", 15, "training epochs (at most, with early stopping)", min=1, max=1000),
    "optimizer": Param("str", "adamw", "optimiser", choices=("adamw", "sgd")),
    "lr": Param("float", 3e-4, "peak learning rate (reached after warm-up)", min=1e-8, max=10.0),
    "weight_decay": Param("float", 0.05, "weight decay", min=0.0, max=1.0),
    "momentum": Param("float", 0.9, "SGD momentum", min=0.0, max=1.0),
    "warmup_epochs": Param("float", 1.0, "linear warm-up length before the cosine decay, in epochs", min=0.0),
    "label_smoothing": Param("float", 0.1, "label smoothing of the cross-entropy", min=0.0, max=0.9),
    "freeze_until": Param("str", None, "freeze parameters up to and including this module name "
                          "(e.g. blocks.3) for partial fine-tuning"),
    "val_fraction": Param("float", 0.0, "fraction of train carved out (stratified) for validation",
                          min=0.0, max=0.5),
    "patience": Param("int", None, "early stopping: epochs without validation improvement "
                      "(needs val_fraction > 0)", min=1),
    "crop_scale": Param("float", 0.6, "random resized crop: smallest area fraction (1 = no crop)",
                        min=0.05, max=1.0),
    "hflip": Param("bool", True, "random horizontal flip"),
    "rotation": Param("float", 10.0, "random rotation range in degrees (0 = off)", min=0.0, max=180.0),
    "color_jitter": Param("float", 0.2, "brightness/contrast/saturation jitter strength (0 = off)",
                          min=0.0, max=1.0),
    **save.SAVE_PARAM, **shift.SHIFT_PARAMS, **data_selection.SELECT_PARAMS,
}


# Training images the precision plan is checked on before the first step.
PROBE_BATCH = 4


def check(run: dict) -> None:
    if run["patience"] is not None and run["val_fraction"] <= 0:
        raise ParamError("early stopping (patience) needs a validation split: set val_fraction > 0, e.g. 0.1")
    shift.check(run, on_features=False)
    data_selection.check(run)

def train_steps(pre: dict, run: dict) -> list:
    """Augmentations for training, on PIL images (the backbone's normalisation follows them)."""
    from torchvision import transforms as T

    size = int(pre["input_size"])
    steps = [T.RandomResizedCrop(size, scale=(run["crop_scale"], 1.0), antialias=True)
             if run["crop_scale"] < 1.0 else T.Resize((size, size), antialias=True)]
    if run["hflip"]:
        steps.append(T.RandomHorizontalFlip())
    if run["rotation"] > 0:
        steps.append(T.RandomRotation(run["rotation"]))
    if run["color_jitter"] > 0:
        j = run["color_jitter"]
        steps.append(T.ColorJitter(brightness=j, contrast=j, saturation=j))
    return steps


def images(pre: dict, run: dict, split: str, steps: list | None = None) -> tuple:
    """(transform, normalise) of a split's images: the uint8 fast path (``Pixels``; ``normalise`` finishes
    each batch), or with a pixel shift on the split, float tensors with it inserted (``normalise`` None).
    ``steps`` are PIL transforms (augmentations); None resizes as extraction does."""
    from torchvision import transforms as T

    if shift.pixel_shift(run, split):
        steps = resize_steps(pre) if steps is None else steps
        tensors = T.Compose([*steps, T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])
        return shift.shifted(tensors, run, split), None
    pixels = Pixels(pre, steps)
    return pixels, pixels.normalise


def freeze_until(model, name: str | None) -> None:
    """Freeze every parameter registered before and inside module ``name`` (timm orders stem → head)."""
    if not name:
        return
    names = [n for n, _ in model.named_parameters()]
    inside = [i for i, n in enumerate(names) if n == name or n.startswith(name + ".")]
    if not inside:
        stages = sorted({n.split(".")[0] + ("." + n.split(".")[1] if n.split(".")[1].isdigit() else "")
                         for n in names if "." in n})
        raise ParamError(f"freeze_until: no module '{name}' in this backbone (e.g. {', '.join(stages[:8])})")
    for i, (_, p) in enumerate(model.named_parameters()):
        if i <= inside[-1]:
            p.requires_grad_(False)


def _keep_frozen_statistics(model) -> None:
    """Frozen batch-norm layers stay in eval mode, so their running statistics stay as pre-trained too."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                module.eval()


def _network(backbone, n_classes: int, pre: dict, freeze: str | None):
    import torch

    body = backbone.build()
    for p in body.parameters():
        p.requires_grad_(True)
    freeze_until(body, freeze)
    dim = getattr(body, "num_features", None)
    if not dim:
        with torch.no_grad():
            dim = body.eval()(torch.zeros(1, 3, pre["input_size"], pre["input_size"])).shape[1]
    return save.network(body, dim, n_classes), int(dim)


def _loader(split, transform, indices, batch_size, num_workers, shuffle=False, seed=0, pin=False):
    import torch

    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(DecodedSplit(split, transform, indices), batch_size=batch_size,
                                       shuffle=shuffle, num_workers=num_workers, collate_fn=collate,
                                       generator=generator, drop_last=False, pin_memory=pin,
                                       persistent_workers=shuffle and num_workers > 0)


def _schedule(optimizer, warmup_steps: int, total_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _optimizer(model, run: dict):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if run["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=run["lr"], momentum=run["momentum"], weight_decay=run["weight_decay"],
                               nesterov=run["momentum"] > 0)
    return torch.optim.AdamW(params, lr=run["lr"], weight_decay=run["weight_decay"])


def predict(model, loader, compute: Compute, normalise=None, unreadable: dict | None = None):
    """(indices, predictions) over a loader in ``compute``'s precision, skipping unreadable images (their
    index -> reason go into ``unreadable``)."""
    import torch

    model.eval()
    seen, preds = [], []
    with torch.inference_mode():
        for indices, x, bad in on_device(loader, compute):
            if unreadable is not None:
                unreadable.update(bad)
            if x is not None:
                x = normalise(x) if normalise else x
                preds.append(run_batch(model, compute, x, place=False).argmax(1))
                seen.extend(indices)
    return np.asarray(seen, dtype=np.int64), (torch.cat(preds).cpu().numpy() if preds else np.array([], dtype=np.int64))


def checked_plan(model, plan: Compute, split, indices: np.ndarray, pre: dict) -> Compute:
    """``plan`` checked on a few training images (see ``checked_forward``), in eval mode without gradients,
    so batch-norm statistics and random state stay as they were; the first training step checks the rest."""
    import torch

    decoded = DecodedSplit(split, Pixels(pre), indices[:PROBE_BATCH])
    _, x, _ = collate([decoded[i] for i in range(len(decoded))])
    if x is None:
        return plan
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            compute, _ = checked_forward(model, plan, Pixels(pre).normalise(x))
    finally:
        model.train(was_training)
    return compute


class PrecisionRace:
    """Times real training steps in the planned bf16 and in float32 (same layout), alternately, and keeps
    the faster for the rest of the run: bf16 autocast speeds inference up on CPUs with native bf16 but can
    slow training down (2 cores of a Xeon with AMX: 31.5 img/s against float32's 58.3 in channels_last,
    EfficientNet-Lite0 at 128 px). Each precision's first step warms it up; the rest are timed, best of two.
    Only the compute changes between steps, never the weights, layout or optimiser state."""

    ORDER = (0, 0, 1, 1, 0, 1)  # which candidate runs each raced step
    WARM = (0, 2)  # steps that warm a candidate up (untimed)
    # With a ``key`` (the network and batch shape), the first race in a process decides for the later ones: every
    # run still steps through ORDER alike, then takes the same winner, so a seed repeats its result within a
    # process instead of following the timing noise of each race.
    decided: dict = {}

    def __init__(self, plan: Compute, key: tuple = ()):
        self.candidates = [plan, replace(plan, precision="fp32")]
        self.times: list[list[float]] = [[], []]
        self.step, self.winner = 0, None
        self.key = (plan.device, plan.channels_last, *key) if key else None

    @classmethod
    def applies(cls, plan: Compute, total_steps: int) -> bool:
        """Raced only when bf16 is planned and the run is long enough to gain from the choice."""
        return plan.precision == "bf16" and total_steps >= 2 * len(cls.ORDER)

    def next(self) -> Compute:
        return self.candidates[self.ORDER[self.step]]

    def record(self, compute: Compute, started: float) -> None:
        """The step that ran in ``compute`` since ``started`` (``time.perf_counter``) is over."""
        import torch

        if compute.device_type == "cuda":
            torch.cuda.synchronize()  # the step's kernels are queued, not finished: time them all
        if self.step not in self.WARM:
            self.times[self.ORDER[self.step]].append(time.perf_counter() - started)
        self.step += 1
        if self.step == len(self.ORDER):
            bf16, fp32 = (min(t) for t in self.times)
            plan = self.candidates[0]
            faster = plan if bf16 < fp32 else self.candidates[1].fell_back(
                plan, [f"bf16 training steps were slower here ({bf16:.3f} s against float32's {fp32:.3f} s a batch)"])
            self.winner = self.decided.setdefault(self.key, faster) if self.key else faster


class _Trainer:
    def __init__(self, model, run: dict, compute: Compute, steps_per_epoch: int, progress: Progress, normalise=None):
        import torch

        self.model, self.run, self.compute, self.progress = model, run, compute, progress
        self.normalise = normalise
        self.optimizer = _optimizer(model, run)
        total = steps_per_epoch * run["epochs"]
        self.scheduler = _schedule(self.optimizer, int(round(run["warmup_epochs"] * steps_per_epoch)), total)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=run["label_smoothing"])
        self.scaler = compute.scaler()
        self.stepped = False
        shape = (type(model).__name__, sum(p.numel() for p in model.parameters()), run["batch_size"], run["image_size"])
        self.race = PrecisionRace(compute, shape) if PrecisionRace.applies(compute, total) else None
        self.unreadable: dict[int, str] = {}  # index in the train split -> why it could not be read

    def _step(self, x, y, index: int):
        import torch

        with self.compute.autocast():
            logits = self.model(self.compute.inputs(x))
            loss = self.loss_fn(logits, y)
        if not torch.isfinite(loss):
            raise ParamError(f"training diverged (loss {loss.item()}) at epoch {index}: lower lr "
                             f"(now {self.run['lr']:g})")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return logits, loss

    def _first_step(self, x, y, index: int):
        """The first step, retried in float32 (contiguous) if the planned precision or layout breaks in training."""
        safe = self.compute.safest()
        if (self.compute.precision, self.compute.channels_last) == ("fp32", False):
            return self._step(x, y, index)
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        try:
            return self._step(x, y, index)
        except Exception as exc:  # noqa: BLE001 - a plan failing in training falls back, as in extraction
            self.optimizer.zero_grad(set_to_none=True)
            for name, b in self.model.named_buffers():
                b.copy_(buffers[name])  # undo the failed forward pass's batch-norm update
            reason = f"the first training step failed ({error_line(exc)})"
            self.compute = safe.fell_back(self.compute, [reason])
            self.compute.place(self.model)
            self.scaler, self.race = None, None
            self.progress.note(self.compute.notes[-1])
            return self._step(x, y, index)

    def _raced_step(self, x, y, index: int):
        """One step; while a ``PrecisionRace`` runs, in the precision it times next, and decided when it ends."""
        if self.race is not None:
            self.compute = self.race.next()
        t0 = time.perf_counter()
        logits, loss = (self._step if self.stepped else self._first_step)(x, y, index)
        self.stepped = True
        if self.race is not None:  # (a first step that fell back ended the race)
            self.race.record(self.compute, t0)
            if self.race.winner is not None:
                self.compute, self.race = self.race.winner, None
                for note in self.compute.notes:
                    self.progress.note(note)
        return logits, loss

    def epoch(self, loader, labels: np.ndarray, index: int) -> dict:
        import torch

        self.model.train()
        _keep_frozen_statistics(self.model)
        total_loss = correct = seen = 0
        t0 = time.perf_counter()
        with self.progress.stage(f"fine-tune epoch {index}/{self.run['epochs']}", len(loader.dataset)):
            for indices, x, bad in on_device(loader, self.compute):
                self.progress.advance(len(indices) + len(bad))
                self.unreadable.update(bad)
                if x is None:
                    continue
                y = torch.as_tensor(labels[indices], device=self.compute.device)
                x = self.normalise(x) if self.normalise else x
                logits, loss = self._raced_step(x, y, index)
                self.scheduler.step()
                total_loss += loss.item() * len(indices)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(indices)
        return {"epoch": index, "train_loss": total_loss / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                "lr": self.optimizer.param_groups[0]["lr"], "time_s": time.perf_counter() - t0}


def _splits(splits, run: dict):
    train_labels = np.asarray(splits.train.labels, dtype=np.int64)
    test_labels = np.asarray(splits.test.labels, dtype=np.int64)
    train_idx = fixed_subset(train_labels, run["max_train"])
    train_idx = np.arange(len(train_labels)) if train_idx is None else train_idx
    test_idx = fixed_subset(test_labels, run["max_test"])
    test_idx = np.arange(len(test_labels)) if test_idx is None else test_idx
    val_idx = np.array([], dtype=np.int64)
    if run["val_fraction"] > 0:
        train_idx, val_idx = holdout(train_labels, train_idx, run["val_fraction"])
    return train_labels, test_labels, train_idx, val_idx, test_idx


def fine_tune(rs, cache, device: str, progress: Progress) -> RunResult:
    """Train backbone + linear head; returns the same result fields as top-tuning, plus epochs."""
    spec, run = rs.spec, rs.params["run"]
    dataset = registry.create("dataset", spec.dataset, **rs.params["dataset"])
    backbone = registry.create("backbone", spec.backbone, **rs.params["backbone"])
    splits = dataset.load()
    info = dataset_info(splits)
    train_labels, test_labels, train_idx, val_idx, test_idx = _splits(splits, run)
    if len(np.unique(train_labels[train_idx])) < 2:
        raise DatasetError(f"dataset '{spec.dataset}': fewer than 2 classes in the training split")
    train_idx, selection = choose_subset(rs, splits, backbone, dataset, train_idx, cache, device, progress)
    pre = preprocessing(backbone, run["image_size"])
    model, dim = _network(backbone, len(splits.classes), pre, run["freeze_until"])
    plan = resolve(run["precision"], device, model)
    model = plan.place(model)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    eval_tf = build_transform(pre)
    bs, pin = run["batch_size"], plan.device_type == "cuda"
    nw = loader_workers(run["num_workers"], device, -(-len(train_idx) // bs))
    train_tf, normalise = images(pre, run, "train", train_steps(pre, run))
    train_loader = _loader(splits.train, train_tf, train_idx, bs, nw, shuffle=True, seed=spec.seed, pin=pin)
    train_loader = reselecting(train_loader, selection, model,
                               lambda pool: _loader(splits.train, shift.shifted(eval_tf, run, "train"), pool, bs, nw),
                               train_labels, device, progress)
    val_tf, val_normalise = images(pre, run, "train")
    val_loader = _loader(splits.train, val_tf, val_idx, bs, nw, pin=pin) if len(val_idx) else None

    epochs, best, best_acc, stale = [], None, -1.0, 0
    t0 = time.perf_counter()
    compute = checked_plan(model, plan, splits.train, train_idx, pre)
    trainer = _Trainer(model, run, compute, len(train_loader), progress, normalise)
    for e in range(1, run["epochs"] + 1):
        row = trainer.epoch(train_loader, train_labels, e)
        if e == 1:
            train_bad = _skipped_train(spec, splits.train, train_idx, trainer.unreadable, progress)
        if val_loader is not None:
            seen, pred = predict(model, val_loader, trainer.compute, val_normalise, trainer.unreadable)
            row["val_accuracy"] = float(np.mean(pred == train_labels[seen])) if len(seen) else None
            if row["val_accuracy"] is not None and row["val_accuracy"] > best_acc:
                best_acc, stale = row["val_accuracy"], 0
                best = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            else:
                stale += 1
        epochs.append(row)
        progress.note(_epoch_line(row))
        if run["patience"] is not None and stale >= run["patience"]:
            progress.note(f"early stopping after epoch {e}: no validation gain for {stale} epochs")
            break
    if best is not None:
        model.load_state_dict(best)
    train_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_tf, test_normalise = images(pre, run, "test")
    test_bad: dict[int, str] = {}
    seen, y_pred = predict(model, _loader(splits.test, test_tf, test_idx, bs, nw, pin=pin), trainer.compute,
                           test_normalise, test_bad)
    predict_time = time.perf_counter() - t0
    if not len(seen):
        raise DatasetError(f"dataset '{spec.dataset}': no readable test image")
    if test_bad:
        progress.note(unreadable_note("test", splits.test, sorted(test_bad.items())))
    # Unreadable images are skipped, listed and counted as top-tuning does (its train covers the val part too).
    info.update(unreadable({"train": (splits.train, sorted(trainer.unreadable.items())),
                            "test": (splits.test, sorted(test_bad.items()))}))
    info.update(preprocessing=pre, weights_digest=backbone.weights_digest(), n_val=int(len(val_idx)),
                epochs_run=len(epochs), best_val_accuracy=best_acc if best is not None else None,
                **trainer.compute.info(), num_workers=nw)
    if selection:
        info["selection"] = selection.summary()
    params = {ns: dict(values) for ns, values in rs.params.items()}
    params["run"]["image_size"] = int(pre["input_size"])  # the size used, the backbone's when unset
    return RunResult(
        accuracy=float(np.mean(y_pred == test_labels[seen])), train_time_s=train_time, extract_time_s=None,
        fit_time_s=train_time, predict_time_s=predict_time, trained_params=int(trained),
        n_train=int(len(train_idx)) - train_bad, n_test=int(len(seen)), n_classes=len(splits.classes), feature_dim=dim,
        cache_hit=None, pretrain_source=getattr(backbone, "pretrain_source", None), params=params, info=info,
        y_true=test_labels[seen], y_pred=y_pred, samples=seen, epochs=epochs,
        model=save.fine_tuned(rs, backbone, model, splits.classes, pre, dim, trainer.compute.record())
        if run["save_model"] else None,
    )


def _skipped_train(spec, split, train_idx: np.ndarray, bad: dict, progress: Progress) -> int:
    """After the first epoch has read every training image once: how many were unreadable (said once);
    a DatasetError when none was readable, as top-tuning's extraction raises."""
    used = set(train_idx.tolist())
    mine = sorted((i, why) for i, why in bad.items() if i in used)
    if mine and len(mine) == len(train_idx):
        raise DatasetError(f"dataset '{spec.dataset}': no readable training image among {len(train_idx)} "
                           f"(first error: {mine[0][1]})")
    if mine:
        progress.note(unreadable_note("train", split, mine))
    return len(mine)


def _epoch_line(row: dict) -> str:
    val = f", val acc {row['val_accuracy']:.4f}" if row.get("val_accuracy") is not None else ""
    return (f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, train acc {row['train_accuracy']:.4f}{val}, "
            f"{row['time_s']:.1f} s")


METHOD = Method("fine-tune", "the backbone plus a new linear head, trained end to end on the images", PARAMS,
                fine_tune, check=check, trains_network=True)
