"""The built-in `kernel` and `ridge` classifier plugins: accuracy, scikit-learn contract, input checks."""

import math
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from toptune import registry
from toptune.params import Param
from toptune.plugins.classifiers.kernel import KernelClassifier
from toptune.plugins.classifiers.ridge import RidgeClassifier, ridge_solve
from toptune.solvers import median_sigma

CLASSIFIERS = [KernelClassifier, RidgeClassifier]


@pytest.fixture(scope="module")
def digits():
    """Raw 8×8 pixel intensities (64 features, 0..16), a stratified 75/25 split."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 5))
    y = np.repeat(np.arange(3), 30)
    return centres[y] + rng.normal(size=(90, 5)), y


# Measured on this split: gaussian 0.980, laplacian 0.980, linear 0.940, ridge 0.938 (other splits:
# gaussian 0.980-0.989, ridge 0.927-0.958); the thresholds leave room for BLAS and seed differences.
@pytest.mark.parametrize("estimator, threshold", [
    (KernelClassifier(), 0.96),
    (KernelClassifier(kernel="laplacian"), 0.96),
    (KernelClassifier(kernel="linear"), 0.90),
    (KernelClassifier(dtype="float64"), 0.96),
    (RidgeClassifier(), 0.90),
])
def test_accuracy_on_digits_raw_pixels(digits, estimator, threshold):
    X_train, X_test, y_train, y_test = digits
    assert estimator.fit(X_train, y_train).score(X_test, y_test) >= threshold


def test_kernel_fitted_attributes(digits):
    X_train, _, y_train, _ = digits
    clf = KernelClassifier().fit(X_train, y_train)
    n = len(X_train)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 64
    assert clf.M_ == min(n, max(1000, 10 * math.ceil(math.sqrt(n))))
    assert clf.n_trained_params_ == clf.M_ * 10
    assert 1 <= clf.n_iter_ <= clf.maxiter
    # Median heuristic on standardised features: about √(2·d_effective) for roughly independent pixels.
    assert 5.0 < clf.sigma_ < 15.0
    assert clf.lam_ == 1e-6 and clf.search_ is None
    # The engine stores `<param>_` attributes into the run's params; they must be plain numbers.
    assert all(type(getattr(clf, f"{p}_")) in (int, float) for p in ("sigma", "lam", "M"))
    assert KernelClassifier(kernel="linear").fit(X_train, y_train).sigma_ is None


def test_kernel_explicit_hyper_parameters_are_used(digits):
    X_train, _, y_train, _ = digits
    clf = KernelClassifier(sigma=3.0, M=50, maxiter=3, tol=0.0).fit(X_train, y_train)
    assert (clf.sigma_, clf.M_, clf.n_iter_) == (3.0, 50, 3)
    assert KernelClassifier(M=10_000).fit(X_train[:100], y_train[:100]).M_ == 100


def test_ridge_matches_scikit_learn_ridge_on_one_hot_targets(digits):
    X_train, X_test, y_train, _ = digits
    Y = np.eye(10)[y_train]
    ours = RidgeClassifier(alpha=3.0, standardize=False).fit(X_train, y_train)
    theirs = Ridge(alpha=3.0).fit(X_train, Y)
    np.testing.assert_allclose(ours.decision_function(X_test), theirs.predict(X_test), atol=1e-8)
    assert ours.coef_.shape == (10, 64) and ours.intercept_.shape == (10,)
    assert ours.n_trained_params_ == 65 * 10


def test_ridge_standardisation_equals_ridge_on_scaled_features(digits):
    X_train, X_test, y_train, _ = digits
    scaler = StandardScaler().fit(X_train)
    ours = RidgeClassifier(alpha=0.5).fit(X_train, y_train)
    theirs = Ridge(alpha=0.5).fit(scaler.transform(X_train), np.eye(10)[y_train])
    np.testing.assert_allclose(ours.decision_function(X_test), theirs.predict(scaler.transform(X_test)),
                               atol=1e-8)


def test_ridge_primal_and_dual_agree():
    rng = np.random.default_rng(3)
    wide = rng.normal(size=(20, 50))  # d > n: the dual (n×n) system is solved
    Y = rng.normal(size=(20, 4))
    primal = np.linalg.solve(wide.T @ wide + 0.7 * np.eye(50), wide.T @ Y)
    np.testing.assert_allclose(ridge_solve(wide, Y, 0.7), primal, atol=1e-10)
    tall = wide.T  # d < n: the primal system
    Y = rng.normal(size=(50, 4))
    np.testing.assert_allclose(ridge_solve(tall, Y, 0.7), np.linalg.solve(tall.T @ tall + 0.7 * np.eye(20),
                                                                        tall.T @ Y), atol=1e-10)


def test_ridge_without_penalty_on_collinear_features_is_finite():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 3))
    X = np.hstack([X, X])  # perfectly collinear: X^T X is singular
    y = (X[:, 0] > 0).astype(int)
    clf = RidgeClassifier(alpha=0.0).fit(X, y)
    assert np.isfinite(clf.coef_).all() and clf.score(X, y) > 0.8


@pytest.mark.parametrize("make", [
    lambda: KernelClassifier(M=200),
    lambda: RidgeClassifier(),
])
def test_pipeline_grid_search_and_clone(digits, make):
    X_train, X_test, y_train, y_test = digits
    estimator = make()
    grid = {"kernelclassifier__lam": [1e-6, 1e-2]} if isinstance(estimator, KernelClassifier) else \
        {"ridgeclassifier__alpha": [0.1, 10.0]}
    search = GridSearchCV(make_pipeline(StandardScaler(), estimator), grid, cv=3).fit(X_train, y_train)
    assert search.best_estimator_.score(X_test, y_test) > 0.85
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and not hasattr(copy, "classes_")


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_torch_tensors_give_the_same_model_as_numpy(digits, make):
    X_train, X_test, y_train, _ = digits
    from_numpy = make().fit(X_train, y_train)
    from_torch = make().fit(torch.as_tensor(X_train, dtype=torch.float32), torch.as_tensor(y_train))
    np.testing.assert_array_equal(from_torch.predict(torch.as_tensor(X_test)), from_numpy.predict(X_test))


def test_same_seed_gives_identical_predictions_other_seed_other_centres(digits):
    X_train, X_test, y_train, _ = digits
    first = KernelClassifier(seed=5).fit(X_train, y_train)
    second = KernelClassifier(seed=5).fit(X_train, y_train)
    np.testing.assert_array_equal(first.decision_function(X_test), second.decision_function(X_test))
    other = KernelClassifier(seed=6).fit(X_train, y_train)
    assert not torch.equal(first.solver_.center_indices_, other.solver_.center_indices_)


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_any_label_values(blobs, make):
    X, y = blobs
    names = np.array(["cat", "dog", "eel"])[y]
    clf = make().fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "eel"])
    assert set(clf.predict(X)) <= {"cat", "dog", "eel"} and clf.score(X, names) > 0.95
    binary = make().fit(X[y < 2], np.where(y[y < 2] == 0, -7, 12))
    scores = binary.decision_function(X[y < 2])
    assert scores.shape == (60,)  # scikit-learn's binary convention: one score, > 0 means classes_[1]
    np.testing.assert_array_equal(binary.predict(X[y < 2]), np.where(scores > 0, 12, -7))


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_constant_features_and_duplicates_stay_finite(blobs, make):
    X, y = blobs
    X = np.vstack([X, X])
    X[:, 2] = 3.0
    clf = make().fit(X, np.concatenate([y, y]))
    assert np.isfinite(clf.decision_function(X)).all() and clf.score(X, np.concatenate([y, y])) > 0.95


@pytest.mark.parametrize("make", CLASSIFIERS)
@pytest.mark.parametrize("X, y, message", [
    (np.ones(6), np.arange(6) % 2, "Expected 2D array, got 1D array"),
    (np.ones((6, 2)), np.arange(5) % 2, r"inconsistent numbers of samples: \[6, 5\]"),
    (np.ones((6, 2)), np.zeros(6), "needs at least 2 classes in y, got only one class: 0.0"),
    (np.ones((6, 2)), np.array(["a"] * 6), "needs at least 2 classes in y, got only one class: 'a'"),
    (np.full((6, 2), np.nan), np.arange(6) % 2, "Input X contains NaN"),
    (np.full((6, 2), np.inf), np.arange(6) % 2, "Input X contains infinity"),
    (np.ones((6, 2)), np.linspace(0, 1, 6), "Unknown label type: continuous"),
    (np.ones((0, 2)), np.zeros(0), "0 sample"),
])
def test_invalid_inputs_raise_value_error(make, X, y, message):
    with pytest.raises(ValueError, match=message):
        make().fit(X, y)


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_predict_checks(blobs, make):
    X, y = blobs
    with pytest.raises(NotFittedError):
        make().predict(X)
    clf = make().fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 5 features"):
        clf.predict(X[:, :4])


@pytest.mark.parametrize("estimator, message", [
    (KernelClassifier(M=0), "parameter 'M': 0 \\(must be >= 1\\)"),
    (KernelClassifier(lam=-1.0), "parameter 'lam': -1.0 \\(must be >= 0.0\\)"),
    (KernelClassifier(sigma=0.0), "parameter 'sigma': 0.0 \\(must be >= 1e-12\\)"),
    (KernelClassifier(kernel="poly"), "parameter 'kernel': 'poly' \\(choose from gaussian, laplacian, linear\\)"),
    (KernelClassifier(maxiter=0), "parameter 'maxiter'"),
    (KernelClassifier(dtype="float16"), "parameter 'dtype'"),
    (KernelClassifier(device="tpu"), "parameter 'device'"),
    (KernelClassifier(matmul="fast"), "parameter 'matmul': 'fast' \\(choose from auto, ieee, bf16\\)"),
    (KernelClassifier(matmul="bf16", dtype="float64"), "matmul='bf16' needs dtype float32"),
    (KernelClassifier(M=2.5), "parameter 'M': 2.5 \\(expected int or one of \\['auto'\\]\\)"),
    (RidgeClassifier(alpha=-1.0), "parameter 'alpha': -1.0 \\(must be >= 0.0\\)"),
    (RidgeClassifier(standardize="maybe"), "parameter 'standardize'"),
])
def test_invalid_hyper_parameters_raise_value_error_from_fit(blobs, estimator, message):
    with pytest.raises(ValueError, match=message):
        estimator.fit(*blobs)


def test_none_sigma_is_the_median_heuristic_and_auto_m_the_default(blobs):
    X, y = blobs
    default = KernelClassifier().fit(X, y)
    explicit = KernelClassifier(M="auto", sigma=None).fit(X, y)
    assert (explicit.M_, explicit.sigma_) == (default.M_, default.sigma_)
    standardized = (X - X.mean(0)) / X.std(0)
    assert default.sigma_ == pytest.approx(median_sigma(torch.as_tensor(standardized)), rel=1e-5)


def test_matmul_mode_reaches_the_solver(blobs):
    assert KernelClassifier(matmul="ieee").fit(*blobs).solver_.matmul_ == "ieee"
    assert KernelClassifier(dtype="float64").fit(*blobs).solver_.matmul_ == "ieee"


def test_auto_beats_a_deliberately_bad_sigma(digits):
    X_train, X_test, y_train, y_test = digits
    bad = KernelClassifier(sigma=0.1).fit(X_train, y_train)  # far below most distances: nearly a lookup table
    auto = KernelClassifier(sigma="auto", lam="auto").fit(X_train, y_train)
    assert bad.score(X_test, y_test) < 0.7 and auto.score(X_test, y_test) >= 0.96
    search = auto.search_
    assert auto.sigma_ in search["sigmas"] and auto.lam_ in search["lams"]
    assert (auto.sigma_, auto.lam_) == (search["sigma"], search["lam"])
    assert search["n_fit"] + search["n_holdout"] == len(y_train)
    errors = np.array(search["errors"])
    assert errors[search["sigmas"].index(auto.sigma_), search["lams"].index(auto.lam_)] == errors.min()


def test_auto_searches_only_what_is_auto(blobs):
    X, y = blobs
    lam_only = KernelClassifier(lam="auto").fit(X, y)
    assert lam_only.sigma_ == KernelClassifier().fit(X, y).sigma_ and len(lam_only.search_["sigmas"]) == 1
    sigma_only = KernelClassifier(sigma="auto", lam=1e-3).fit(X, y)
    assert sigma_only.lam_ == 1e-3 and sigma_only.search_["lams"] == [1e-3]
    linear = KernelClassifier(kernel="linear", sigma="auto").fit(X, y)  # no bandwidth: nothing to search
    assert linear.sigma_ is None and linear.search_ is None
    linear = KernelClassifier(kernel="linear", lam="auto").fit(X, y)
    assert linear.sigma_ is None and linear.search_["sigmas"] == [None]
    # Too few points to hold any out: the defaults are used, nothing is searched.
    tiny = KernelClassifier(sigma="auto", lam="auto").fit(X[[0, 1, 40, 41]], y[[0, 1, 40, 41]])
    assert tiny.search_ is None and tiny.lam_ == 1e-6


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "linear"])
def test_badly_scaled_features_duplicates_and_tiny_lambda(blobs, kernel):
    X, y = blobs
    rng = np.random.default_rng(1)
    # Offsets and scales from 1e-6 to 1e6, a duplicated copy of every point, a constant column, λ = 0.
    scaled = np.vstack([X, X]) * np.logspace(-6, 6, X.shape[1]) + rng.uniform(-1e6, 1e6, X.shape[1])
    scaled = np.hstack([scaled, np.full((len(scaled), 1), 7.0)])
    labels = np.concatenate([y, y])
    for lam in (0.0, 1e-12):
        clf = KernelClassifier(kernel=kernel, lam=lam).fit(scaled, labels)
        scores = clf.decision_function(scaled)
        assert np.isfinite(scores).all() and clf.score(scaled, labels) > 0.95, (kernel, lam)


def test_tensor_inputs_are_checked_like_arrays(blobs):
    X, y = blobs
    X = torch.as_tensor(X)
    with pytest.raises(ValueError, match="Expected 2D array"):
        KernelClassifier().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        KernelClassifier().fit(torch.full_like(X, float("nan")), y)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[90, 89\]"):
        KernelClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        KernelClassifier().fit(X, np.zeros(90))
    clf = KernelClassifier().fit(X, torch.as_tensor(y))
    assert clf.n_features_in_ == 5
    with pytest.raises(ValueError, match="X has 4 features, but KernelClassifier is expecting 5"):
        clf.predict(X[:, :4])
    np.testing.assert_array_equal(clf.predict(X.double()), clf.predict(X.numpy()))


def test_cuda_request_without_cuda_raises(blobs):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        KernelClassifier(device="cuda").fit(*blobs)


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_plugin_metadata_and_registry(cls):
    assert cls.api_version == 1 and cls.description
    assert all(isinstance(p, Param) for p in cls.params.values())
    # The schema documents exactly the constructor's parameters, with the same defaults.
    assert cls.params.keys() == cls().get_params().keys()
    assert {k: p.default for k, p in cls.params.items()} == cls().get_params()
    name = "kernel" if cls is KernelClassifier else "ridge"
    assert registry.interface_problem("classifier", cls) is None
    assert type(registry.create_classifier(name)) is cls


def test_registry_coerces_cli_strings():
    clf = registry.create_classifier("kernel", M="auto", lam="1e-4", standardize="false", kernel="laplacian")
    assert clf.get_params() == {**KernelClassifier().get_params(), "M": "auto", "lam": 1e-4,
                                     "standardize": False, "kernel": "laplacian"}


@parametrize_with_checks([KernelClassifier(), KernelClassifier(kernel="linear"),
                          KernelClassifier(sigma="auto", lam="auto"), RidgeClassifier()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_ridge_auto_alpha_is_the_brute_force_leave_one_out_minimum():
    from sklearn.linear_model import Ridge

    from toptune.plugins.classifiers.ridge import _RELATIVE_ALPHAS, ridge_loo

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 12))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    Y = np.eye(2)[y]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    scale = (np.linalg.svd(Xc, compute_uv=False) ** 2).mean()
    brute = []
    for alpha in _RELATIVE_ALPHAS * scale:
        errs = []
        for i in range(40):
            keep = np.arange(40) != i
            model = Ridge(alpha=alpha).fit(X[keep], Y[keep])  # fits its own intercept, as ridge_loo assumes
            errs.append(((model.predict(X[i:i + 1]) - Y[i]) ** 2).mean())
        brute.append(np.mean(errs))
    W, alpha = ridge_loo(Xc, Yc)
    assert alpha == pytest.approx(_RELATIVE_ALPHAS[int(np.argmin(brute))] * scale)
    np.testing.assert_allclose(W, ridge_solve(Xc, Yc, alpha), atol=1e-8)
    clf = RidgeClassifier(standardize=False).fit(X, y)
    assert clf.alpha_ == pytest.approx(alpha)


# --- the optional `falkon` plugin (FalkonML library) -----------------------------------------------------------

def _falkon_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("falkon") is not None


@pytest.mark.skipif(_falkon_importable(), reason="the falkon library is installed here")
def test_falkon_plugin_is_listed_as_not_installed_with_an_install_hint():
    from toptune.errors import PluginError
    from toptune.plugins.classifiers.falkon_lib import FalkonLibClassifier

    [status] = [s for s in registry.check("classifier") if s.info.name == "falkon"]
    assert not status.ok and "falkon not installed: pip install git+https://github.com/FalkonML/falkon" in status.error
    assert status.status == "unavailable" and status.reason.startswith("falkon not installed: pip install")
    assert [s.ok for s in registry.check("classifier") if s.info.name == "kernel"] == [True]
    with pytest.raises(PluginError, match="falkon not installed: pip install"):
        registry.create_classifier("falkon")
    with pytest.raises(PluginError, match="falkon not installed"):
        FalkonLibClassifier()


@pytest.fixture
def stand_in_falkon(monkeypatch):
    """falkon_lib reloaded against a fake `falkon` that records its arguments and solves with toptune."""
    import importlib
    import types

    from toptune.plugins.classifiers import falkon_lib
    from toptune.solvers import FalkonSolver

    calls = {}

    class Falkon:
        def __init__(self, kernel, penalty, M, maxiter, seed, options):
            calls.update(kernel=kernel, penalty=penalty, M=M, maxiter=maxiter, seed=seed, options=options)
            self.solver = FalkonSolver(kernel=kernel["name"], sigma=kernel.get("sigma"), lam=penalty, M=M,
                                       maxiter=maxiter, seed=seed, device="cpu")

        def fit(self, X, Y):
            calls["fit_device"] = X.device.type
            self.ny_points_ = self.solver.fit(X, Y).centers_
            return self

        def predict(self, X):
            return self.solver.predict(X)

    fake = types.ModuleType("falkon")
    fake.Falkon = Falkon
    fake.FalkonOptions = lambda **options: options
    fake.kernels = types.SimpleNamespace(
        GaussianKernel=lambda sigma, opt: {"name": "gaussian", "sigma": sigma},
        LaplacianKernel=lambda sigma, opt: {"name": "laplacian", "sigma": sigma},
        LinearKernel=lambda opt: {"name": "linear"},
    )
    monkeypatch.setitem(sys.modules, "falkon", fake)
    yield importlib.reload(falkon_lib), calls
    monkeypatch.delitem(sys.modules, "falkon")
    importlib.reload(falkon_lib)


def test_falkon_plugin_passes_the_kernel_options_to_the_library(stand_in_falkon, blobs):
    falkon_lib, calls = stand_in_falkon
    X, y = blobs
    clf = falkon_lib.FalkonLibClassifier(kernel="laplacian", lam=1e-4, M=40, maxiter=7, tol=1e-5, seed=3,
                                         device="cpu").fit(X, y)
    assert calls["kernel"] == {"name": "laplacian", "sigma": clf.sigma_}
    assert (calls["penalty"], calls["M"], calls["maxiter"], calls["seed"]) == (1e-4, 40, 7, 3)
    assert calls["options"] == {"use_cpu": True, "cg_tolerance": 1e-5, "keops_active": "no"}
    assert calls["fit_device"] == "cpu" and clf.M_ == 40 and clf.solver_.strategy_ == "falkon"
    assert clf.score(X, y) > 0.95
    assert falkon_lib.FalkonLibClassifier.unavailable is None
    assert registry.interface_problem("classifier", falkon_lib.FalkonLibClassifier) is None
