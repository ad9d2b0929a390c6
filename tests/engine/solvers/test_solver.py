"""The Falkon solver against direct dense solves of the problems it claims to solve."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from toptune.errors import ParamError, SolverError
from toptune.measure.device import pick_device, resolve_device
from toptune.solvers import (
    FalkonSolver,
    SolverOptions,
    conjugate_gradient,
    falkon,
    kernel_matrix,
    kernels,
    median_sigma,
    memory,
    precision,
    preconditioner,
    products,
)
from toptune.solvers import search as selection

SIGMA = 1.5
KERNELS = ["gaussian", "laplacian", "linear"]


def reference_kernel(A, B, kernel, sigma=SIGMA):
    if kernel == "gaussian":
        return np.exp(-cdist(A, B, "sqeuclidean") / (2 * sigma**2))
    if kernel == "laplacian":
        return np.exp(-cdist(A, B) / sigma)
    return A @ B.T


def exact(kernel, **kwargs):
    """A float64 solver run until CG has converged far beyond what the comparisons need."""
    settings = dict(kernel=kernel, sigma=SIGMA, lam=1e-3, maxiter=500, tol=1e-13, dtype="float64",
                    device="cpu", seed=0)
    return FalkonSolver(**{**settings, **kwargs})


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 4))
    Y = np.sin(X @ rng.normal(size=(4, 3))) + 0.1 * rng.normal(size=(160, 3))
    return X, Y, rng.normal(size=(40, 4))


def scaled_max_error(actual, desired):
    return np.abs(np.asarray(actual) - desired).max() / np.abs(desired).max()


@pytest.mark.parametrize("kernel", KERNELS)
def test_all_points_as_centres_is_exact_kernel_ridge(data, kernel):
    X, Y, X_test = data
    n, lam = len(X), 1e-3
    solver = exact(kernel, M=n, lam=lam).fit(X, Y)
    alpha = np.linalg.solve(reference_kernel(X, X, kernel) + lam * n * np.eye(n), Y)
    expected = reference_kernel(X_test, X, kernel) @ alpha
    assert solver.centers_.shape == (n, 4)
    assert scaled_max_error(solver.predict(X_test), expected) < 1e-6
    assert scaled_max_error(solver.predict(X), reference_kernel(X, X, kernel) @ alpha) < 1e-6


@pytest.mark.parametrize("strategy", ["gram", "store", "stream"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("lam", [1e-2, 1e-6])
def test_nystrom_solution_solves_the_normal_equations(data, kernel, lam, strategy):
    X, Y, X_test = data
    n, M = len(X), 30
    solver = exact(kernel, M=M, lam=lam, seed=3, strategy=strategy, block_rows=50).fit(X, Y)
    assert solver.strategy_ == strategy
    centres = X[solver.center_indices_.numpy()]
    np.testing.assert_array_equal(solver.centers_.numpy(), centres)
    knm, kmm = reference_kernel(X, centres, kernel), reference_kernel(centres, centres, kernel)
    # lstsq: with the linear kernel and M > d, K_MM is singular and α is only unique up to its null space.
    alpha = np.linalg.lstsq(knm.T @ knm + lam * n * kmm, knm.T @ Y, rcond=None)[0]
    expected = reference_kernel(X_test, centres, kernel) @ alpha
    assert scaled_max_error(solver.predict(X_test), expected) < 1e-6
    if kernel != "linear":
        assert scaled_max_error(solver.alpha_.numpy(), alpha) < 1e-6


def test_centres_are_distinct_sorted_and_capped_at_n(data):
    X, Y, _ = data
    indices = exact("gaussian", M=50).fit(X, Y).center_indices_
    assert len(indices) == 50 and len(set(indices.tolist())) == 50
    assert torch.equal(indices, indices.sort().values)
    assert exact("gaussian", M=10_000).fit(X, Y).centers_.shape[0] == len(X)


def test_same_seed_same_model_other_seed_other_centres(data):
    X, Y, X_test = data
    first, second = FalkonSolver(M=40, seed=7).fit(X, Y), FalkonSolver(M=40, seed=7).fit(X, Y)
    assert torch.equal(first.center_indices_, second.center_indices_)
    assert torch.equal(first.predict(X_test), second.predict(X_test))
    assert not torch.equal(first.center_indices_, FalkonSolver(M=40, seed=8).fit(X, Y).center_indices_)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_strategy_follows_the_same_iterates(data, kernel):
    X, Y, X_test = data
    # tol=0 runs exactly maxiter steps; few enough that all runs still follow the same iterates.
    runs = {strategy: exact(kernel, M=50, maxiter=6, tol=0.0, strategy=strategy, block_rows=7).fit(X, Y)
            for strategy in ("store", "stream", "gram")}
    reference = runs["store"]
    for solver in runs.values():
        assert solver.n_iter_ == 6
        np.testing.assert_allclose(solver.predict(X_test).numpy(), reference.predict(X_test).numpy(),
                                   rtol=1e-6, atol=1e-9)
        if kernel != "linear":  # with M > d the linear α is only unique up to a null space CG wanders in
            assert scaled_max_error(solver.alpha_.numpy(), reference.alpha_.numpy()) < 1e-6


def test_float32_gram_strategy_stays_stable_for_tiny_lambda():
    # Clustered points make K_MM nearly singular. Squaring K_nM before whitening it by the preconditioner
    # would amplify the float32 round-off of K_nMᵀK_nM in exactly those directions and wreck CG.
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3.0, size=(4, 6))
    labels = rng.integers(0, 4, 800)
    X = centres[labels] + 0.3 * rng.normal(size=(800, 6))
    Y = np.eye(4)[labels]
    fits = {s: FalkonSolver(sigma=1.0, lam=1e-7, M=300, strategy=s, device="cpu").fit(X, Y)
            for s in ("gram", "store")}
    gram, store = (fits[s].predict(X).numpy() for s in ("gram", "store"))
    assert np.abs(gram - store).max() < 0.05 * np.abs(store).max()
    assert (gram.argmax(1) == labels).mean() > 0.99


@pytest.mark.parametrize("n, M, d, k, storable, expected", [
    (50_000, 300, 1280, 10, True, "gram"),  # few centres: M² per entry is cheap
    (50_000, 2240, 1280, 10, True, "store"),  # many centres, few classes: iterate on the stored K_nM
    (50_000, 2240, 1280, 200, True, "gram"),  # many classes make every iteration expensive
    (10**6, 4000, 1280, 10, False, "gram"),  # recomputing K_nM each iteration would cost far more
    (10**6, 20_000, 32, 10, False, "stream"),  # low d: recomputing is cheaper than the M² square
])
def test_choose_strategy(n, M, d, k, storable, expected):
    assert products.choose_strategy(n, M, d, k, maxiter=20, storable=storable) == expected


def test_bf16_products_move_the_store_crossover_to_fewer_centres():
    # Its skinny products gain more than its GEMMs, so a stored K_nM pays off from fewer centres.
    assert products.choose_strategy(50_000, 700, 1280, 10, maxiter=20, storable=True, matmul="ieee") == "gram"
    assert products.choose_strategy(50_000, 700, 1280, 10, maxiter=20, storable=True, matmul="bf16") == "store"


def test_auto_strategy_follows_the_memory_budget_and_iterations(data):
    X, Y, _ = data
    y = Y[:, 0]  # one column, M=150, d=4: the M² pass (≈1.3·M per entry) against 64 per entry and iteration
    assert exact("gaussian", M=150, maxiter=1, store_bytes=10**9).fit(X, y).strategy_ == "store"
    assert exact("gaussian", M=150, maxiter=200, store_bytes=10**9).fit(X, y).strategy_ == "gram"
    assert exact("gaussian", M=150, maxiter=1, store_bytes=0).fit(X, y).strategy_ == "stream"


def test_predictions_do_not_depend_on_the_other_rows():
    # M·d above the small-model limit: scores come from float32 kernel blocks of a fixed size.
    rng = np.random.default_rng(6)
    X = rng.normal(size=(600, 160)).astype(np.float32)
    Y = np.eye(3)[rng.integers(0, 3, 600)]
    solver = FalkonSolver(M=500, lam=1e-6, device="cpu").fit(X, Y)
    assert solver.centers_.numel() > falkon._SMALL_MODEL
    full = solver.predict(X).numpy()
    for rows in (np.arange(0, 600, 7), rng.permutation(600), np.array([5]), np.arange(250, 270)):
        np.testing.assert_array_equal(solver.predict(X[rows]).numpy(), full[rows])


def test_kernel_rows_products_match_dense(data):
    X, _, _ = data
    X = torch.as_tensor(X)
    centres, V = X[:20], torch.randn(20, 3, dtype=torch.float64)
    rows = products.KernelRows(X, centres, "gaussian", SIGMA, block_rows=3)
    dense = kernel_matrix(X, centres, "gaussian", SIGMA)
    assert rows.stored is None
    torch.testing.assert_close(rows.gram_matmul(V), dense.T @ (dense @ V))
    torch.testing.assert_close(rows.t_matmul(X[:, :3]), dense.T @ X[:, :3])


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_matrix_matches_reference(data, kernel):
    X, _, X_test = data
    K = kernel_matrix(torch.as_tensor(X_test), torch.as_tensor(X), kernel, SIGMA).numpy()
    np.testing.assert_allclose(K, reference_kernel(X_test, X, kernel), rtol=1e-7, atol=1e-7)


def test_one_kernel_table_serves_matrices_distances_and_bandwidths(data):
    X = torch.as_tensor(data[0])
    assert kernels.KERNELS == ("gaussian", "laplacian", "linear")
    sq = kernels.squared_distances(X, X[:10])
    for name in ("gaussian", "laplacian"):
        from_distances = kernels.from_squared_distances(sq, name, SIGMA)
        torch.testing.assert_close(from_distances, kernel_matrix(X, X[:10], name, SIGMA))
        assert kernels.get_kernel(name).inverse_bandwidth(SIGMA) > 0
    assert kernels.get_kernel("linear").from_squared is None and kernels.get_kernel("linear").inverse_bandwidth is None
    with pytest.raises(ValueError, match=r"unknown kernel 'poly' \(choose from gaussian, laplacian, linear\)"):
        kernel_matrix(X, X, "poly")
    for name in ("linear", "poly"):
        with pytest.raises(ValueError, match=f"kernel '{name}' is not a function of distances"):
            kernels.from_squared_distances(sq, name, SIGMA)


def test_conjugate_gradient_solves_every_column_and_leaves_zero_columns():
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(30, 30))
    S = torch.as_tensor(Q @ Q.T + 30 * np.eye(30))
    B = torch.as_tensor(rng.normal(size=(30, 3)))
    B[:, 1] = 0.0
    X, iterations = conjugate_gradient(lambda P: S @ P, B, maxiter=100, tol=1e-12)
    torch.testing.assert_close(S @ X, B, rtol=0, atol=1e-9)
    assert torch.all(X[:, 1] == 0)
    assert 1 <= iterations <= 30 + 5  # CG is exact in ≤ n steps; a few more for round-off


def test_conjugate_gradient_stops_at_maxiter():
    S = torch.diag(torch.arange(1.0, 51.0, dtype=torch.float64))
    _, iterations = conjugate_gradient(lambda P: S @ P, torch.ones(50, 1, dtype=torch.float64), 5, 1e-12)
    assert iterations == 5


def test_default_float32_solves_its_jittered_normal_equations(data):
    X, Y, X_test = data
    n, lam = len(X), 1e-3
    solver = FalkonSolver(sigma=SIGMA, lam=lam, M=60, device="cpu").fit(X, Y)
    assert solver.alpha_.dtype == torch.float32 and solver.n_iter_ <= 20
    # float32 needs Falkon's larger jitter (1e-5·trace K_MM), which then acts as a small extra penalty.
    assert solver.jitter_ == pytest.approx(1e-5 * 60)
    centres = X[solver.center_indices_.numpy()]
    knm, kmm = reference_kernel(X, centres, "gaussian"), reference_kernel(centres, centres, "gaussian")
    alpha = np.linalg.solve(knm.T @ knm + lam * n * (kmm + solver.jitter_ * np.eye(60)), knm.T @ Y)
    expected = reference_kernel(X_test, centres, "gaussian") @ alpha
    assert scaled_max_error(solver.predict(X_test).double(), expected) < 1e-3


def test_one_dimensional_targets_give_one_dimensional_predictions(data):
    X, Y, X_test = data
    solver = exact("gaussian", M=40).fit(X, Y[:, 0])
    assert solver.predict(X_test).shape == (len(X_test),)
    full = exact("gaussian", M=40).fit(X, Y).predict(X_test)[:, 0]
    torch.testing.assert_close(solver.predict(X_test), full)


def test_duplicates_and_constant_features_stay_finite():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    X = np.vstack([X, X, X])  # every centre appears three times: K_MM is singular
    X[:, 1] = 5.0  # a constant feature
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    for dtype in ("float32", "float64"):
        for kernel in KERNELS:
            solver = FalkonSolver(kernel, lam=1e-6, M=len(X), dtype=dtype, device="cpu").fit(X, Y)
            scores = solver.predict(X)
            assert torch.isfinite(scores).all(), (dtype, kernel)
            if kernel != "linear":
                assert (scores.argmax(1).numpy() == Y.argmax(1)).mean() > 0.95


def test_all_identical_points_stay_finite():
    X, Y = np.ones((20, 3)), np.eye(2)[np.arange(20) % 2]
    solver = FalkonSolver(M=20, device="cpu").fit(X, Y)
    assert solver.sigma_ == 1.0  # the median heuristic's fallback when every distance is 0
    np.testing.assert_allclose(solver.predict(X).numpy(), 0.5, atol=1e-3)


def test_cholesky_failure_raises_solver_error_after_growing_jitter(data, monkeypatch):
    X, Y, _ = data
    jitters = []

    def failing_cholesky(matrix, upper=False):
        jitters.append(float(matrix[0, 0] - 1.0))  # gaussian K_MM has a unit diagonal
        return matrix, torch.ones((), dtype=torch.int32)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", failing_cholesky)
    with pytest.raises(SolverError, match="Cholesky factorisation of K_MM failed even with jitter"):
        exact("gaussian", M=20).fit(X, Y)
    assert len(jitters) == preconditioner._CHOLESKY_TRIES
    assert all(later > earlier for earlier, later in zip(jitters, jitters[1:]))


def test_cholesky_retries_succeed_with_more_jitter(data, monkeypatch):
    X, Y, _ = data
    real, calls = torch.linalg.cholesky_ex, []

    def flaky_cholesky(matrix, upper=False):
        calls.append(1)
        if len(calls) <= 2:
            return matrix, torch.ones((), dtype=torch.int32)
        return real(matrix, upper=upper)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", flaky_cholesky)
    solver = exact("gaussian", M=20).fit(X, Y)
    first = preconditioner._EPS[torch.float64] * 20
    assert solver.jitter_ == pytest.approx(first * preconditioner._JITTER_GROWTH**2)
    assert torch.isfinite(solver.alpha_).all()


def test_non_finite_kernel_raises_solver_error(data):
    X, Y, _ = data
    # In float32 0.5/σ² overflows: every kernel value would be NaN or 0.
    with pytest.raises(SolverError, match="sigma=1e-30 is too small for torch.float32.*NaN/inf"):
        FalkonSolver(sigma=1e-30, M=20, device="cpu").fit(X, Y)
    with pytest.raises(SolverError, match="NaN/inf"):
        preconditioner.cholesky_kmm(torch.full((3, 3), float("nan")))


def test_median_sigma():
    X = torch.tensor([[0.0], [1.0], [3.0], [3.0]])  # non-zero distances 1, 3, 3, 2, 2: median 2
    assert median_sigma(X) == 2.0
    big = torch.randn(500, 5, generator=torch.Generator().manual_seed(0))
    first = median_sigma(big, max_points=50, generator=torch.Generator().manual_seed(1))
    again = median_sigma(big, max_points=50, generator=torch.Generator().manual_seed(1))
    assert first == again and first == pytest.approx(median_sigma(big), rel=0.2)
    with pytest.raises(ValueError, match="at least 2 rows"):
        median_sigma(torch.ones(1, 3))


@pytest.mark.parametrize("settings, message", [
    ({"kernel": "poly"}, "unknown kernel 'poly'"),
    ({"sigma": 0.0}, "sigma must be"),
    ({"lam": -1.0}, "lam must be"),
    ({"M": 0}, "M must be an integer >= 1"),
    ({"maxiter": 0}, "maxiter must be"),
    ({"tol": float("nan")}, "tol must be"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"strategy": "fast"}, "strategy must be one of auto, gram, store, stream"),
    ({"block_rows": 2.5}, "block_rows must be an integer >= 1"),
])
def test_invalid_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        FalkonSolver(**settings)


def test_solver_options_change_how_it_computes_not_what_it_predicts(data):
    X, Y, X_test = data
    default = FalkonSolver(sigma=SIGMA, lam=1e-3, M=60).fit(X, Y)
    streamed = FalkonSolver(sigma=SIGMA, lam=1e-3, M=60, options=SolverOptions(strategy="stream", block_rows=64))
    streamed.fit(X, Y)
    assert streamed.strategy_ == "stream" and default.strategy_ != "stream"
    assert (streamed.kernel, streamed.sigma, streamed.lam, streamed.M) == (default.kernel, SIGMA, 1e-3, 60)
    assert streamed.dtype == default.dtype == torch.float32 and streamed.device == default.device
    assert scaled_max_error(streamed.predict(X_test).cpu(), default.predict(X_test).cpu().numpy()) < 1e-4


def test_keyword_options_map_into_solver_options(data):
    X, Y, X_test = data
    # The keyword arguments of the options' names replace those fields; the rest of ``options`` stays.
    solver = exact("gaussian", M=50, options=SolverOptions(strategy="stream", block_rows=64, dtype="float32"))
    assert solver.options == SolverOptions(dtype="float64", device="cpu", strategy="stream", block_rows=64)
    assert solver.dtype == torch.float64 and solver.device == torch.device("cpu")
    assert FalkonSolver(strategy="gram", block_rows=7).options == SolverOptions(strategy="gram", block_rows=7)
    streamed, default = solver.fit(X, Y), exact("gaussian", M=50).fit(X, Y)
    assert streamed.strategy_ == "stream"
    assert scaled_max_error(streamed.predict(X_test), default.predict(X_test).numpy()) < 1e-8


def test_invalid_data():
    with pytest.raises(ValueError, match="2-D"):
        FalkonSolver().fit(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="X has 5 rows but Y has 4"):
        FalkonSolver().fit(np.ones((5, 2)), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        FalkonSolver().fit(np.full((5, 2), np.nan), np.ones(5))
    with pytest.raises(RuntimeError, match="before fit"):
        FalkonSolver().predict(np.ones((5, 2)))


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        FalkonSolver(device="cuda")
    assert FalkonSolver().device.type == "cpu"


def test_runs_and_solvers_share_one_device_resolver():
    # The run's device (a string) and the solver's (a torch.device) come from the same function, and its
    # ParamError is the ValueError scikit-learn-style callers expect.
    assert pick_device("auto") == str(resolve_device("auto")) == str(FalkonSolver().device)
    assert pick_device("cpu") == "cpu" and resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert issubclass(ParamError, ValueError)
    with pytest.raises(ParamError, match="unknown device 'tpu'"):
        FalkonSolver(device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data):
    X, Y, X_test = data
    cpu = exact("gaussian", M=50).fit(X, Y).predict(X_test)
    gpu = exact("gaussian", M=50, device="cuda").fit(X, Y).predict(X_test)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-8, atol=1e-10)


def test_block_rows_follow_free_memory_within_bounds():
    cpu, row = torch.device("cpu"), 4096
    assert memory.block_rows(row, cpu, free=2**28) == 2**24 // row  # a sixteenth of free memory
    assert memory.block_rows(row, cpu, free=2**40) == 2**25 // row  # capped: larger CPU blocks fall out of cache
    assert memory.block_rows(row, cpu, free=0) == 2**20 // row  # floor: memory is never that tight
    assert memory.block_rows(10**12, cpu, free=2**30) == 1
    assert memory.free_bytes(cpu) > 0


def test_default_centres_grow_like_root_n_within_memory():
    cpu, plenty = torch.device("cpu"), 2**40
    assert memory.default_centres(50, 4, cpu, free=plenty) == 50  # all points up to n = 1000
    assert memory.default_centres(1347, 4, cpu, free=plenty) == 1000  # the floor, above 10·√n = 370
    assert memory.default_centres(10_000, 4, cpu, free=plenty) == 1000
    assert memory.default_centres(40_000, 4, cpu, free=plenty) == 2000
    # Four M×M float32 matrices in a quarter of 64 MiB: M ≤ 1024.
    assert memory.default_centres(10**6, 4, cpu, free=2**26) == 1024
    assert memory.default_centres(10**6, 8, cpu, free=2**26) == 724


def _blobs(n, seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = rng.normal(scale=spread, size=(3, 5))[labels] + rng.normal(size=(n, 5))
    return torch.as_tensor(X), torch.as_tensor(np.eye(3)[labels]), labels


def test_lambda_path_matches_direct_solves():
    X, Y, _ = _blobs(130)
    Xf, Yf, Xh, Yh, C = X[:100], Y[:100], X[100:], Y[100:], X[:20]
    k_fit, k_centres, k_held = (kernel_matrix(A, C, "gaussian", SIGMA) for A in (Xf, C, Xh))
    lams = [1e-3, 1e-1]
    errors, losses = selection._lambda_path(k_fit, k_centres, k_held, Yf, Yh, lams, torch.float32)
    jitter = preconditioner.jitter_scale(k_centres, torch.float32)  # the jitter the float32 solver will add
    for lam, error, loss in zip(lams, errors, losses):
        system = k_fit.T @ k_fit + lam * 100 * (k_centres + jitter * torch.eye(20, dtype=torch.float64))
        scores = k_held @ torch.linalg.solve(system, k_fit.T @ Yf)
        assert loss == pytest.approx(float(((scores - Yh) ** 2).mean()), rel=1e-6)
        assert error == pytest.approx(float((scores.argmax(1) != Yh.argmax(1)).double().mean()))


def test_holdout_split_is_stratified_and_disjoint():
    labels = torch.as_tensor(np.repeat([0, 1, 2, 3], [50, 30, 20, 1]))
    fit, held = selection.holdout_split(labels, 0.2, 10_000, torch.Generator().manual_seed(0))
    assert len(set(fit.tolist()) & set(held.tolist())) == 0 and len(fit) + len(held) == 101
    assert np.bincount(labels[held].numpy(), minlength=4).tolist() == [10, 6, 4, 0]  # a lone point stays in fit
    fit, held = selection.holdout_split(labels, 0.2, 40, torch.Generator().manual_seed(0))
    assert len(fit) + len(held) == 40


def test_select_returns_the_best_cell_of_its_grid():
    X, Y, _ = _blobs(300)
    search = selection.select(X, Y, "gaussian", sigmas=[0.01, 1.0, 4.0], lams=[1e-6, 1e-1], seed=1)
    assert search.errors.shape == search.losses.shape == (3, 2)
    assert (search.n_fit, search.n_holdout, search.centres) == (240, 60, 240)
    assert search.errors.min() == 0.0 and search.errors[0].min() > 0.3  # σ=0.01 knows only its centres
    i, j = search.sigmas.index(search.sigma), search.lams.index(search.lam)
    assert search.errors[i, j] == search.errors.min()
    assert search.losses[i, j] == search.losses[search.errors == search.errors.min()].min()
    with pytest.raises(selection.TooFewPoints):
        selection.select(X[:2], Y[:2], "gaussian", [1.0], [1e-3])


def test_select_linear_kernel_searches_lambda_only():
    X, Y, _ = _blobs(200)
    search = selection.select(X, Y, "linear", sigmas=[None], lams=selection.LAMBDAS)
    assert search.sigma is None and search.lam in selection.LAMBDAS and np.isfinite(search.errors).all()


@pytest.mark.parametrize("matmul, dtype, message", [
    ("fast", "float32", "matmul must be one of auto, ieee, bf16"),
    ("bf16", "float64", "needs dtype float32"),
])
def test_invalid_matmul(matmul, dtype, message):
    with pytest.raises(ValueError, match=message):
        FalkonSolver(matmul=matmul, dtype=dtype, device="cpu")


def test_auto_matmul_uses_bf16_only_for_float32_on_capable_cpus():
    cpu = torch.device("cpu")
    assert precision.resolve_matmul("auto", cpu, torch.float64) == "ieee"
    assert precision.resolve_matmul("auto", torch.device("cuda"), torch.float32) == "ieee"
    assert precision.resolve_matmul("ieee", cpu, torch.float32) == "ieee"
    expected = "bf16" if precision.bf16_dot_products() else "ieee"
    assert precision.resolve_matmul("auto", cpu, torch.float32) == expected
    with pytest.raises(ValueError, match="on cuda"):
        precision.resolve_matmul("bf16", torch.device("cuda"), torch.float32)


@pytest.fixture
def fresh_bf16_check():
    """``bf16_dot_products`` measured anew in the test, and again (on the real CPU) after it."""
    precision.bf16_dot_products.cache_clear()
    yield
    precision.bf16_dot_products.cache_clear()


def test_bf16_mode_is_used_only_when_measured_accurate(monkeypatch, fresh_bf16_check):
    cpu = torch.device("cpu")
    measured = []

    def error(value):
        def measure():
            measured.append(value)
            return value
        return measure

    # A CPU with bf16 dot products whatever this one has; only the measured error decides.
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {"avx512_bf16": True})
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(precision, "bf16_mode_error", error(2e-3))  # plain bf16 products, as on AMX CPUs
    assert precision.resolve_matmul("auto", cpu, torch.float32) == "ieee"
    with pytest.raises(ValueError, match="without them"):
        precision.resolve_matmul("bf16", cpu, torch.float32)
    assert measured == [2e-3]  # once per process: the answer is cached

    precision.bf16_dot_products.cache_clear()
    monkeypatch.setattr(precision, "bf16_mode_error", error(1e-6))  # split-bf16 products, as on Zen 4
    assert precision.resolve_matmul("auto", cpu, torch.float32) == "bf16"
    assert precision.resolve_matmul("auto", cpu, torch.float64) == "ieee"
    assert FalkonSolver(device="cpu").matmul_ == "bf16"

    precision.bf16_dot_products.cache_clear()
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {})  # no bf16 dot products: nothing to measure
    assert precision.resolve_matmul("auto", cpu, torch.float32) == "ieee"
    assert measured == [2e-3, 1e-6]


def test_matmul_precision_restores_torch_setting_when_the_last_solve_leaves():
    flag = torch.backends.mkldnn.matmul
    before = flag.fp32_precision
    with precision.matmul_precision("ieee"):
        assert flag.fp32_precision == before
    with precision.matmul_precision("bf16"):
        assert flag.fp32_precision == "bf16"
        with precision.matmul_precision("bf16"):
            assert flag.fp32_precision == "bf16"
        assert flag.fp32_precision == "bf16"  # the outer solve is still running
    assert flag.fp32_precision == before
    with pytest.raises(RuntimeError, match="inside"), precision.matmul_precision("bf16"):
        raise RuntimeError("inside")
    assert flag.fp32_precision == before


@pytest.mark.skipif(not precision.bf16_dot_products(), reason="needs a CPU with bf16 dot products")
@pytest.mark.parametrize("lam, tolerance", [(1e-4, 5e-4), (1e-6, 2e-2)])
def test_bf16_products_predict_like_ieee_products(lam, tolerance):
    # Measured: 3.5e-5 at λ = 1e-4, 2.4e-3 at the ill-conditioned default 1e-6 (where float32 IEEE itself
    # lands 0.3 away from float64, its λ floor and jitter being larger); the labels agreed everywhere.
    X, Y, _ = _blobs(3000, spread=1.5)
    X, Y = X.float(), Y.float()
    fits = {mode: FalkonSolver(M=300, lam=lam, matmul=mode, device="cpu").fit(X, Y) for mode in ("ieee", "bf16")}
    assert fits["bf16"].matmul_ == "bf16" and fits["ieee"].matmul_ == "ieee"
    scores = {mode: fit.predict(X) for mode, fit in fits.items()}
    assert scaled_max_error(scores["bf16"], scores["ieee"].numpy()) < tolerance
    assert (scores["bf16"].argmax(1) == scores["ieee"].argmax(1)).float().mean() > 0.999
