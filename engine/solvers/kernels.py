"""Kernel functions in torch, and the median heuristic for the bandwidth.

Gaussian: ``exp(-|x - z|² / 2σ²)``; Laplacian: ``exp(-|x - z| / σ)``; linear: ``x·z``.

Each kernel is one ``Kernel`` entry of a single table: how to form its matrix from points, how to form it
from squared distances (None when it is no function of distances), and the inverse bandwidth that scales
its argument (None when it has no bandwidth), which a solver checks against overflow before forming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Kernel:
    """One kernel function: ``matrix(X, Z, sigma, out)``, ``from_squared(sq, sigma)``, ``inverse_bandwidth(sigma)``."""

    name: str
    matrix: Callable[[torch.Tensor, torch.Tensor, float | None, torch.Tensor | None], torch.Tensor]
    from_squared: Callable[[torch.Tensor, float], torch.Tensor] | None = None
    inverse_bandwidth: Callable[[float], float] | None = None


def _scaled_negative_distances(X: torch.Tensor, Z: torch.Tensor, scale: float,
                               out: torch.Tensor | None = None) -> torch.Tensor:
    """``-scale·|x - z|²`` from one matrix product: the expansion saves forming every difference.

    The scale rides on the product and the norms, so no extra pass over the result is needed; the clamp
    removes the positive values the expansion's round-off leaves where points coincide.
    """
    out = torch.addmm((Z * Z).sum(1).mul_(-scale), X, Z.T, alpha=2.0 * scale, out=out)
    out.sub_((X * X).sum(1, keepdim=True).mul_(scale))
    return out.clamp_max_(0.0)


def _gaussian_inverse_bandwidth(sigma: float) -> float:
    return 0.5 / sigma**2


def _gaussian(X: torch.Tensor, Z: torch.Tensor, sigma: float, out: torch.Tensor | None) -> torch.Tensor:
    return _scaled_negative_distances(X, Z, _gaussian_inverse_bandwidth(sigma), out).exp_()


def _gaussian_from_squared(sq: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(sq * -_gaussian_inverse_bandwidth(sigma))


def _laplacian_inverse_bandwidth(sigma: float) -> float:
    return 1.0 / sigma


def _laplacian(X: torch.Tensor, Z: torch.Tensor, sigma: float, out: torch.Tensor | None) -> torch.Tensor:
    return _scaled_negative_distances(X, Z, 1.0, out).neg_().sqrt_().mul_(-_laplacian_inverse_bandwidth(sigma)).exp_()


def _laplacian_from_squared(sq: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(sq.sqrt() * -_laplacian_inverse_bandwidth(sigma))


def _linear(X: torch.Tensor, Z: torch.Tensor, sigma: float | None, out: torch.Tensor | None) -> torch.Tensor:
    return torch.mm(X, Z.T, out=out)


_TABLE = {kernel.name: kernel for kernel in (
    Kernel("gaussian", _gaussian, _gaussian_from_squared, _gaussian_inverse_bandwidth),
    Kernel("laplacian", _laplacian, _laplacian_from_squared, _laplacian_inverse_bandwidth),
    Kernel("linear", _linear),
)}
KERNELS = tuple(_TABLE)


def get_kernel(name: str) -> Kernel:
    """The table entry of kernel ``name``; an unknown name is a ValueError."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name
        raise ValueError(f"unknown kernel {name!r} (choose from {', '.join(KERNELS)})") from None


def kernel_matrix(X: torch.Tensor, Z: torch.Tensor, kernel: str = "gaussian", sigma: float | None = 1.0,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """``K[i, j] = k(X[i], Z[j])`` as one dense matrix (written into ``out`` when given); callers bound its
    size by passing row blocks."""
    return get_kernel(kernel).matrix(X, Z, sigma, out)


def squared_distances(X: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``|x - z|²`` for every pair, for callers that try several bandwidths on the same points."""
    return _scaled_negative_distances(X, Z, 1.0).neg_()


def from_squared_distances(sq: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    """The kernel matrix from ``squared_distances``, for the kernels that are functions of distances."""
    entry = _TABLE.get(kernel) if isinstance(kernel, str) else None
    if entry is None or entry.from_squared is None:
        raise ValueError(f"kernel {kernel!r} is not a function of distances")
    return entry.from_squared(sq, sigma)


def median_sigma(X: torch.Tensor, max_points: int = 1000, generator: torch.Generator | None = None) -> float:
    """Median pairwise euclidean distance over a random subsample of at most ``max_points`` rows."""
    X = torch.as_tensor(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"median_sigma needs a 2-D array with at least 2 rows, got shape {tuple(X.shape)}")
    if X.shape[0] > max_points:
        keep = torch.randperm(X.shape[0], generator=generator)[:max_points]
        X = X[keep.to(X.device)]
    # One matrix product instead of pdist's pair loop, in the features' own precision (float32 unless
    # they are float64): centring first keeps the expansion's cancellation at round-off of the spread,
    # not of the offset, which is plenty for a heuristic. Both triangles enter, so every pair counts twice
    # and the median is unchanged; that spares extracting the upper triangle.
    X = X.to(torch.float64 if X.dtype == torch.float64 else torch.float32)
    X = X - X.mean(0)
    sq = squared_distances(X, X)
    # The diagonal, and duplicated rows, give (round-off) zero distances that would drag the median to an
    # unusable bandwidth.
    floor = 64 * torch.finfo(X.dtype).eps * float((X * X).sum(1).mean())
    sq = sq[sq > floor]
    return float(sq.median().sqrt()) if sq.numel() else 1.0
