"""Throughput of feature extraction and fine-tuning against the bare network, in one process on the same images.

    python bench/throughput.py                       # photo folder (bench/photos.py), 256 images, 224 px
    python bench/throughput.py --data ~/imgs --images 512 --rounds 5

Rows, each the best of ``--rounds`` interleaved rounds (the first round also warms every path up; its
figure is printed as "cold"), as images per second, as a ratio to the first row of its group and as a
share of the group's ceiling (its fastest bare row):

- inference: the bare fp32 eager forward (the floor a naive script gets: contiguous float32, batches of
  images decoded beforehand); toptune's extraction (``features.extract.extract`` at the default
  ``precision=auto``, decoding and resizing the files included); the bare forward in float32
  channels_last and in ``auto``'s reduced precision (bf16 autocast in channels_last on CPUs with native
  bf16, fp16 AMP on CUDA): the hardware's ceiling for this network is the faster of the two;
- fine-tuning: the same for training steps (forward, backward, AdamW step) at ``--train-size`` px: the
  bare fp32 step on decoded images; toptune's fine-tuning (a ``fine-tune`` run of 2 epochs, the second
  epoch's time, decoding and augmentation included: by then the run has settled its precision); the
  bare step in float32 channels_last and in the reduced precision.

Targets (a CPU with native bf16): toptune ≥ 1.7× the bare fp32 row and ≥ 90 % of the ceiling, for
extraction and for fine-tuning alike.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from photos import make_photo_folder

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune import registry
from toptune.data import preprocessing
from toptune.features.extract import build_transform, extract
from toptune.measure.device import pick_device
from toptune.measure.precision import Compute, resolve
from toptune.models.save import network
from toptune.runner import execute
from toptune.spec import RunSpec

BACKBONE = "efficientnet_lite0"
SPEED_UP, OF_CEILING = 1.7, 0.9


def decoded(split, pre: dict, n: int):
    """The first ``n`` images of ``split`` decoded and normalised once, as the bare rows get them."""
    import torch

    transform = build_transform(pre)
    return torch.stack([transform(split[i][0]) for i in range(n)])


def batches(x, size: int):
    return [x[i:i + size] for i in range(0, len(x), size)]


def bare_forward(module, images, compute: Compute) -> float:
    """Seconds for the bare forward pass over every batch (no decoding), in ``compute``'s plan."""
    import torch

    module = compute.place(module)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in images:
            with compute.autocast():
                module(compute.inputs(x)).float().cpu()
    _sync(compute)
    return time.perf_counter() - t0


def bare_steps(model, optimizer, images, labels, compute: Compute) -> float:
    """Seconds for a training step (forward, backward, AdamW) on every batch, in ``compute``'s plan."""
    import torch

    model = compute.place(model).train()
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = compute.scaler()
    t0 = time.perf_counter()
    for x, y in zip(images, labels):
        with compute.autocast():
            loss = loss_fn(model(compute.inputs(x)), y.to(compute.device))
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
    _sync(compute)
    return time.perf_counter() - t0


def _sync(compute: Compute) -> None:
    import torch

    if compute.device_type == "cuda":
        torch.cuda.synchronize()


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


class Row:
    def __init__(self, group: str, name: str, images: int, run):
        self.group, self.name, self.images, self.run = group, name, images, run
        self.times: list[float] = []

    def measure(self) -> None:
        self.times.append(self.run())

    @property
    def best(self) -> float:
        return self.images / min(self.times)

    @property
    def cold(self) -> float:
        return self.images / self.times[0]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="an image folder (class folders); default: photo crops")
    parser.add_argument("--images", type=int, default=256, help="images per row")
    parser.add_argument("--image-size", type=int, default=None, help="extraction input size (default: 224)")
    parser.add_argument("--train-size", type=int, default=128, help="fine-tuning input size (the CPU preset's)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-fine-tune", action="store_true")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)

    folder = Path(args.data) if args.data else make_photo_folder(Path(tempfile.mkdtemp()) / "photos",
                                                                 per_class=-(-args.images * 2 // 13))
    dataset = registry.create("dataset", "imagefolder", path=str(folder))
    train = dataset.load().train
    n = min(args.images, len(train))
    backbone = registry.create("backbone", BACKBONE)
    pre, train_pre = preprocessing(backbone, args.image_size), preprocessing(backbone, args.train_size)
    naive, best = Compute(device), resolve("auto", device, backbone.build())
    layout = Compute(device, "fp32", True)
    load_before = _load()

    images = batches(decoded(train, pre, n), args.batch)
    modules = [backbone.build() for _ in range(4)]
    rows = [
        Row("inference", "bare fp32 eager forward (naive)", n, lambda: bare_forward(modules[0], images, naive)),
        Row("inference", "toptune extraction (decode included)", n,
            lambda: extract(modules[1], train, pre, device=device, batch_size=args.batch,
                            subset=np.arange(n)).extract_time_s),
        Row("inference", "bare forward, fp32 channels_last", n, lambda: bare_forward(modules[2], images, layout)),
        Row("inference", f"bare forward, {best.describe()}", n, lambda: bare_forward(modules[3], images, best)),
    ]
    if not args.skip_fine_tune:
        n_classes = len(dataset.load().classes)
        small = batches(decoded(train, train_pre, n), args.batch)
        labels = batches(torch.as_tensor(train.labels[:n]), args.batch)
        nets = [network(backbone.build().requires_grad_(True), 1280, n_classes) for _ in range(3)]
        for net in nets[1:]:
            net.load_state_dict(copy.deepcopy(nets[0].state_dict()))
        optimizers = [torch.optim.AdamW(net.parameters(), lr=1e-4) for net in nets]
        spec = RunSpec("fine-tune", BACKBONE, "imagefolder", None,
                       {"dataset.path": str(folder), "image_size": args.train_size, "max_train": n, "max_test": 10,
                        "epochs": 2, "batch_size": args.batch, "save_model": False, "device": device})

        def toptune_epoch() -> float:
            result = execute(spec)
            return result.epochs[-1]["time_s"] * n / result.n_train

        rows += [
            Row("fine-tuning", "bare fp32 eager step (naive)", n,
                lambda: bare_steps(nets[0], optimizers[0], small, labels, naive)),
            Row("fine-tuning", "toptune fine-tuning epoch (decode + augmentation)", n, toptune_epoch),
            Row("fine-tuning", "bare step, fp32 channels_last", n,
                lambda: bare_steps(nets[1], optimizers[1], small, labels, layout)),
            Row("fine-tuning", f"bare step, {best.describe()}", n,
                lambda: bare_steps(nets[2], optimizers[2], small, labels, best)),
        ]
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        for row in rows:
            row.measure()
    name = platform.processor() or platform.machine()
    print(f"\n{BACKBONE}, {n} images of {folder.name}, batch {args.batch}, {device} ({name}, "
          f"{torch.get_num_threads()} threads), torch {torch.__version__}; best of {args.rounds} rounds, "
          f"{time.perf_counter() - t0:.0f} s; load average {load_before} before, {_load()} after\n")
    print("| | images/s | × bare fp32 | of the ceiling | cold images/s |")
    print("|---|---:|---:|---:|---:|")
    verdicts = []
    for group in dict.fromkeys(r.group for r in rows):
        naive_row, toptune_row, *bare = [r for r in rows if r.group == group]
        ceiling = max(bare, key=lambda r: r.best)
        size = args.train_size if group == "fine-tuning" else pre["input_size"]
        print(f"| **{group}, {size} px** | | | | |")
        for row in (naive_row, toptune_row, *bare):
            mark = " (ceiling)" if row is ceiling else ""
            print(f"| {row.name}{mark} | {row.best:.1f} | {row.best / naive_row.best:.2f}× | "
                  f"{100 * row.best / ceiling.best:.0f} % | {row.cold:.1f} |")
        ratio, share = toptune_row.best / naive_row.best, toptune_row.best / ceiling.best
        verdicts.append(
            f"{group}: toptune {ratio:.2f}× the bare fp32 {'step' if group == 'fine-tuning' else 'forward'} "
            f"(target ≥ {SPEED_UP}×: {'met' if ratio >= SPEED_UP else 'NOT met'}), {100 * share:.0f} % of the "
            f"ceiling (target ≥ {100 * OF_CEILING:.0f} %: {'met' if share >= OF_CEILING else 'NOT met'})")
    print("\n" + "\n".join(verdicts))

if __name__ == "__main__":
    main()
