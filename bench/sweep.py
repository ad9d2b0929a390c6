"""The same small grid run sequentially in one process and on local Ray, side by side.

    python bench/sweep.py [--seeds 2] [--cpus 2]

Prints throughput (cells per minute) of each, their ratio, and Ray's per-task overhead (the round trip
of one empty task, and the amortised cost of one among many in flight). Both start from a cold feature cache so
each pays for its feature extraction once.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def grid(seeds: int) -> dict:
    return {"datasets": ["digits"], "backbones": ["efficientnet_lite0"], "methods": ["top-tune"],
            "classifiers": ["kernel", "ridge", "logistic"], "seeds": seeds,
            "params": {"max_train": 300, "max_test": 150, "image_size": 128}}


def sequential(spec, root: Path) -> float:
    from toptune.features.cache import FeatureCache
    from toptune.runner import run
    from toptune.store import Store

    store, cache = Store(root / "seq.duckdb"), FeatureCache(root / "seq-cache")
    t0 = time.perf_counter()
    for cell in spec.cells():
        run(cell.spec, store, cache=cache, links={"sweep_id": spec.sweep_id, "cell_key": cell.key})
    return time.perf_counter() - t0


def on_ray(spec, root: Path) -> float:
    from toptune.store import Store
    from toptune.sweeps.driver import sweep

    t0 = time.perf_counter()
    report = sweep(spec, Store(root / "ray.duckdb"), cache_dir=root / "ray-cache")
    assert report.failed == 0, report
    return time.perf_counter() - t0


def task_overhead(n: int = 200) -> tuple[float, float]:
    """(round trip of one empty task awaited before the next, amortised cost of one among n in flight)."""
    import ray

    @ray.remote(num_cpus=0)
    def noop():
        return None

    ray.get([noop.remote() for _ in range(10)])  # warm the workers
    t0 = time.perf_counter()
    for _ in range(n // 4):
        ray.get(noop.remote())
    round_trip = (time.perf_counter() - t0) / (n // 4)
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    return round_trip, (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs given to local Ray")
    args = ap.parse_args()

    from toptune.sweeps.driver import connect
    from toptune.sweeps.spec import SweepSpec

    spec = SweepSpec.from_dict(grid(args.seeds))
    n = len(spec.cells())
    root = Path(tempfile.mkdtemp())
    seq = sequential(spec, root)
    t0 = time.perf_counter()
    connect(num_cpus=args.cpus)
    startup = time.perf_counter() - t0
    ray_s = on_ray(spec, root)
    round_trip, amortised = task_overhead()
    print(f"\n{n} cells (digits, EfficientNet-Lite0 at 128 px, kernel/ridge/logistic × {args.seeds} seeds)")
    print(f"{'':<22}{'seconds':>9}{'cells/min':>11}")
    print(f"{'sequential, 1 process':<22}{seq:>9.1f}{60 * n / seq:>11.1f}")
    print(f"{'local Ray':<22}{ray_s:>9.1f}{60 * n / ray_s:>11.1f}   (+ {startup:.1f} s to start Ray)")
    print(f"Ray / sequential throughput: {seq / ray_s:.2f}×")
    print(f"Ray per-task overhead: {1000 * round_trip:.2f} ms round trip of an empty task, "
          f"{1000 * amortised:.2f} ms each with 200 in flight")


if __name__ == "__main__":
    main()
