"""Top-tuning vs fine-tuning, measured side by side in one run: accuracy of each and the speed-up.

    python bench/speedup.py                       # digits, EfficientNet-Lite0, preset for this machine
    python bench/speedup.py --preset gpu --seeds 3 --classifiers kernel,ridge,logistic,fc-head
    python bench/speedup.py --param precision=fp32   # both methods as plain float32 (not optimised)

Each classifier gets its own comparison (the fine-tuning runs are shared through the store only by
their settings, so they are re-run per comparison to keep every comparison self-contained). Both methods
run at their best by default (``precision=auto``: bf16 autocast in channels_last on CPUs with native
bf16, fp16 AMP on CUDA; the same input pipeline), and each side's recipe is printed with the figures:
what ran (precision, layout, image size, batch), and for fine-tuning its epochs and optimiser.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from toptune.features.cache import FeatureCache
from toptune.progress import Progress, TqdmProgress
from toptune.store import Store
from toptune.studies import compare as cmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--classifiers", default="kernel", help="comma-separated top-tuning classifiers")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--preset", default="auto")
    ap.add_argument("--param", action="append", default=[], help="key=value for both methods")
    ap.add_argument("--store", default=None, help="store file (default: a temporary one)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    shared = dict(p.split("=", 1) for p in args.param)
    store = Store(args.store or Path(tempfile.mkdtemp()) / "bench.duckdb")
    cache = FeatureCache(Path(tempfile.mkdtemp()) / "features")  # cold cache: extraction is measured
    progress = Progress() if args.quiet else TqdmProgress()
    rows, t0 = [], time.perf_counter()
    for clf in args.classifiers.split(","):
        specs = cmp.plan(args.dataset, args.backbone, clf, args.seeds, shared, preset=args.preset)
        rows.append(cmp.compare(specs, store, cache=cache, progress=progress))
    print(f"\n{args.dataset} · {args.backbone} · preset {args.preset} · {time.perf_counter() - t0:.0f} s in all")
    header = f"{'classifier':<10} {'top-tuning acc':>16} {'fine-tuning acc':>16} {'Δ points':>9} " \
             f"{'top s':>7} {'fine s':>7} {'speed-up':>9}  verdict"
    print(header)
    print("-" * len(header))
    for c in rows:
        print(f"{c.classifier:<10} {c.top.accuracy:>9.4f} ± {c.top.accuracy_std:.3f} "
              f"{c.fine.accuracy:>9.4f} ± {c.fine.accuracy_std:.3f} {c.delta_points:>+9.2f} "
              f"{c.top.train_time_s:>7.1f} {c.fine.train_time_s:>7.1f} {c.speedup:>8.1f}×  {c.verdict}")
    for c in rows:
        first_of_each = {}
        for run_id in c.run_ids:
            row = store.get_run(run_id)
            first_of_each.setdefault(row["method"], row)
        print(f"\n{c.classifier}, what each side ran:")
        for row in first_of_each.values():
            print("  " + recipe(row))
    print(f"store: {store.path}")


def recipe(row: dict) -> str:
    """What one side of a comparison ran, from its stored parameters and info."""
    run, info = row["params"]["run"], row["info"]
    size = info.get("preprocessing", {}).get("input_size")
    how = f"{info.get('precision', '?')}{' channels_last' if info.get('channels_last') else ''}"
    common = f"{size} px, batch {run['batch_size']}, {how}, {row['n_train']:,} training images"
    if row["method"] == "fine-tune":
        return (f"fine-tuning: {common}, {info.get('epochs_run')} epochs of {run['optimizer']} (lr {run['lr']:g}, "
                f"warm-up {run['warmup_epochs']:g} epoch, cosine), augmentation; time = the epochs")
    return f"top-tuning: {common}, frozen features + {row['classifier']}; time = extraction + fit"


if __name__ == "__main__":
    main()
