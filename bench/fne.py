"""Feature modes side by side: pooled vs full-network embedding vs one intermediate layer.

    python bench/fne.py                                   # digits, EfficientNet-Lite0, CPU preset
    python bench/fne.py --image-folder ~/imgs             # digits, then a class-per-folder image tree
    python bench/fne.py --preset gpu --layer blocks.5

For each dataset, every mode's features are extracted once (cold cache, so extraction is measured),
then the kernel, ridge and logistic classifiers are fitted on them: test accuracy and fit time per
(mode, classifier). The intermediate layer defaults to the stage two thirds of the way through the
network (``toptune backbones describe`` lists the others).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from toptune.features.cache import FeatureCache
from toptune.features.describe import describe
from toptune.progress import Progress, TqdmProgress
from toptune.runner import execute
from toptune.spec import RunSpec

CLASSIFIERS = ("kernel", "ridge", "logistic")
# 'cpu' keeps digits to a couple of minutes on two cores: 128 px inputs (extraction dominates).
PRESETS = {"cpu": {"image_size": 128}, "gpu": {}}


def default_layer(backbone: str, image_size: int | None) -> str:
    stages = [layer.name for layer in describe(backbone, image_size=image_size).layers if layer.kind == "stage"]
    return stages[round(2 * (len(stages) - 1) / 3)]


def measure(dataset: str, backbone: str, modes: list[str], params: dict, cache, progress) -> list[dict]:
    rows = []
    for mode in modes:
        for clf in CLASSIFIERS:
            r = execute(RunSpec("top-tune", backbone, dataset, clf, {**params, "feature_mode": mode}), cache=cache,
                        progress=progress)
            rows.append({"mode": mode, "classifier": clf, "accuracy": r.accuracy, "fit_s": r.fit_time_s,
                         "extract_s": r.extract_time_s + r.info["test_extract_time_s"], "dim": r.feature_dim,
                         "n_train": r.n_train, "n_test": r.n_test})
    return rows


def table(title: str, rows: list[dict]) -> None:
    print(f"\n{title} · {rows[0]['n_train']} train / {rows[0]['n_test']} test images")
    head = f"{'feature mode':<18} {'dim':>5} {'extract s':>9}" + "".join(f" | {c + ' acc':>12} {'fit s':>6}"
                                                                        for c in CLASSIFIERS)
    print(head)
    print("-" * len(head))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        cells = {r["classifier"]: r for r in rows if r["mode"] == mode}
        first = cells[CLASSIFIERS[0]]
        print(f"{mode:<18} {first['dim']:>5} {first['extract_s']:>9.1f}"
              + "".join(f" | {cells[c]['accuracy']:>12.4f} {cells[c]['fit_s']:>6.2f}" for c in CLASSIFIERS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--image-folder", default=None, help="also run on this class-per-folder image tree")
    ap.add_argument("--layer", default=None, help="intermediate layer (default: the stage 2/3 of the way in)")
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--param", action="append", default=[], help="key=value for every run, e.g. max_train=500")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    params = {**PRESETS[args.preset], **dict(p.split("=", 1) for p in args.param)}
    size = int(params["image_size"]) if params.get("image_size") else None
    layer = args.layer or default_layer(args.backbone, size)
    modes = ["pooled", "fne", f"layer:{layer}"]
    cache = FeatureCache(Path(tempfile.mkdtemp()) / "features")  # cold: extraction is measured
    progress = Progress() if args.quiet else TqdmProgress()
    inputs = f"{size} px inputs" if size else "the backbone's input size"
    setting = f"{args.backbone} · preset {args.preset}: {inputs}"
    t0 = time.perf_counter()
    table(f"digits · {setting}", measure("digits", args.backbone, modes, params, cache, progress))
    if args.image_folder:
        folder = {**params, "dataset.path": args.image_folder}
        table(f"{args.image_folder} · {setting}", measure("imagefolder", args.backbone, modes, folder, cache, progress))
    print(f"\n{time.perf_counter() - t0:.0f} s in all; fne = every stage + pooled output, standardised with train "
          "statistics, discretised to -1/0/+1")


if __name__ == "__main__":
    main()
