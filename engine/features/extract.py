"""Feature extraction with a frozen backbone: decode, transform, forward, one row per image.

Images that fail to decode are skipped and counted rather than failing a run over one bad file; a split
with no readable image is an error. ``DecodedSplit`` and ``collate`` also feed fine-tuning's loaders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import DatasetError, PluginError
from ..measure.device import loader_workers
from ..measure.precision import Compute, checked_forward, resolve, run_batch
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
    # How the network ran (precision, channels_last, fallback notes, num_workers); empty for cached features.
    compute: dict = field(default_factory=dict)


def resize_steps(pre: dict) -> list:
    """The resizing (and centre crop) of a backbone's preprocessing dict, on PIL images."""
    from torchvision import transforms as T

    modes = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
             "nearest": T.InterpolationMode.NEAREST}
    size = int(pre["input_size"])
    interp = modes.get(pre.get("interpolation", "bilinear"), T.InterpolationMode.BILINEAR)
    crop_pct = float(pre.get("crop_pct", 1.0))
    if crop_pct >= 1.0:
        return [T.Resize((size, size), interpolation=interp)]
    return [T.Resize(int(size / crop_pct), interpolation=interp), T.CenterCrop(size)]


def build_transform(pre: dict):
    """Image -> normalised tensor, from a backbone's preprocessing dict."""
    from torchvision import transforms as T

    return T.Compose([*resize_steps(pre), T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])


class Pixels:
    """``build_transform``'s fast path, with the same pixels: each image is resized in PIL and kept as
    uint8 (h, w, 3); ``normalise`` turns a stacked batch into exactly the floats ToTensor and Normalize
    give, by the same operations in the same order, once per batch instead of once per image. ``steps``
    (PIL transforms, e.g. fine-tuning's augmentations) replace the resizing.

    A uint8 batch is a quarter of the bytes to hand from a worker or copy to a GPU, and normalising
    after the copy puts that work on the device. (n, h, w, 3) viewed as (n, 3, h, w) is already
    channels_last, so that layout costs no copy.
    """

    def __init__(self, pre: dict, steps: list | None = None):
        from torchvision import transforms as T

        self.resize = T.Compose(resize_steps(pre) if steps is None else steps)
        self.mean, self.std = list(pre["mean"]), list(pre["std"])

    def __call__(self, image):
        import torch

        from ..data import to_rgb

        return torch.from_numpy(np.array(self.resize(to_rgb(image)), dtype=np.uint8))

    def normalise(self, batch):
        """(n, h, w, 3) uint8 on any device -> (n, 3, h, w) float32, channels_last."""
        import torch

        x = batch.permute(0, 3, 1, 2).float().div_(255)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)


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


# Feature rows stay on the device for this many batches before one copy to the host.
FLUSH_BATCHES = 64


def on_device(loader, compute: Compute):
    """The loader's batches with their images copied to the device one batch ahead, so on CUDA the copy
    of the next batch (from pinned memory, asynchronous) overlaps the forward pass of this one."""
    ahead = None
    for indices, x, bad in loader:
        batch = (indices, None if x is None else compute.inputs(x) if compute.device_type == "cuda" else x, bad)
        if ahead is not None:
            yield ahead
        ahead = batch
    if ahead is not None:
        yield ahead


def extract(module, split, pre: dict, *, device: str = "cpu", batch_size: int = 32, num_workers: int | None = None,
            subset: np.ndarray | None = None, progress: Progress | None = None, stage: str = "extract",
            transform=None, source: str = "the backbone", precision: str | Compute = "auto"):
    """Run ``module`` over ``split`` (or its ``subset`` of indices); returns a FeatureSet.

    ``transform`` replaces the one built from ``pre`` (e.g. with a covariate-shift step inserted); without
    it images take the uint8 fast path (``Pixels``). ``precision`` is the run parameter or a checked
    ``Compute`` (see ``toptune.measure.precision``); ``num_workers`` None picks them (``loader_workers``).
    ``source`` names the backbone (and its distribution) in the error raised for outputs of the wrong shape.
    """
    import torch

    progress = progress or Progress()
    subset = np.arange(len(split)) if subset is None else np.asarray(subset, dtype=np.int64)
    plan = precision if isinstance(precision, Compute) else resolve(precision, device, module)
    workers = loader_workers(num_workers, device, -(-len(subset) // batch_size))
    pixels = Pixels(pre) if transform is None else None
    loader = torch.utils.data.DataLoader(
        DecodedSplit(split, pixels or transform, subset), batch_size=batch_size, num_workers=workers,
        collate_fn=collate, pin_memory=plan.device_type == "cuda",
    )
    feats, pending, kept, skipped, compute = [], [], [], [], None
    start = time.perf_counter()
    with progress.stage(stage, len(subset)), torch.inference_mode():
        for indices, x, bad in on_device(loader, plan):
            skipped.extend(bad)
            if x is not None:
                x = pixels.normalise(x) if pixels is not None else x
                if compute is None:
                    compute, out = checked_forward(module, plan, x)
                else:
                    out = run_batch(module, compute, x, place=False)
                pending.append(_feature_rows(out, len(x), source))
                kept.extend(indices)
                if len(pending) == FLUSH_BATCHES:  # on CUDA: one wait for the GPU per this many batches
                    feats.append(torch.cat(pending).cpu().numpy())
                    pending = []
            progress.advance(len(indices) + len(bad))
        if pending:
            feats.append(torch.cat(pending).cpu().numpy())
    elapsed = time.perf_counter() - start
    if not kept:
        first = f" (first error: {skipped[0][1]})" if skipped else ""
        raise DatasetError(f"{stage}: no readable image among {len(subset)}{first}")
    kept = np.asarray(kept, dtype=np.int64)
    labels = np.asarray(split.labels, dtype=np.int64)[kept]
    return FeatureSet(np.concatenate(feats), labels, kept, elapsed, skipped,
                      compute={**compute.info(), "num_workers": workers})
