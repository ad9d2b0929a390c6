"""Feature extraction with a frozen backbone: decode, transform, forward, one row per image.

Images that fail to decode are skipped and counted rather than failing a run over one bad file; a split
with no readable image is an error. ``DecodedSplit`` and ``collate`` also feed fine-tuning's loaders.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from ..errors import DatasetError, PluginError
from ..progress import Progress


@dataclass
class FeatureSet:
    """Features of one split: row i belongs to sample ``indices[i]`` of the split."""

    features: np.ndarray  # (n, d) float32
    labels: np.ndarray  # (n,) int64
    indices: np.ndarray  # (n,) int64, positions in the split (skipped samples are absent)
    extract_time_s: float  # time the extraction took when it actually ran
    skipped: list = field(default_factory=list)  # [(index, error message)]
    cache_hit: bool = False


def build_transform(pre: dict):
    """Image -> normalised tensor, from a backbone's preprocessing dict."""
    from torchvision import transforms as T

    modes = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
             "nearest": T.InterpolationMode.NEAREST}
    size = int(pre["input_size"])
    interp = modes.get(pre.get("interpolation", "bilinear"), T.InterpolationMode.BILINEAR)
    crop_pct = float(pre.get("crop_pct", 1.0))
    if crop_pct >= 1.0:
        resize = [T.Resize((size, size), interpolation=interp)]
    else:
        resize = [T.Resize(int(size / crop_pct), interpolation=interp), T.CenterCrop(size)]
    return T.Compose([*resize, T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])


class DecodedSplit:
    """Wraps a split for a DataLoader: decode + transform, turning decode failures into markers."""

    def __init__(self, split, transform, subset: np.ndarray):
        self.split, self.transform, self.subset = split, transform, subset

    def __len__(self):
        return len(self.subset)

    def __getitem__(self, i):
        index = int(self.subset[i])
        try:
            image, _ = self.split[index]
            return index, self.transform(image), None
        except Exception as exc:  # a corrupt or unreadable file: skip it, keep its reason
            return index, None, f"{type(exc).__name__}: {exc}"


def collate(batch):
    """Stack the readable images of a batch; keep the indices and errors of the unreadable ones."""
    import torch

    ok = [(i, x) for i, x, err in batch if err is None]
    bad = [(i, err) for i, _, err in batch if err is not None]
    tensors = torch.stack([x for _, x in ok]) if ok else None
    return [i for i, _ in ok], tensors, bad


def _feature_rows(out, n: int, source: str):
    """One float feature vector per image, or a PluginError saying what the backbone returned instead.

    A (N, D, 1, 1) output (a pooled map left unsqueezed) is accepted; anything else, e.g. an unpooled
    (N, C, H, W) map, would silently become thousands of meaningless features.
    """
    import torch

    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape is None or len(shape) < 2 or shape[0] != n or (len(shape) > 2 and any(s != 1 for s in shape[2:])):
        got = f"shape {shape}" if shape is not None else f"a {type(out).__name__}"
        raise PluginError(f"{source} returned {got} for a batch of {n} images; a backbone's module must "
                          f"return one feature vector per image, shape ({n}, D)")
    return out.float().flatten(1)


def extract(module, split, pre: dict, *, device: str = "cpu", batch_size: int = 32, num_workers: int = 0,
            subset: np.ndarray | None = None, progress: Progress | None = None, stage: str = "extract",
            transform=None, source: str = "the backbone"):
    """Run ``module`` over ``split`` (or its ``subset`` of indices); returns a FeatureSet.

    ``transform`` replaces the one built from ``pre`` (e.g. with a covariate-shift step inserted).
    ``source`` names the backbone (and its distribution) in the error raised for outputs of the wrong shape.
    """
    import torch

    progress = progress or Progress()
    subset = np.arange(len(split)) if subset is None else np.asarray(subset, dtype=np.int64)
    loader = torch.utils.data.DataLoader(
        DecodedSplit(split, transform or build_transform(pre), subset), batch_size=batch_size, num_workers=num_workers,
        collate_fn=collate, pin_memory=device.startswith("cuda"),
    )
    on_cuda = device.startswith("cuda")
    module = module.to(device)
    if on_cuda:
        module = module.to(memory_format=torch.channels_last)
    feats, kept, skipped = [], [], []
    start = time.perf_counter()
    with progress.stage(stage, len(subset)), torch.inference_mode():
        for indices, x, bad in loader:
            skipped.extend(bad)
            if x is not None:
                x = x.to(device, non_blocking=True)
                if on_cuda:
                    x = x.to(memory_format=torch.channels_last)
                with torch.autocast("cuda") if on_cuda else nullcontext():
                    out = module(x)
                feats.append(_feature_rows(out, len(x), source).cpu().numpy())
                kept.extend(indices)
            progress.advance(len(indices) + len(bad))
    elapsed = time.perf_counter() - start
    if not kept:
        first = f" (first error: {skipped[0][1]})" if skipped else ""
        raise DatasetError(f"{stage}: no readable image among {len(subset)}{first}")
    kept = np.asarray(kept, dtype=np.int64)
    labels = np.asarray(split.labels, dtype=np.int64)[kept]
    return FeatureSet(np.concatenate(feats).astype(np.float32), labels, kept, elapsed, skipped)
