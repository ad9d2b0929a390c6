"""Nyström kernel ridge regression by the Falkon algorithm (Rudi, Carratino, Rosasco 2017; Meanti et al. 2020).

``FalkonSolver`` minimises ``||K_nM α - Y||² + λ n αᵀ K_MM α`` over the coefficients α of M centres drawn
from the training points, i.e. it solves the normal equations

    (K_nMᵀ K_nM + λ n K_MM) α = K_nMᵀ Y

by conjugate gradient, preconditioned with ``B = T⁻¹ A⁻¹ / √n`` where ``TᵀT = K_MM`` and
``AᵀA = T Tᵀ / M + λ I``. B makes the system close to the identity whenever ``K_nMᵀ K_nM ≈ (n/M) K_MM²``,
which is why a handful of iterations suffice. Every right-hand side (one per class) is solved at once.

As in Falkon, the penalty uses ``K_MM + jitter·I`` (``TᵀT``; jitter ≈ 1e-13·trace(K_MM) in float64,
1e-5·trace in float32). Without it a rank-deficient K_MM (the linear kernel with M > d, duplicated
points) leaves a null space in which round-off accumulates and CG diverges.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from ..errors import SolverError

KERNELS = ("gaussian", "laplacian", "linear")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Diagonal jitter relative to trace(K_MM), as in Falkon: it must outweigh round-off in each precision yet
# stay negligible against the spectrum.
_EPS = {torch.float32: 1e-5, torch.float64: 1e-13}
_JITTER_GROWTH = 100.0
_CHOLESKY_TRIES = 5
_BLOCK_ELEMENTS = 2**22  # one kernel block: 16 MiB in float32
_STORE_BYTES = 2**28  # K_nM is kept between CG iterations only up to 256 MiB, else recomputed


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None or 'auto' means CUDA when present; asking for CUDA without it is an error, not a silent fallback."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available; use device='cpu' or 'auto'")
    return device


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _EPS:
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def kernel_matrix(X: torch.Tensor, Z: torch.Tensor, kernel: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """``K[i, j] = k(X[i], Z[j])``; use ``_KernelRows`` rather than this for many rows."""
    if kernel == "linear":
        return X @ Z.T
    sq = _squared_distances(X, Z)
    if kernel == "gaussian":
        return sq.mul_(-0.5 / sigma**2).exp_()
    if kernel == "laplacian":
        return sq.sqrt_().mul_(-1.0 / sigma).exp_()
    raise ValueError(f"unknown kernel {kernel!r} (choose from {', '.join(KERNELS)})")


def _squared_distances(X: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    # The expanded form costs one matrix product; the clamp removes the small negatives its round-off leaves.
    sq = X @ Z.T
    sq.mul_(-2.0).add_((X * X).sum(1, keepdim=True)).add_((Z * Z).sum(1))
    return sq.clamp_min_(0.0)


def median_sigma(X: torch.Tensor, max_points: int = 1000, generator: torch.Generator | None = None) -> float:
    """Median pairwise euclidean distance over a random subsample of at most ``max_points`` rows."""
    X = torch.as_tensor(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"median_sigma needs a 2-D array with at least 2 rows, got shape {tuple(X.shape)}")
    if X.shape[0] > max_points:
        keep = torch.randperm(X.shape[0], generator=generator)[:max_points]
        X = X[keep.to(X.device)]
    dist = torch.pdist(X.double())
    # Duplicated rows give zero distances that would drag the median to an unusable bandwidth of 0.
    dist = dist[dist > 0]
    return float(dist.median()) if dist.numel() else 1.0


def conjugate_gradient(
    matmul: Callable[[torch.Tensor], torch.Tensor], B: torch.Tensor, maxiter: int, tol: float
) -> tuple[torch.Tensor, int]:
    """Solve ``S X = B`` for a symmetric positive semi-definite S given as ``matmul``, all columns at once.

    A column stops moving once its residual is below ``tol`` times its right-hand side's norm; returns the
    solution and the number of iterations run.
    """
    X = torch.zeros_like(B)
    R = B.clone()
    P = R.clone()
    rs = _column_dot(R, R)
    target = tol**2 * rs
    for iteration in range(1, maxiter + 1):
        active = rs > target
        if not bool(active.any()):
            return X, iteration - 1
        SP = matmul(P)
        step = torch.where(active, _safe_divide(rs, _column_dot(P, SP)), 0.0)
        X.add_(P * step)
        R.sub_(SP * step)
        rs_new = _column_dot(R, R)
        P = R + P * _safe_divide(rs_new, rs)
        rs = rs_new
    return X, maxiter


def _column_dot(U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    return (U * V).sum(0)


def _safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # A zero or negative curvature means the column has converged or hit round-off; it must not move.
    return torch.where(b > 0, a / torch.where(b > 0, b, 1.0), 0.0)


class _KernelRows:
    """``K_nM = K(X, C)`` used block by block, so memory stays bounded; stored whole when it fits the budget."""

    def __init__(self, X, C, kernel, sigma, block_rows, store_bytes):
        self.X, self.C, self.kernel, self.sigma = X, C, kernel, sigma
        self.block_rows = block_rows
        self.stored = None
        if X.shape[0] * C.shape[0] * X.element_size() <= store_bytes:
            self.stored = X.new_empty(X.shape[0], C.shape[0])
            for rows, block in self._compute_blocks():
                self.stored[rows] = block

    def _compute_blocks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        for start in range(0, self.X.shape[0], self.block_rows):
            rows = slice(start, start + self.block_rows)
            yield rows, kernel_matrix(self.X[rows], self.C, self.kernel, self.sigma)

    def blocks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        if self.stored is not None:
            return iter([(slice(None), self.stored)])
        return self._compute_blocks()

    def t_matmul(self, Y: torch.Tensor) -> torch.Tensor:
        """``K_nMᵀ Y``."""
        out = Y.new_zeros(self.C.shape[0], Y.shape[1])
        for rows, block in self.blocks():
            out.addmm_(block.T, Y[rows])
        return out

    def gram_matmul(self, V: torch.Tensor) -> torch.Tensor:
        """``K_nMᵀ K_nM V`` without ever forming the M×M product."""
        out = V.new_zeros(self.C.shape[0], V.shape[1])
        for _, block in self.blocks():
            out.addmm_(block.T, block @ V)
        return out


def _cholesky_upper(matrix: torch.Tensor, jitter: float, what: str) -> tuple[torch.Tensor, float]:
    """Upper factor U with ``UᵀU = matrix + jitter·I``, growing the jitter until the factorisation succeeds."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    for _ in range(_CHOLESKY_TRIES):
        factor, info = torch.linalg.cholesky_ex(matrix + jitter * eye, upper=True)
        if int(info) == 0 and bool(torch.isfinite(factor).all()):
            return factor, jitter
        jitter *= _JITTER_GROWTH
    raise SolverError(
        f"Cholesky factorisation of {what} failed even with jitter {jitter / _JITTER_GROWTH:.3g} on the "
        "diagonal: the kernel matrix is numerically indefinite or not finite; check the features for "
        "NaN/inf, try another sigma, or use dtype='float64'"
    )


class _Preconditioner:
    """Falkon's ``B = T⁻¹ A⁻¹ / √n``, applied with triangular solves only."""

    def __init__(self, kmm: torch.Tensor, lam: float, n: int):
        M = kmm.shape[0]
        if not bool(torch.isfinite(kmm).all()):
            raise SolverError("the kernel matrix of the centres contains NaN/inf; check the features and sigma")
        eps = _EPS[kmm.dtype]
        # Scaling by the mean diagonal keeps the jitter meaningful for kernels whose diagonal is not 1 (linear).
        scale = float(kmm.diagonal().mean()) or 1.0
        self.T, self.jitter = _cholesky_upper(kmm, eps * M * scale, "K_MM")
        inner = self.T @ self.T.T / M
        inner.diagonal().add_(lam)
        self.A, _ = _cholesky_upper(inner, eps * scale, "T Tᵀ/M + λI")
        self.root_n = math.sqrt(n)
        self.lam = lam

    def apply(self, U: torch.Tensor) -> torch.Tensor:
        """``B U``."""
        V = torch.linalg.solve_triangular(self.A, U, upper=True)
        return torch.linalg.solve_triangular(self.T, V, upper=True) / self.root_n

    def apply_t(self, W: torch.Tensor) -> torch.Tensor:
        """``Bᵀ W``."""
        V = torch.linalg.solve_triangular(self.T.T, W, upper=False)
        return torch.linalg.solve_triangular(self.A.T, V, upper=False) / self.root_n

    def penalty(self, U: torch.Tensor) -> torch.Tensor:
        """``Bᵀ (λ n K̃_MM) B U = λ A⁻ᵀ A⁻¹ U``, with K̃_MM = TᵀT the jittered K_MM."""
        V = torch.linalg.solve_triangular(self.A, U, upper=True)
        return self.lam * torch.linalg.solve_triangular(self.A.T, V, upper=False)


class FalkonSolver:
    """Nyström kernel ridge regression; ``fit(X, Y)`` then ``predict(X)``, all in torch.

    ``sigma=None`` picks the median heuristic on the training points (ignored by the linear kernel).
    ``M`` is capped at n. ``device=None`` uses CUDA when available. ``block_rows`` overrides how many rows
    of a kernel matrix are formed at once; ``store_bytes`` is the largest K_nM kept between iterations.
    After ``fit``: ``centers_``, ``center_indices_``, ``alpha_`` (M, k), ``sigma_``, ``n_iter_``, ``jitter_``.
    """

    def __init__(self, kernel: str = "gaussian", sigma: float | None = None, lam: float = 1e-6, M: int = 1000,
                 maxiter: int = 20, tol: float = 1e-7, dtype: str | torch.dtype = "float32",
                 device: str | torch.device | None = None, seed: int = 0, block_rows: int | None = None,
                 store_bytes: int = _STORE_BYTES):
        _check_settings(kernel, sigma, lam, M, maxiter, tol, block_rows)
        self.kernel, self.sigma, self.lam, self.M = kernel, sigma, float(lam), int(M)
        self.maxiter, self.tol, self.seed = int(maxiter), float(tol), int(seed)
        self.dtype, self.device = resolve_dtype(dtype), resolve_device(device)
        self.block_rows, self.store_bytes = block_rows, store_bytes

    @torch.no_grad()
    def fit(self, X, Y) -> "FalkonSolver":
        X, Y = self._tensor(X), self._tensor(Y)
        self._squeeze = Y.ndim == 1
        Y = Y.reshape(Y.shape[0], -1)
        _check_data(X, Y)
        generator = torch.Generator().manual_seed(self.seed)
        self.sigma_ = self._bandwidth(X, generator)
        self.center_indices_ = self._sample_centres(X.shape[0], generator)
        self.centers_ = X[self.center_indices_.to(X.device)]
        self.alpha_, self.n_iter_ = self._solve(X, Y)
        return self

    @torch.no_grad()
    def predict(self, X) -> torch.Tensor:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("FalkonSolver.predict was called before fit")
        X = self._tensor(X)
        if X.ndim != 2 or X.shape[1] != self.centers_.shape[1]:
            raise ValueError(f"expected X of shape (n, {self.centers_.shape[1]}), got {tuple(X.shape)}")
        out = X.new_empty(X.shape[0], self.alpha_.shape[1])
        # Scores are computed in float64: with a small λ, α is large and cancels, so float32 round-off,
        # which depends on how many rows share a matrix product, would make a row's score depend on its
        # batch. This costs one kernel block per test row, little next to fitting.
        centres, alpha = self.centers_.double(), self.alpha_.double()
        rows = self._block_rows(self.centers_.shape[0])
        for start in range(0, X.shape[0], rows):
            block = kernel_matrix(X[start:start + rows].double(), centres, self.kernel, self.sigma_)
            out[start:start + rows] = block @ alpha
        return out[:, 0] if self._squeeze else out

    def _solve(self, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, int]:
        n = X.shape[0]
        knm = _KernelRows(X, self.centers_, self.kernel, self.sigma_,
                          self._block_rows(self.centers_.shape[0]), self.store_bytes)
        kmm = kernel_matrix(self.centers_, self.centers_, self.kernel, self.sigma_)
        pc = _Preconditioner(kmm, self.lam, n)
        del kmm
        self.jitter_ = pc.jitter

        def system(U):
            return pc.apply_t(knm.gram_matmul(pc.apply(U))) + pc.penalty(U)

        beta, n_iter = conjugate_gradient(system, pc.apply_t(knm.t_matmul(Y)), self.maxiter, self.tol)
        return pc.apply(beta), n_iter

    def _bandwidth(self, X: torch.Tensor, generator: torch.Generator) -> float | None:
        if self.kernel == "linear":
            return None
        return float(self.sigma) if self.sigma is not None else median_sigma(X, generator=generator)

    def _sample_centres(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # Sorted indices keep centres in data order, so the same seed gives the same centres on any device.
        return torch.randperm(n, generator=generator)[: min(self.M, n)].sort().values

    def _block_rows(self, M: int) -> int:
        return self.block_rows or max(1, _BLOCK_ELEMENTS // M)

    def _tensor(self, A) -> torch.Tensor:
        return torch.as_tensor(A, dtype=self.dtype, device=self.device)


def _check_settings(kernel, sigma, lam, M, maxiter, tol, block_rows) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r} (choose from {', '.join(KERNELS)})")
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0 or None, got {sigma!r}")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    for name, value in (("M", M), ("maxiter", maxiter), ("block_rows", block_rows or 1)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")


def _check_data(X: torch.Tensor, Y: torch.Tensor) -> None:
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {tuple(X.shape)}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if not (bool(torch.isfinite(X).all()) and bool(torch.isfinite(Y).all())):
        raise ValueError("X and Y must contain only finite values (found NaN or inf)")
