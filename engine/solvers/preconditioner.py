"""Falkon's preconditioner and the Cholesky factorisations it is built from.

``B = T⁻¹ A⁻¹ / √n`` with ``TᵀT = K_MM`` and ``AᵀA = T Tᵀ / M + λ I``. As in Falkon, the penalty uses
``K_MM + jitter·I`` (``TᵀT``; jitter ≈ 1e-13·trace(K_MM) in float64, 1e-5·trace in float32). Without it a
rank-deficient K_MM (the linear kernel with M > d, duplicated points) leaves a null space in which
round-off accumulates and CG diverges.
"""

from __future__ import annotations

import math

import torch

from ..errors import SolverError
from .products import chunks, mirror_upper

__all__ = ["Preconditioner", "cholesky_kmm", "jitter_scale", "upper_times_transpose"]

# Diagonal jitter relative to trace(K_MM), as in Falkon: it must outweigh round-off in each precision yet
# stay negligible against the spectrum.
_EPS = {torch.float32: 1e-5, torch.float64: 1e-13}
_JITTER_GROWTH = 100.0
_CHOLESKY_TRIES = 5


def _all_finite(A: torch.Tensor) -> bool:
    # min and max carry any NaN or inf, at the cost of one read (isfinite writes a whole boolean matrix).
    return all(bool(torch.isfinite(v)) for v in torch.aminmax(A))


def _cholesky_upper(matrix: torch.Tensor, jitter: float, what: str) -> tuple[torch.Tensor, float]:
    """Upper factor U with ``UᵀU = matrix + jitter·I``, growing the jitter until the factorisation succeeds."""
    shifted = matrix.clone()
    added = 0.0
    for _ in range(_CHOLESKY_TRIES):
        shifted.diagonal().add_(jitter - added)
        added = jitter
        factor, info = torch.linalg.cholesky_ex(shifted, upper=True)
        if int(info) == 0 and _all_finite(factor):
            return factor, jitter
        jitter *= _JITTER_GROWTH
    raise SolverError(
        f"Cholesky factorisation of {what} failed even with jitter {jitter / _JITTER_GROWTH:.3g} on the "
        "diagonal: the kernel matrix is numerically indefinite or not finite; check the features for "
        "NaN/inf, try another sigma, or use dtype='float64'"
    )


def jitter_scale(kmm: torch.Tensor, precision: torch.dtype | None = None) -> float:
    """The jitter Falkon adds to K_MM's diagonal, ``eps·trace(K_MM)``, for ``precision`` (K_MM's own)."""
    # The mean diagonal keeps the jitter meaningful for kernels whose diagonal is not 1 (linear).
    scale = float(kmm.diagonal().mean()) or 1.0
    return _EPS[precision or kmm.dtype] * kmm.shape[0] * scale


def cholesky_kmm(kmm: torch.Tensor, precision: torch.dtype | None = None) -> tuple[torch.Tensor, float]:
    """Upper T with ``TᵀT = K_MM + jitter·I``, and the jitter used; ``precision`` sets the jitter."""
    if not _all_finite(kmm):
        raise SolverError("the kernel matrix of the centres contains NaN/inf; check the features and sigma")
    return _cholesky_upper(kmm, jitter_scale(kmm, precision), "K_MM")


def upper_times_transpose(T: torch.Tensor) -> torch.Tensor:
    """``T Tᵀ`` for an upper-triangular T, skipping its zero blocks: a sixth of a full product's work
    with many chunks (LAPACK's lauum does this; torch has none). Blocks below the diagonal are mirrored."""
    M = T.shape[0]
    column_chunks = chunks(M)
    out = T.new_empty(M, M)
    for i, a in enumerate(column_chunks):
        for b in column_chunks[i:]:
            # (T Tᵀ)[a, b] = Σ over columns k ≥ b.start of T[a, k] T[b, k]ᵀ: T[b, k] is 0 for k < b.start.
            tail = slice(b.start, M)
            torch.mm(T[a, tail], T[b, tail].T, out=out[a, b])
    mirror_upper(out, column_chunks)
    return out


class Preconditioner:
    """Falkon's ``B = T⁻¹ A⁻¹ / √n``, applied with triangular solves only: ``B = outer ∘ inner``."""

    def __init__(self, kmm: torch.Tensor, lam: float, n: int):
        M = kmm.shape[0]
        self.T, self.jitter = cholesky_kmm(kmm)
        inner = upper_times_transpose(self.T).div_(M)
        inner.diagonal().add_(lam)
        # A is factorised exactly as Falkon specifies; jitter only if rounding makes that fail (tiny λ).
        factor, info = torch.linalg.cholesky_ex(inner, upper=True)
        if int(info) == 0 and _all_finite(factor):
            self.A = factor
        else:
            self.A, _ = _cholesky_upper(inner, jitter_scale(kmm) / M, "T Tᵀ/M + λI")
        self.root_n = math.sqrt(n)
        self.lam = lam

    def inner(self, U: torch.Tensor) -> torch.Tensor:
        """``A⁻¹ U / √n``."""
        return torch.linalg.solve_triangular(self.A, U, upper=True) / self.root_n

    def inner_t(self, W: torch.Tensor) -> torch.Tensor:
        """``A⁻ᵀ W / √n``."""
        return torch.linalg.solve_triangular(self.A.T, W, upper=False) / self.root_n

    def outer(self, V: torch.Tensor) -> torch.Tensor:
        """``T⁻¹ V``."""
        return torch.linalg.solve_triangular(self.T, V, upper=True)

    def outer_t(self, W: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ W``."""
        return torch.linalg.solve_triangular(self.T.T, W, upper=False)

    def apply(self, U: torch.Tensor) -> torch.Tensor:
        """``B U``."""
        return self.outer(self.inner(U))

    def apply_t(self, W: torch.Tensor) -> torch.Tensor:
        """``Bᵀ W``."""
        return self.inner_t(self.outer_t(W))

    def penalty(self, U: torch.Tensor) -> torch.Tensor:
        """``Bᵀ (λ n K̃_MM) B U = λ A⁻ᵀ A⁻¹ U``, with K̃_MM = TᵀT the jittered K_MM."""
        V = torch.linalg.solve_triangular(self.A, U, upper=True)
        return self.lam * torch.linalg.solve_triangular(self.A.T, V, upper=False)
