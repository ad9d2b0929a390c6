"""toptune's kernel classifier against scikit-learn on the same features: fit time and accuracy.

    python bench/solver.py            # digits features + synthetic n=50,000, d=1,280; a few minutes on 2 cores
    python bench/solver.py --quick    # smaller: synthetic n=10,000
    python bench/solver.py --skip-digits --n 20000
    python bench/solver.py --skip-digits --skip-scaling --d 2048 --M 10000   # the GPU target (n = 50,000)

Problems: EfficientNet-Lite0 features of scikit-learn's digits (extracted once, then read from toptune's
feature cache) and a synthetic 10-class problem shaped like CNN features (ReLU of a random projection of
a mixture of Gaussians, plus noise; classes are unions of clusters, so they are not linearly separable).

Every method sees the same float32 features and standardises them (toptune inside the classifier, the
others with StandardScaler, counted in their fit time). Nystroem + RidgeClassifier is the same estimator
as toptune's kernel model: with the same M, σ (gamma = 1/2σ²) and λ, Nystroem features Φ = K_nM K_MM^-½
and w = K_MM^½ α turn ||Φw - Y||² + alpha·||w||² into toptune's ||K_nM α - Y||² + λn·αᵀK_MMα when
alpha = λ·n. RidgeClassifier's ±1 targets and toptune's 0/1 one-hot targets give the same argmax without
an intercept (the difference is the same constant-target fit for every class), hence fit_intercept=False.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune.plugins.classifiers.kernel import KernelClassifier

SVC_MAX_N = 5_000  # SVC's kernel evaluations grow like n²: beyond this it takes many minutes on 2 cores


def digits_features() -> tuple[np.ndarray, ...]:
    """EfficientNet-Lite0 features of the digits splits, from toptune's feature cache when present."""
    from toptune import registry
    from toptune.features import extract
    from toptune.features.cache import FeatureCache, cache_key

    dataset, backbone = registry.create_dataset("digits"), registry.create_backbone("efficientnet_lite0")
    splits, cache, module = dataset.load(), FeatureCache(), None
    out = []
    for name, split in (("train", splits.train), ("test", splits.test)):
        key = cache_key(bench="solver", backbone="efficientnet_lite0", weights=backbone.weights_digest(),
                        data=dataset.fingerprint(), split=name, pre=backbone.preprocessing, mode="pooled")
        features = cache.get(key)
        if features is None:
            print(f"extracting digits {name} features (once; later runs read the cache)...", flush=True)
            module = module or backbone.build()
            features = extract(module, split, backbone.preprocessing, device="cpu", batch_size=64)
            cache.put(key, features, meta={"bench": "solver", "split": name})
        out += [features.features, features.labels]
    return tuple(out)


def synthetic(n: int, d: int = 1280, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent, modes = 16, 4
    centres = rng.normal(size=(classes * modes, latent))
    projection = rng.normal(size=(latent, d)) / np.sqrt(latent)
    y = rng.integers(0, classes, n)
    z = centres[y * modes + rng.integers(0, modes, n)] + rng.normal(size=(n, latent))
    X = np.maximum(z @ projection, 0.0) + rng.normal(size=(n, d))
    return X.astype(np.float32), y


# Each fit runs this many times and the fastest counts: on a shared 2-core machine a single fit can take
# twice as long as the next one (page faults on fresh memory, other processes), for every method alike.
REPEAT = 3  # --repeat, the comparison tables
SCALING_REPEAT = 1  # --scaling-repeat, the fit-time-vs-n and vs-M tables (sklearn at M = 8,000 takes minutes)


def timed(fit, *args, repeat: int | None = None) -> tuple[object, float]:
    best = float("inf")
    for _ in range(repeat or REPEAT):
        start = time.perf_counter()
        model = fit(*args)
        best = min(best, time.perf_counter() - start)
    return model, best


def compare(title: str, X, y, X_test, y_test, M: int | None = None) -> None:
    """One table: every method's fit time, ratio to toptune, accuracy."""
    n = len(y)
    ours, ours_s = timed(KernelClassifier(M=M).fit, X, y)
    rows = [("toptune kernel", ours_s, ours.score(X_test, y_test))]
    short, short_s = timed(KernelClassifier(M=M, maxiter=10).fit, X, y)
    rows.append(("toptune kernel, maxiter=10", short_s, short.score(X_test, y_test)))
    if ours.solver_.matmul_ == "bf16":  # what the same solve costs in plain IEEE float32 products
        ieee, ieee_s = timed(KernelClassifier(M=M, matmul="ieee").fit, X, y)
        rows.append(("toptune kernel, matmul=ieee (no bf16 products)", ieee_s, ieee.score(X_test, y_test)))
    auto, auto_s = timed(KernelClassifier(sigma="auto", lam="auto").fit, X, y)
    rows.append((f"toptune kernel, sigma/lam=auto (σ={auto.sigma_:.3g}, λ={auto.lam_:.0e})", auto_s,
                 auto.score(X_test, y_test)))
    model, seconds = timed(_nystroem(ours, n).fit, X, y)
    rows.append(("sklearn Nystroem + RidgeClassifier (same M, σ, λ)", seconds, model.score(X_test, y_test)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model, seconds = timed(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit, X, y)
    rows.append(("sklearn LogisticRegression (lbfgs, 300 it.)", seconds, model.score(X_test, y_test)))
    notes = []
    if n <= SVC_MAX_N:
        model, seconds = timed(make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma=0.5 / ours.sigma_**2)).fit, X, y)
        rows.append(("sklearn SVC (RBF, same σ)", seconds, model.score(X_test, y_test)))
    else:
        notes.append(f"sklearn SVC skipped: n={n:,} > {SVC_MAX_N:,} (its O(n²) kernel evaluations take many minutes)")
    print(f"\n{title}: n_train={n:,}, n_test={len(y_test):,}, d={X.shape[1]:,}, classes={len(np.unique(y))}; "
          f"toptune chose M={ours.M_}, σ={ours.sigma_:.3g}, λ={ours.lam_:g} ({ours.solver_.strategy_}, "
          f"{ours.n_iter_} CG iterations, {ours.solver_.matmul_} float32 products)")
    _table(rows, ours_s, rows[0][2])
    for note in notes:
        print(f"  {note}")
    by_name = {name.split(" (")[0]: (seconds, accuracy) for name, seconds, accuracy in rows}
    ny_s, ny_acc = by_name["sklearn Nystroem + RidgeClassifier"]
    _, lr_acc = by_name["sklearn LogisticRegression"]
    ours_acc = rows[0][2]
    print(f"  targets: {ny_s / ours_s:.1f}× faster than Nystroem + RidgeClassifier (≥ 5×) at "
          f"{100 * (ours_acc - ny_acc):+.2f} points (≥ 0): "
          f"{'met' if ny_s >= 5 * ours_s and ours_acc >= ny_acc else 'NOT met'}; "
          f"{100 * (ours_acc - lr_acc):+.2f} points vs LogisticRegression (≥ 0): "
          f"{'met' if ours_acc >= lr_acc else 'NOT met'}")


def _table(rows, base_seconds: float, base_accuracy: float) -> None:
    print(f"  {'method':<62} {'fit s':>8} {'× toptune':>10} {'accuracy':>9} {'Δ points':>9}")
    for name, seconds, accuracy in rows:
        print(f"  {name:<62} {seconds:>8.2f} {seconds / base_seconds:>10.1f} {accuracy:>9.4f} "
              f"{100 * (accuracy - base_accuracy):>+9.2f}")


def scaling(X, y, X_test, y_test, sizes, centres, n_for_centres) -> None:
    print("\ntoptune kernel fit time vs n (default M = min(n, max(1000, 10·√n))):")
    print(f"  {'n':>8} {'M':>6} {'fit s':>8} {'accuracy':>9}  strategy")
    for n in sizes:
        model, seconds = timed(KernelClassifier().fit, X[:n], y[:n], repeat=SCALING_REPEAT)
        print(f"  {n:>8,} {model.M_:>6} {seconds:>8.2f} {model.score(X_test, y_test):>9.4f}  {model.solver_.strategy_}")
    print(f"\ntoptune kernel fit time vs M (n = {n_for_centres:,}), beside Nystroem + RidgeClassifier with the same "
          "M, σ, λ:")
    print(f"  {'M':>8} {'fit s':>8} {'accuracy':>9}  {'strategy':<8} {'sklearn s':>9} {'accuracy':>9} {'speed-up':>9}")
    Xn, yn = X[:n_for_centres], y[:n_for_centres]
    for M in centres:
        model, seconds = timed(KernelClassifier(M=M).fit, Xn, yn, repeat=SCALING_REPEAT)
        ny, ny_s = timed(_nystroem(model, n_for_centres).fit, Xn, yn, repeat=SCALING_REPEAT)
        print(f"  {M:>8,} {seconds:>8.2f} {model.score(X_test, y_test):>9.4f}  {model.solver_.strategy_:<8} "
              f"{ny_s:>9.2f} {ny.score(X_test, y_test):>9.4f} {ny_s / seconds:>8.1f}×")


def _nystroem(ours: KernelClassifier, n: int):
    """scikit-learn's pipeline for exactly the model ``ours`` fitted (see the module docstring)."""
    return make_pipeline(
        StandardScaler(), Nystroem(gamma=0.5 / ours.sigma_**2, n_components=ours.M_, random_state=0),
        RidgeClassifier(alpha=ours.lam_ * n, fit_intercept=False))


def main() -> None:
    global REPEAT, SCALING_REPEAT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="synthetic n=10,000 and shorter scaling runs")
    ap.add_argument("--n", type=int, default=None, help="synthetic training points (default 50,000)")
    ap.add_argument("--d", type=int, default=1280, help="synthetic feature dimension (default 1,280)")
    ap.add_argument("--M", type=int, default=None,
                    help="centres of the synthetic comparison (default min(n, max(1000, 10·√n)))")
    ap.add_argument("--skip-digits", action="store_true", help="no EfficientNet-Lite0 digits features")
    ap.add_argument("--skip-scaling", action="store_true", help="no fit-time-vs-n and vs-M tables")
    ap.add_argument("--repeat", type=int, default=REPEAT,
                    help=f"fits per measurement in the comparison tables; the fastest counts (default {REPEAT})")
    ap.add_argument("--scaling-repeat", type=int, default=SCALING_REPEAT,
                    help=f"fits per measurement in the scaling tables (default {SCALING_REPEAT})")
    args = ap.parse_args()
    REPEAT, SCALING_REPEAT = max(1, args.repeat), max(1, args.scaling_repeat)
    n = args.n or (10_000 if args.quick else 50_000)
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}, load average {_load()}")
    KernelClassifier().fit(*synthetic(200, d=16))  # first-call set-up (thread pools, BLAS) out of the timings
    if not args.skip_digits:
        compare("digits · EfficientNet-Lite0 features", *digits_features())
    X, y = synthetic(n + 10_000, d=args.d)
    X_test, y_test = X[n:], y[n:]
    compare("synthetic", X[:n], y[:n], X_test, y_test, M=args.M)
    if args.skip_scaling:
        print(f"\ntotal {time.perf_counter() - start:.0f} s")
        return
    sizes = [s for s in ((2_000, 5_000, 10_000) if args.quick else (5_000, 10_000, 20_000, 50_000)) if s <= n]
    n_centres = min(n, 5_000 if args.quick else 20_000)
    scaling(X, y, X_test, y_test, sizes, (250, 500, 1000, 2000) if args.quick else (500, 1000, 2000, 4000, 8000),
            n_centres)
    print(f"\ntotal {time.perf_counter() - start:.0f} s, load average {_load()} (other processes skew timings)")


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
