"""Kernel ridge classifier on one-hot targets, solved by Falkon (Nyström centres + preconditioned CG)."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.params import Param
from toptune.solvers.falkon import DTYPES, KERNELS, FalkonSolver, median_sigma, resolve_device

from ._common import check_params, fit_inputs, one_hot, predict_inputs, scores_to_decision, winners

# Falkon needs about √n·log n centres for the statistical rate; 10·√n is that for realistic n, and the cap
# keeps the M×M factorisations cheap (5000² floats is 100 MB).
_M_PER_ROOT_N = 10
_M_CAP = 5000


class KernelClassifier(ClassifierMixin, BaseEstimator):
    """Nyström kernel ridge regression on one-hot labels; predicts the class with the largest score."""

    api_version = 1
    description = "Kernel ridge classifier (Falkon: Nyström centres + preconditioned conjugate gradient)"
    params = {
        "kernel": Param("str", "gaussian", "kernel function", choices=KERNELS),
        "sigma": Param("float", None, "kernel bandwidth; None/'auto' = median pairwise distance of the "
                       "standardised training features", min=1e-12, keywords=("auto",)),
        "lam": Param("float", 1e-6, "ridge penalty λ (the objective is ||Kα - Y||² + λ n αᵀKα)", min=0.0),
        "M": Param("int", None, f"Nyström centres; None/'auto' = min(n, {_M_PER_ROOT_N}·√n, {_M_CAP})",
                   min=1, keywords=("auto",)),
        "maxiter": Param("int", 20, "conjugate-gradient iterations at most", min=1),
        "tol": Param("float", 1e-7, "conjugate-gradient tolerance on the relative residual", min=0.0),
        "standardize": Param("bool", True, "scale features to zero mean and unit variance first"),
        "dtype": Param("str", "float32", "floating-point precision of the solver", choices=tuple(DTYPES)),
        "device": Param("str", "auto", "where to compute; auto = CUDA when available",
                        choices=("auto", "cpu", "cuda")),
        "seed": Param("int", 0, "seed of the Nyström centre sampling", min=0),
    }

    def __init__(self, kernel="gaussian", sigma=None, lam=1e-6, M=None, maxiter=20, tol=1e-7,
                 standardize=True, dtype="float32", device="auto", seed=0):
        self.kernel = kernel
        self.sigma = sigma
        self.lam = lam
        self.M = M
        self.maxiter = maxiter
        self.tol = tol
        self.standardize = standardize
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def fit(self, X, y):
        settings = check_params(self)
        X, y = fit_inputs(self, X, y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        solver = self._solver(settings, X.shape[0])
        features = self._standardize_fit(_tensor(X, solver), settings["standardize"])
        solver.sigma = self._bandwidth(settings, features)
        self.solver_ = solver.fit(features, one_hot(codes, len(self.classes_)))
        self.sigma_ = solver.sigma_
        self.M_ = int(solver.centers_.shape[0])
        self.n_iter_ = int(solver.n_iter_)
        self.n_trained_params_ = self.M_ * len(self.classes_)
        return self

    def decision_function(self, X):
        """Per-class scores (n, n_classes); for two classes the score of ``classes_[1]`` minus ``classes_[0]``."""
        X = predict_inputs(self, X)
        scores = self.solver_.predict((_tensor(X, self.solver_) - self.mean_) / self.scale_)
        return scores_to_decision(scores.cpu().numpy())

    def predict(self, X):
        scores = self.decision_function(X)  # checks fitted before classes_ is read
        return winners(self.classes_, scores)

    def _solver(self, settings: dict, n: int) -> FalkonSolver:
        return FalkonSolver(
            kernel=settings["kernel"], lam=settings["lam"], M=self._centres(settings["M"], n),
            maxiter=settings["maxiter"], tol=settings["tol"], dtype=settings["dtype"],
            device=resolve_device(settings["device"]), seed=settings["seed"],
        )

    def _standardize_fit(self, X: torch.Tensor, standardize: bool) -> torch.Tensor:
        if standardize:
            self.mean_ = X.mean(0)
            # Constant features have std 0; dividing by 1 leaves them at 0 instead of NaN.
            std = X.std(0, unbiased=False)
            self.scale_ = torch.where(std > 0, std, torch.ones_like(std))
        else:
            self.mean_ = X.new_zeros(X.shape[1])
            self.scale_ = X.new_ones(X.shape[1])
        return (X - self.mean_) / self.scale_

    def _bandwidth(self, settings: dict, X: torch.Tensor) -> float | None:
        sigma = settings["sigma"]
        if settings["kernel"] == "linear":
            return None
        if sigma is not None and sigma != "auto":
            return float(sigma)
        return median_sigma(X, generator=torch.Generator().manual_seed(settings["seed"]))

    @staticmethod
    def _centres(M, n: int) -> int:
        if M is not None and M != "auto":
            return min(int(M), n)
        return max(1, min(n, _M_PER_ROOT_N * math.ceil(math.sqrt(n)), _M_CAP))


def _tensor(X: np.ndarray, solver: FalkonSolver) -> torch.Tensor:
    # torch warns on read-only arrays (e.g. memory-mapped features); only those pay for a copy.
    return torch.as_tensor(X if X.flags.writeable else X.copy(), dtype=solver.dtype, device=solver.device)
