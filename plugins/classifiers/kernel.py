"""Kernel ridge classifier on one-hot targets, solved by Falkon (Nyström centres + preconditioned CG).

Features are standardised, then ``toptune.solvers.FalkonSolver`` fits one-hot
targets. σ defaults to the median pairwise distance; ``sigma='auto'`` and/or ``lam='auto'`` pick them on
held-out training points (``toptune.solvers.search``). Torch tensors are used where they are, so CUDA
inputs never travel through host memory.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from toptune.measure.device import resolve_device
from toptune.params import Param
from toptune.solvers import (
    DTYPES,
    KERNELS,
    MATMULS,
    FalkonSolver,
    SolverOptions,
    lambda_floor,
    median_sigma,
    resolve_dtype,
    search,
)
from toptune.solvers.memory import default_centres

from .common import (
    check_params,
    fit_inputs,
    one_hot,
    predict_inputs,
    restored,
    scores_to_decision,
    state_settings,
    to_numpy,
    winners,
)

DEFAULT_LAM = 1e-6
_SCALE_ROWS = 8192  # rows standardised at once: bounds the temporaries


class KernelClassifier(ClassifierMixin, BaseEstimator):
    """Nyström kernel ridge regression on one-hot labels; predicts the class with the largest score."""

    api_version = 1
    description = "Kernel ridge classifier (Falkon: Nyström centres + preconditioned conjugate gradient)"
    params = {
        "kernel": Param("str", "gaussian", "kernel function", choices=KERNELS),
        "sigma": Param("float", None, "kernel bandwidth; None = median pairwise distance of the standardised "
                       "training features; 'auto' = chosen with lam on held-out training points",
                       min=1e-12, keywords=("auto",)),
        "lam": Param("float", DEFAULT_LAM, "ridge penalty λ (the objective is ||Kα - Y||² + λ n αᵀKα; values "
                     "below the dtype's epsilon act as epsilon); 'auto' = chosen on held-out training points",
                     min=0.0, keywords=("auto",)),
        "M": Param("int", None, "Nyström centres; None/'auto' = min(n, max(1000, 10·√n)), fewer if the "
                   "M×M matrices would not fit in memory", min=1, keywords=("auto",)),
        "maxiter": Param("int", 20, "conjugate-gradient iterations at most", min=1),
        "tol": Param("float", 1e-7, "conjugate-gradient tolerance on the relative residual", min=0.0),
        "standardize": Param("bool", True, "scale features to zero mean and unit variance first"),
        "dtype": Param("str", "float32", "floating-point precision of the solver", choices=tuple(DTYPES)),
        "device": Param("str", "auto", "where to compute; auto = CUDA when available",
                        choices=("auto", "cpu", "cuda")),
        "matmul": Param("str", "auto", "float32 matrix products: ieee, or bf16 = oneDNN's split-bf16 mode "
                        "(float32-level round-off, 2-6x faster); auto = bf16 on CPUs with native bf16 dot "
                        "products, ieee elsewhere", choices=MATMULS),
        "seed": Param("int", 0, "seed of the Nyström centre sampling and of the held-out split", min=0),
    }

    def __init__(self, kernel="gaussian", sigma=None, lam=DEFAULT_LAM, M=None, maxiter=20, tol=1e-7,
                 standardize=True, dtype="float32", device="auto", matmul="auto", seed=0):
        self.kernel = kernel
        self.sigma = sigma
        self.lam = lam
        self.M = M
        self.maxiter = maxiter
        self.tol = tol
        self.standardize = standardize
        self.dtype = dtype
        self.device = device
        self.matmul = matmul
        self.seed = seed

    def fit(self, X, y):
        settings = check_params(self)
        device, dtype = resolve_device(settings["device"]), resolve_dtype(settings["dtype"])
        X, y = _fit_inputs(self, X, y, device)
        self.classes_, codes = np.unique(y, return_inverse=True)
        features = self._fit_scaling(X, settings["standardize"], dtype)
        targets = torch.as_tensor(one_hot(codes, len(self.classes_)), dtype=dtype, device=device)
        self.sigma_, self.lam_ = self._hyper_parameters(settings, features, targets)
        M = settings["M"]
        if M in (None, "auto"):
            M = default_centres(features.shape[0], features.element_size(), device)
        solver = self._solver(settings, min(int(M), features.shape[0]), dtype, device)
        self.solver_ = solver.fit(features, targets)
        self.lam_ = float(self.solver_.lam_)  # the λ that ran: the solver raises tiny values to its floor
        self.M_ = int(self.solver_.centers_.shape[0])
        self.n_iter_ = int(self.solver_.n_iter_)
        self.n_trained_params_ = self.M_ * len(self.classes_)
        return self

    def decision_function(self, X):
        """Per-class scores (n, n_classes); for two classes the score of ``classes_[1]`` minus ``classes_[0]``."""
        X = _predict_inputs(self, X)
        scores = self.solver_.predict(standardized(X, self.mean_, self.scale_, self.solver_.dtype))
        return scores_to_decision(scores.cpu().numpy())

    def predict(self, X):
        scores = self.decision_function(X)  # checks fitted before classes_ is read
        return winners(self.classes_, scores)

    # ---- saved state (toptune.protocols.SavableClassifier) --------------------------------------------------
    state_version = 1

    def save_state(self) -> tuple[dict, dict]:
        """The fitted model: the standardisation, σ and λ that ran, the M centres and their coefficients."""
        solver = self.solver_
        settings = state_settings(self, sigma_=self.sigma_, lam_=self.lam_, M_=self.M_, n_iter_=self.n_iter_,
                                  solver_dtype=str(solver.dtype).removeprefix("torch."))
        fitted = {"mean": self.mean_, "scale": self.scale_, "centers": solver.centers_, "alpha": solver.alpha_}
        arrays = {name: tensor.detach().cpu().numpy() for name, tensor in fitted.items()}
        return settings, arrays

    @classmethod
    def load_state(cls, settings: dict, arrays: dict):
        estimator = restored(cls, settings, arrays, sigma_=settings["sigma_"], lam_=settings["lam_"],
                             M_=settings["M_"], n_iter_=settings["n_iter_"])
        values = check_params(estimator)
        device = resolve_device(values["device"])
        options = SolverOptions(dtype=settings["solver_dtype"], device=device, matmul=values["matmul"])
        solver = FalkonSolver.fitted(arrays["centers"], arrays["alpha"], estimator.sigma_, estimator.lam_,
                                     values["kernel"], options)
        estimator.mean_ = torch.as_tensor(arrays["mean"], dtype=torch.float64, device=device)
        estimator.scale_ = torch.as_tensor(arrays["scale"], dtype=torch.float64, device=device)
        estimator.solver_ = solver
        return estimator

    def scores_module(self):
        """Standardisation, the kernel against the M centres, times the coefficients: (N, d) -> (N, C)."""
        return KernelScores(self.mean_, self.scale_, self.solver_.centers_, self.solver_.alpha_,
                            self.solver_.kernel, self.sigma_).eval()

    def _solver(self, settings: dict, M: int, dtype: torch.dtype, device: torch.device):
        """An unfitted solver: ``fit(X, Y)``, ``predict(X)``, ``centers_``, ``lam_``, ``n_iter_``, ``dtype``,
        ``device``."""
        return FalkonSolver(kernel=settings["kernel"], sigma=self.sigma_, lam=self.lam_, M=M,
                            maxiter=settings["maxiter"], tol=settings["tol"], dtype=dtype, device=device,
                            seed=settings["seed"], matmul=settings["matmul"])

    def _fit_scaling(self, X: torch.Tensor, standardize: bool, dtype: torch.dtype) -> torch.Tensor:
        if standardize:
            self.mean_, self.scale_ = column_moments(X)
        else:
            self.mean_ = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
            self.scale_ = torch.ones_like(self.mean_)
        return standardized(X, self.mean_, self.scale_, dtype)

    def _hyper_parameters(self, settings: dict, X: torch.Tensor, Y: torch.Tensor) -> tuple[float | None, float]:
        """(σ, λ): as given, σ from the median heuristic, or from a held-out search (then ``search_``)."""
        kernel, sigma, lam = settings["kernel"], settings["sigma"], settings["lam"]
        self.search_ = None
        search_sigma = sigma == "auto" and kernel != "linear"
        if kernel == "linear":
            sigma = None
        elif sigma in (None, "auto"):
            sigma = median_sigma(X, generator=torch.Generator().manual_seed(settings["seed"]))
        if not search_sigma and lam != "auto":
            return sigma, float(lam)
        sigmas = search.bandwidth_grid(sigma) if search_sigma else [sigma]
        floor = lambda_floor(X.dtype)
        lams = sorted({max(value, floor) for value in search.LAMBDAS}) if lam == "auto" else [float(lam)]
        try:
            chosen = search.select(X, Y, kernel, sigmas, lams, seed=settings["seed"], precision=X.dtype)
        except search.TooFewPoints:
            return sigma, DEFAULT_LAM if lam == "auto" else float(lam)
        self.search_ = chosen.to_dict()
        return chosen.sigma, chosen.lam


class KernelScores(torch.nn.Module):
    """The kernel classifier's scores as tensor operations, in float32 (what an exported file holds)."""

    def __init__(self, mean, scale, centres, alpha, kernel: str, sigma: float | None):
        super().__init__()
        for name, value in (("mean", mean), ("scale", scale), ("centres", centres), ("alpha", alpha)):
            self.register_buffer(name, torch.as_tensor(value).detach().cpu().float().clone())
        self.kernel, self.sigma = kernel, float(sigma or 1.0)

    def forward(self, x):
        z = (x - self.mean) / self.scale
        if self.kernel == "linear":
            gram = z @ self.centres.T
        else:
            squared = ((z * z).sum(1, keepdim=True) - 2 * z @ self.centres.T
                       + (self.centres * self.centres).sum(1)[None]).clamp_min(0.0)
            gram = (torch.exp(squared * (-0.5 / self.sigma**2)) if self.kernel == "gaussian"
                    else torch.exp(squared.sqrt() * (-1.0 / self.sigma)))
        return gram @ self.alpha


def column_moments(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations, both float64.

    A constant column gets scale 1: it is 0 after centring either way, and dividing by 0 would give NaN.
    """
    # Sums of deviations from one data row, in row blocks: the shift takes away any large offset (so
    # float32 sums lose no precision to it) and a constant column becomes exactly 0. Twice as fast as
    # var_mean's Welford pass on CPU, which matters when the solve itself takes a second.
    shift = X[:1].to(torch.float64)
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    squares = torch.zeros_like(total)
    # One block buffer, reused: a fresh temporary per block costs more in page faults than the arithmetic.
    buffer = X.new_empty(min(_SCALE_ROWS, X.shape[0]), X.shape[1])
    low = shift.to(X.dtype)
    for start in range(0, X.shape[0], _SCALE_ROWS):
        block = X[start:start + _SCALE_ROWS]
        deviation = torch.sub(block, low, out=buffer[: block.shape[0]])
        # Blocks summed in their own precision (torch sums pairwise), the blocks' sums in float64.
        total += deviation.sum(0)
        squares += deviation.square_().sum(0)
    n = X.shape[0]
    offset = total / n
    std = (squares / n - offset.square()).clamp_min_(0.0).sqrt()
    return shift[0] + offset, torch.where(std > 0, std, torch.ones_like(std))


def standardized(X: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(X - mean) / scale`` in ``dtype``, block by block to bound the temporaries."""
    out = torch.empty(X.shape, dtype=dtype, device=X.device)
    shift, factor = mean.to(dtype), (1.0 / scale).to(dtype)
    for start in range(0, X.shape[0], _SCALE_ROWS):
        rows = slice(start, start + _SCALE_ROWS)
        # In place in ``out``: a temporary per block would cost more than the arithmetic.
        torch.sub(X[rows].to(dtype), shift, out=out[rows]).mul_(factor)
    return out


def _fit_inputs(estimator, X, y, device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    if isinstance(X, torch.Tensor):
        X = _checked_tensor(estimator, X, reset=True)
        return X.to(device), _checked_labels(estimator, y, X.shape[0])
    X, y = fit_inputs(estimator, X, y)
    return _host_tensor(X).to(device), y


def _predict_inputs(estimator, X) -> torch.Tensor:
    check_is_fitted(estimator)
    device = estimator.solver_.device
    if isinstance(X, torch.Tensor):
        return _checked_tensor(estimator, X, reset=False).to(device)
    return _host_tensor(predict_inputs(estimator, X)).to(device)


def _host_tensor(X: np.ndarray) -> torch.Tensor:
    # torch warns on read-only arrays (e.g. memory-mapped features); only those pay for a copy.
    return torch.as_tensor(X if X.flags.writeable else X.copy())


def _checked_tensor(estimator, X: torch.Tensor, reset: bool) -> torch.Tensor:
    """The checks scikit-learn applies to arrays, done in torch so the tensor stays on its device."""
    name = type(estimator).__name__
    X = X.detach()
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"Found array with shape {tuple(X.shape)}; {name} needs at least 1 sample and 1 feature")
    if X.is_complex():
        raise ValueError("Complex data not supported")
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity")
    if reset:
        estimator.n_features_in_ = X.shape[1]
        estimator.__dict__.pop("feature_names_in_", None)
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting {estimator.n_features_in_} "
                         "features as input")
    return X


def _checked_labels(estimator, y, n: int) -> np.ndarray:
    y = column_or_1d(np.asarray(to_numpy(y)), warn=True)
    if len(y) != n:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{n}, {len(y)}]")
    check_classification_targets(y)
    labels = np.unique(y)
    if len(labels) < 2:
        raise ValueError(f"{type(estimator).__name__} needs at least 2 classes in y, got only one class: "
                         f"{labels.tolist()[0]!r}")
    return y
