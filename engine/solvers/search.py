"""Choosing the bandwidth σ and the penalty λ on held-out training points.

A stratified share of (a subsample of) the training points is held out; on the rest a small Nyström model
is solved exactly for every (σ, λ) of a grid and scored on the held-out points by classification error,
ties broken by mean squared error on the one-hot targets. Per σ, one eigendecomposition of the whitened
Gram matrix ``H = T⁻ᵀ K_nMᵀ K_nM T⁻¹`` (``TᵀT = K_MM``) gives the solution for every λ:

    α(λ) = T⁻¹ Q (Λ + λ n)⁻¹ Qᵀ T⁻ᵀ K_nMᵀ Y,   with H = Q Λ Qᵀ,

so the whole grid costs about as much as a few small fits. The subsample's λ is used as is: the objective
already scales the penalty with n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SolverError
from .kernels import from_squared_distances, get_kernel, kernel_matrix, squared_distances
from .preconditioner import cholesky_kmm

SIGMA_FACTORS = tuple(2.0 ** (step / 2) for step in range(-4, 3))  # × the median distance: 0.25 … 2
LAMBDAS = tuple(10.0**exponent for exponent in range(-9, -1))  # 1e-9 … 1e-2
HOLDOUT = 0.2
# Enough points and centres to rank the candidates; bounded so the search costs about one small fit
# whatever n is (the ranking, not the fitted model, is what the search keeps).
MAX_POINTS = 10_000
CENTRES = 600


class TooFewPoints(ValueError):
    """Too few training points to hold any out."""


@dataclass
class Search:
    """The grid and its held-out scores; ``errors[i, j]`` belongs to ``sigmas[i]`` and ``lams[j]``."""

    sigma: float | None
    lam: float
    sigmas: list
    lams: list
    errors: np.ndarray
    losses: np.ndarray
    n_fit: int
    n_holdout: int
    centres: int

    def to_dict(self) -> dict:
        return {"sigma": self.sigma, "lam": self.lam, "sigmas": list(self.sigmas), "lams": list(self.lams),
                "errors": self.errors.tolist(), "losses": self.losses.tolist(), "n_fit": self.n_fit,
                "n_holdout": self.n_holdout, "centres": self.centres}


def holdout_split(labels: torch.Tensor, fraction: float, max_points: int, generator: torch.Generator):
    """Indices (fit, held out) of a random subsample of at most ``max_points``, stratified by label.

    Classes with a single point stay entirely in the fit part, which then sees every class.
    """
    order = torch.randperm(labels.shape[0], generator=generator)[:max_points]
    picked = labels.cpu()[order]
    held = []
    for label in picked.unique():
        members = order[picked == label]
        held.append(members[: round(fraction * len(members)) if len(members) > 1 else 0])
    held = torch.cat(held)
    fit = order[~torch.isin(order, held)]
    return fit.sort().values, held.sort().values


def select(X: torch.Tensor, Y: torch.Tensor, kernel: str, sigmas, lams, *, seed: int = 0,
           precision: torch.dtype = torch.float32, holdout: float = HOLDOUT, max_points: int = MAX_POINTS,
           centres: int = CENTRES) -> Search:
    """The (σ, λ) of the grid with the lowest held-out error for one-hot targets ``Y``.

    ``precision`` is the dtype the final model will be solved in: the search adds the same jitter to K_MM,
    so it scores the models that will really be fitted. Too few points to hold any out raise TooFewPoints.
    """
    generator = torch.Generator().manual_seed(seed)
    fit, held = holdout_split(Y.argmax(1), holdout, max_points, generator)
    if len(held) == 0 or len(fit) < 2:
        raise TooFewPoints(f"{X.shape[0]} training points are too few to hold some out for choosing sigma/lam")
    fit, held = fit.to(X.device), held.to(X.device)
    Xf, Xh, Yf, Yh = X[fit].double(), X[held].double(), Y[fit].double(), Y[held].double()
    m = min(centres, len(fit))
    C = Xf[torch.randperm(len(fit), generator=generator)[:m].to(X.device)]
    sigmas, lams = list(sigmas), [float(lam) for lam in lams]
    errors = np.full((len(sigmas), len(lams)), np.inf)
    losses = np.full_like(errors, np.inf)
    for i, (k_fit, k_centres, k_held) in enumerate(_kernels(Xf, Xh, C, kernel, sigmas)):
        try:
            errors[i], losses[i] = _lambda_path(k_fit, k_centres, k_held, Yf, Yh, lams, precision)
        except SolverError:
            continue  # a σ whose K_MM cannot be factorised is simply not a candidate
    if not np.isfinite(errors).any():
        raise SolverError("choosing sigma/lam failed: no candidate's kernel matrix could be factorised")
    i, j = _best(errors, losses)
    return Search(sigmas[i], lams[j], sigmas, lams, errors, losses, len(fit), len(held), m)


def _kernels(Xf, Xh, C, kernel, sigmas):
    """(K_nM, K_MM, K_hM) for each σ; distances are computed once and shared by every σ."""
    if get_kernel(kernel).from_squared is None:  # not a function of distances (linear)
        yield from (tuple(kernel_matrix(A, C, kernel, sigma) for A in (Xf, C, Xh)) for sigma in sigmas)
        return
    distances = [squared_distances(A, C) for A in (Xf, C, Xh)]
    for sigma in sigmas:
        yield tuple(from_squared_distances(D, kernel, sigma) for D in distances)


def _lambda_path(k_fit, k_centres, k_held, Yf, Yh, lams, precision):
    """Held-out error rate and mean squared error of the exact Nyström solution for each λ."""
    n = k_fit.shape[0]
    T, _ = cholesky_kmm(k_centres, precision)
    W = torch.linalg.solve_triangular(T, k_fit, upper=True, left=False)  # K_nM T⁻¹
    eigenvalues, Q = torch.linalg.eigh(W.T @ W)
    coefficients = Q.T @ (W.T @ Yf)
    held = torch.linalg.solve_triangular(T, k_held, upper=True, left=False) @ Q
    truth = Yh.argmax(1)
    errors, losses = [], []
    for lam in lams:
        denominator = eigenvalues.clamp_min(0.0) + lam * n
        # λ = 0 leaves directions without curvature; the minimum-norm solution ignores them.
        inverse = torch.where(denominator > 0, 1.0 / denominator.clamp_min(torch.finfo(denominator.dtype).tiny), 0.0)
        scores = held @ (coefficients * inverse[:, None])
        errors.append(float((scores.argmax(1) != truth).double().mean()))
        losses.append(float(((scores - Yh) ** 2).mean()))
    return errors, losses


def _best(errors: np.ndarray, losses: np.ndarray) -> tuple[int, int]:
    # NaN losses (overflowing scores) must never win.
    order = np.lexsort((np.nan_to_num(losses, nan=np.inf).ravel(), errors.ravel()))
    return np.unravel_index(int(order[0]), errors.shape)


def bandwidth_grid(median: float, factors=SIGMA_FACTORS) -> list[float]:
    return [median * factor for factor in factors]
