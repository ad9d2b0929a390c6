"""Every CUDA path of toptune end to end in one short script, with the peak memory of each, in one table.

    python bench/gpu.py            # full sizes: under 6 minutes on one GPU
    python bench/gpu.py --small    # small sizes, any machine (this is how the tests run it on a CPU)

The device is CUDA when present, else the CPU (slowly, so use ``--small`` there). Steps:

1. extraction: toptune's ``extract`` at ``precision=auto`` (fp16 AMP in channels_last on CUDA, pinned and
   prefetched uint8 batches normalised on the device) over a folder of photo crops, decoding included;
2. fine-tuning: one AMP epoch of a ``fine-tune`` run on the same folder (decoding and augmentation included);
3. kernel fit: toptune's kernel classifier on n = 50,000, d = 2,048, M = 10,000 (bench/solver.py's
   synthetic problem) on the device, then the same fitted model reloaded on the CPU from its saved
   state: the share of held-out points on which CPU and device predictions agree;
4. a sweep cell: a one-cell sweep (top-tuning, kernel, on digits) on local Ray, whose extraction task
   and cell take the GPU; its peak memory is the cell's own, as the store recorded it;
5. ONNX: the model of a top-tuning run on the photos exported to ONNX and run in ONNX Runtime against
   toptune's own prediction (agreement of the predicted classes), and ``load_model(...).predict``'s speed.

Peak memory: the CUDA allocator's peak during the step (on a CPU: the process's peak resident memory).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from photos import make_photo_folder
from solver import synthetic

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune import load_model, registry
from toptune.data import preprocessing
from toptune.features.extract import extract
from toptune.measure.device import PeakMemory, pick_device
from toptune.models import export as exporter
from toptune.plugins.classifiers.kernel import KernelClassifier
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store

BACKBONE = "efficientnet_lite0"
FULL = {"images": 4000, "image_size": None, "train_images": 2000, "batch": 128, "n": 50_000, "d": 2048, "M": 10_000,
        "n_test": 5_000, "sweep_train": 1000, "onnx_images": 512}
SMALL = {"images": 48, "image_size": 64, "train_images": 32, "batch": 16, "n": 2_000, "d": 64, "M": 200,
         "n_test": 500, "sweep_train": 60, "onnx_images": 24}


class Table:
    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, step: str, size: str, seconds: float, rate: str, peak_mb: float | None, check: str = "") -> None:
        self.rows.append((step, size, seconds, rate, peak_mb, check))
        print(f"  done: {step} ({seconds:.1f} s)", flush=True)

    def print(self, title: str) -> None:
        print(f"\n{title}\n")
        print("| step | size | seconds | throughput | peak memory | check |")
        print("|---|---|---:|---:|---:|---|")
        for step, size, seconds, rate, peak, check in self.rows:
            memory = f"{peak:,.0f} MB" if peak is not None else "?"
            print(f"| {step} | {size} | {seconds:.2f} | {rate} | {memory} | {check} |")


def extraction(table: Table, folder: Path, sizes: dict, device: str) -> None:
    split = registry.create("dataset", "imagefolder", path=str(folder)).load().train
    n = min(sizes["images"], len(split))
    backbone = registry.create("backbone", BACKBONE)
    pre = preprocessing(backbone, sizes["image_size"])
    module = backbone.build()
    extract(module, split, pre, device=device, batch_size=sizes["batch"], subset=np.arange(sizes["batch"]))  # warm
    with PeakMemory(device).track() as peak:
        fs = extract(module, split, pre, device=device, batch_size=sizes["batch"], subset=np.arange(n))
    table.add("extraction", f"{n} images, {pre['input_size']} px, batch {sizes['batch']}", fs.extract_time_s,
              f"{n / fs.extract_time_s:,.0f} img/s", peak.peak_mb,
              f"{fs.compute['precision']}{' channels_last' if fs.compute['channels_last'] else ''}, "
              f"{fs.compute['num_workers']} workers")


def fine_tuning(table: Table, folder: Path, sizes: dict, device: str, store: Store) -> None:
    size = sizes["image_size"] or 224
    spec = RunSpec("fine-tune", BACKBONE, "imagefolder", None,
                   {"dataset.path": str(folder), "image_size": size, "max_train": sizes["train_images"],
                    "max_test": sizes["batch"], "epochs": 1, "batch_size": sizes["batch"], "device": device,
                    "save_model": False})
    _, result = run(spec, store)
    epoch = result.epochs[0]
    table.add("fine-tuning epoch", f"{result.n_train} images, {size} px, batch {sizes['batch']}", epoch["time_s"],
              f"{result.n_train / epoch['time_s']:,.0f} img/s", result.peak_memory_mb,
              f"{result.info['precision']} AMP, loss {epoch['train_loss']:.3f}")


def kernel_fit(table: Table, sizes: dict, device: str) -> None:
    n, d, m = sizes["n"], sizes["d"], sizes["M"]
    x, y = synthetic(n + sizes["n_test"], d)
    train, test = slice(0, n), slice(n, None)
    clf = KernelClassifier(M=m, device=device)
    with PeakMemory(device).track() as peak:
        t0 = time.perf_counter()
        clf.fit(x[train], y[train])
        seconds = time.perf_counter() - t0
        on_device = np.asarray(clf.predict(x[test]))
    settings, arrays = clf.save_state()
    on_cpu = KernelClassifier.load_state({**settings, "params": {**settings["params"], "device": "cpu"}}, arrays)
    agree = float(np.mean(np.asarray(on_cpu.predict(x[test])) == on_device))
    table.add("kernel fit", f"n={n:,}, d={d:,}, M={m:,}", seconds, f"{n / seconds:,.0f} rows/s", peak.peak_mb,
              f"accuracy {np.mean(on_device == y[test]):.4f}; CPU/{device} agreement {100 * agree:.2f} %")


def sweep_cell(table: Table, sizes: dict, root: Path) -> None:
    from toptune.sweeps.driver import sweep
    from toptune.sweeps.spec import SweepSpec

    spec = SweepSpec.from_dict({"datasets": ["digits"], "backbones": [BACKBONE], "classifiers": ["kernel"],
                                "params": {"max_train": sizes["sweep_train"], "max_test": sizes["sweep_train"] // 2,
                                           **({"image_size": sizes["image_size"]} if sizes["image_size"] else {})}})
    store = Store(root / "sweep.duckdb")
    t0 = time.perf_counter()
    report = sweep(spec, store, cache_dir=root / "sweep-features")
    seconds = time.perf_counter() - t0
    (cell,) = store.runs(sweep_id=spec.sweep_id)
    table.add("sweep cell (Ray)", f"top-tune kernel, digits, {sizes['sweep_train']} train", seconds,
              f"{report.finished} of {report.total} cells", cell.get("peak_memory_mb"),
              f"{cell['status']} on {cell['device']}, accuracy {cell['accuracy']:.4f}")


def onnx(table: Table, folder: Path, sizes: dict, device: str, store: Store, root: Path) -> None:
    spec = RunSpec("top-tune", BACKBONE, "imagefolder", "kernel",
                   {"dataset.path": str(folder), "max_train": sizes["train_images"], "max_test": sizes["onnx_images"],
                    "device": device, "cache": False, **({"image_size": sizes["image_size"]}
                                                         if sizes["image_size"] else {})})
    run_id, _ = run(spec, store)
    test = registry.create("dataset", "imagefolder", path=str(folder)).load().test
    images = [str(folder / test.paths[i]) for i in range(min(sizes["onnx_images"], len(test)))]
    model = load_model(run_id, store=store, device=device)
    model.predict(images[: sizes["batch"]])  # warm
    with PeakMemory(device).track() as peak:
        t0 = time.perf_counter()
        model.predict(images)
        seconds = time.perf_counter() - t0
    path = exporter.export(model, root / "model.onnx", "onnx")
    found = exporter.agreement(model, path, images, "onnx")
    table.add("ONNX export + predict", f"{len(images)} images, {model.input_size} px", seconds,
              f"{len(images) / seconds:,.0f} img/s (toptune predict)", peak.peak_mb,
              f"ONNX Runtime agreement {100 * found['agreement']:.2f} %, max score diff "
              f"{found['max_score_difference']:.2g}")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (for CPUs and the tests)")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip: extraction,fine-tuning,kernel,"
                                                   "sweep,onnx")
    args = parser.parse_args()
    sizes, device = (SMALL if args.small else FULL), pick_device("auto")
    skip = set(filter(None, args.skip.split(",")))
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    t0 = time.perf_counter()
    table = Table()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        per_class = -(-sizes["images"] * 4 // 30)  # 13 classes, 75 % of each in the training split
        folder = make_photo_folder(root / "photos", per_class=per_class)
        store = Store(root / "runs.duckdb")
        steps = {"extraction": lambda: extraction(table, folder, sizes, device),
                 "fine-tuning": lambda: fine_tuning(table, folder, sizes, device, store),
                 "kernel": lambda: kernel_fit(table, sizes, device),
                 "sweep": lambda: sweep_cell(table, sizes, root),
                 "onnx": lambda: onnx(table, folder, sizes, device, store, root)}
        for step, work in steps.items():
            if step not in skip:
                work()
    table.print(f"{device} ({name}), torch {torch.__version__}, {'small' if args.small else 'full'} sizes, "
                f"{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
