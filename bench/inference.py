"""Inference speed and size of the models runs leave: PyTorch (toptune's own predict) against the exported
ONNX file in ONNX Runtime on the CPU, on the same images, side by side; and model bytes.

    python bench/inference.py [--images 256] [--image-size 224] [--classifier kernel]

Trains what it measures in a temporary store: a top-tuned model (EfficientNet-Lite0 features of digits and
the classifier) and a fine-tuned one (one short epoch; its accuracy is not the point here), then times
each model on the same test images, decoding included: toptune's PyTorch path (``model.predict``), and the
exported ONNX file in ONNX Runtime (resizing included, as a deployment would do it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune import registry
from toptune.models import export as exporter
from toptune.models import load_model
from toptune.models.files import size
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.store.artifacts import model_folder

BATCH = 32


def _time(fn, repeat: int = 2) -> float:
    """Best of ``repeat`` wall times (the first call also warms caches and thread pools)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(store: Store, run_id: str, images: list, folder: Path) -> dict:
    model = load_model(run_id, store=store, device="cpu")
    onnx = exporter.export(model, folder / f"{run_id}.onnx", "onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])

    def onnx_predict():
        batch = exporter.input_batch(model, images)
        for start in range(0, len(batch), BATCH):
            session.run(["scores"], {"images": batch[start:start + BATCH]})

    torch_s = _time(lambda: model.predict(images))
    onnx_s = _time(onnx_predict)
    check = exporter.agreement(model, onnx, images)
    return {"torch_ips": len(images) / torch_s, "onnx_ips": len(images) / onnx_s,
            "model_bytes": size(model_folder(store.path, run_id)), "onnx_bytes": onnx.stat().st_size, **check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="test images timed")
    parser.add_argument("--image-size", type=int, default=None, help="input size (default: the backbone's)")
    parser.add_argument("--classifier", default="kernel")
    args = parser.parse_args()
    shared = {"max_train": 300, "max_test": args.images,
              **({"image_size": args.image_size} if args.image_size else {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = Store(folder / "bench.duckdb")
        top, _ = run(RunSpec("top-tune", "efficientnet_lite0", "digits", args.classifier, shared), store)
        fine, _ = run(RunSpec("fine-tune", "efficientnet_lite0", "digits", None, {**shared, "epochs": 1}), store)
        test = registry.create_dataset("digits").load().test
        images = [test[i][0] for i in range(min(args.images, len(test)))]
        rows = {f"top-tuned ({args.classifier})": measure(store, top, images, folder),
                "fine-tuned": measure(store, fine, images, folder)}
    print(f"{len(images)} digits test images, EfficientNet-Lite0, CPU, batch {BATCH}, decoding included\n")
    print("| model | PyTorch img/s | ONNX Runtime img/s | ONNX / PyTorch | saved model | ONNX file | "
          "agreement | max score diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['torch_ips']:.1f} | {r['onnx_ips']:.1f} | {r['onnx_ips'] / r['torch_ips']:.2f}× | "
              f"{r['model_bytes'] / 2**20:.2f} MB | {r['onnx_bytes'] / 2**20:.1f} MB | "
              f"{100 * r['agreement']:.2f} % | {r['max_score_difference']:.2g} |")


if __name__ == "__main__":
    main()
