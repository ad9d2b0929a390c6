"""Data selection for fine-tuning: entropy-high vs entropy-low vs random subsets at 25 % and 50 %.

    python bench/selection.py                          # digits, EfficientNet-Lite0, CPU preset
    python bench/selection.py --preset gpu --seeds 3 --fractions 0.1,0.25,0.5

Every run fine-tunes the same network with the same schedule on a subset of the training split of
the same size; only the rule choosing the subset differs. Entropy comes from a logistic regression on
the pre-trained features, scored out of fold (see ``toptune.data_selection``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from toptune.features.cache import FeatureCache
from toptune.progress import Progress, TqdmProgress
from toptune.store import Store
from toptune.studies import selection as sel

# 'cpu' keeps six fine-tuning runs on digits to a few minutes on two cores: 64 px inputs, 8 epochs.
PRESETS = {"cpu": {"params": {"image_size": 64, "epochs": 8, "lr": 1e-3}, "seeds": 1},
           "gpu": {"params": {}, "seeds": 3}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--fractions", default="0.25,0.5")
    ap.add_argument("--rules", default=",".join(sel.DEFAULT_RULES))
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--param", action="append", default=[], help="key=value for every run")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    preset = PRESETS[args.preset]
    params = {**preset["params"], **dict(p.split("=", 1) for p in args.param)}
    store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
    specs = sel.plan(args.dataset, args.backbone, sel.parse_fractions(args.fractions), args.rules.split(","),
                     args.seeds or preset["seeds"], params, preset="gpu")  # the gpu preset adds nothing: params rule
    t0 = time.perf_counter()
    study = sel.STUDY.run(specs, store, cache=FeatureCache(Path(tempfile.mkdtemp()) / "features"),
                          progress=Progress() if args.quiet else TqdmProgress())
    setting = ", ".join(f"{k}={v}" for k, v in params.items())
    print(f"\n{args.dataset} · {args.backbone} · fine-tuned test accuracy · preset {args.preset} ({setting}) · "
          f"{len(study.run_ids)} runs in {time.perf_counter() - t0:.0f} s")
    head = f"{'rule':<14}" + "".join(f" {f'{f:g} ({study.subset_sizes[f]} img)':>22}" for f in study.fractions)
    print(head)
    print("-" * len(head))
    for rule, cells in study.table():
        times = [study.cells[(rule, f)].train_time_s for f in study.fractions]
        print(f"{rule:<14}" + "".join(f" {cell:>14} ({t:4.0f} s)" for cell, t in zip(cells, times)))


if __name__ == "__main__":
    main()
