"""Conjugate gradient on many right-hand sides at once, for the solver's preconditioned normal equations."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..progress import current

__all__ = ["conjugate_gradient"]


def conjugate_gradient(
    matmul: Callable[[torch.Tensor], torch.Tensor], B: torch.Tensor, maxiter: int, tol: float
) -> tuple[torch.Tensor, int]:
    """Solve ``S X = B`` for a symmetric positive semi-definite S given as ``matmul``, all columns at once.

    A column stops moving once its residual is below ``tol`` times its right-hand side's norm; returns the
    solution and the number of iterations run.
    """
    progress = current()
    progress.set_total(maxiter)
    X = torch.zeros_like(B)
    R = B.clone()
    P = R.clone()
    rs = _column_dot(R, R)
    target = tol**2 * rs
    for iteration in range(1, maxiter + 1):
        active = rs > target
        if not bool(active.any()):
            progress.set_total(iteration - 1)  # the bar ends full: the solve is complete, only shorter
            progress.postfix(f"converged after {iteration - 1} iterations")
            return X, iteration - 1
        SP = matmul(P)
        step = torch.where(active, _safe_divide(rs, _column_dot(P, SP)), 0.0)
        X.add_(P * step)
        R.sub_(SP * step)
        rs_new = _column_dot(R, R)
        P = R + P * _safe_divide(rs_new, rs)
        rs = rs_new
        progress.advance()
    return X, maxiter


def _column_dot(U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    return (U * V).sum(0)


def _safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # A zero or negative curvature means the column has converged or hit round-off; it must not move.
    return torch.where(b > 0, a / torch.where(b > 0, b, 1.0), 0.0)
