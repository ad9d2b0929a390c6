"""Kernel functions in torch, and the median heuristic for the bandwidth.

Gaussian: ``exp(-|x - z|² / 2σ²)``; Laplacian: ``exp(-|x - z| / σ)``; linear: ``x·z``.
"""

from __future__ import annotations

import torch

KERNELS = ("gaussian", "laplacian", "linear")


def kernel_matrix(X: torch.Tensor, Z: torch.Tensor, kernel: str = "gaussian", sigma: float | None = 1.0,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """``K[i, j] = k(X[i], Z[j])`` as one dense matrix (written into ``out`` when given); callers bound its
    size by passing row blocks."""
    if kernel == "linear":
        return torch.mm(X, Z.T, out=out)
    if kernel == "gaussian":
        return _scaled_negative_distances(X, Z, 0.5 / sigma**2, out).exp_()
    if kernel == "laplacian":
        return _scaled_negative_distances(X, Z, 1.0, out).neg_().sqrt_().mul_(-1.0 / sigma).exp_()
    raise ValueError(f"unknown kernel {kernel!r} (choose from {', '.join(KERNELS)})")


def _scaled_negative_distances(X: torch.Tensor, Z: torch.Tensor, scale: float,
                               out: torch.Tensor | None = None) -> torch.Tensor:
    """``-scale·|x - z|²`` from one matrix product: the expansion saves forming every difference.

    The scale rides on the product and the norms, so no extra pass over the result is needed; the clamp
    removes the positive values the expansion's round-off leaves where points coincide.
    """
    out = torch.addmm((Z * Z).sum(1).mul_(-scale), X, Z.T, alpha=2.0 * scale, out=out)
    out.sub_((X * X).sum(1, keepdim=True).mul_(scale))
    return out.clamp_max_(0.0)


def squared_distances(X: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``|x - z|²`` for every pair, for callers that try several bandwidths on the same points."""
    return _scaled_negative_distances(X, Z, 1.0).neg_()


def from_squared_distances(sq: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    """The Gaussian or Laplacian kernel matrix from ``squared_distances``."""
    if kernel == "gaussian":
        return torch.exp(sq * (-0.5 / sigma**2))
    if kernel == "laplacian":
        return torch.exp(sq.sqrt() * (-1.0 / sigma))
    raise ValueError(f"kernel {kernel!r} is not a function of distances")


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
