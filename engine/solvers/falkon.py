"""Nyström kernel ridge regression by the Falkon algorithm (Rudi, Carratino, Rosasco 2017; Meanti et al. 2020).

``FalkonSolver`` minimises ``||K_nM α - Y||² + λ n αᵀ K_MM α`` over the coefficients α of M centres drawn
from the training points, i.e. it solves the normal equations

    (K_nMᵀ K_nM + λ n K_MM) α = K_nMᵀ Y

by conjugate gradient (``cg``), preconditioned with ``B = T⁻¹ A⁻¹ / √n`` where ``TᵀT = K_MM`` and
``AᵀA = T Tᵀ / M + λ I`` (``preconditioner``). B makes the system close to the identity whenever
``K_nMᵀ K_nM ≈ (n/M) K_MM²``, which is why a handful of iterations suffice. Every right-hand side (one per
class) is solved at once.

The products with ``K_nMᵀ K_nM`` come from one of three strategies, ``strategy_`` after a fit (``products``);
block sizes and the memory K_nM may take come from the device's free memory (``memory``). Float32 products
may run in oneDNN's split-bf16 mode, ``matmul_`` (``precision``). How the solve computes is set by
``SolverOptions`` (``options``), what it fits by the solver's own arguments.
"""

from __future__ import annotations

import math

import torch

from ..errors import SolverError
from . import memory
from .cg import conjugate_gradient
from .kernels import get_kernel, kernel_matrix, median_sigma
from .options import SolverOptions
from .precision import lambda_floor, matmul_precision
from .preconditioner import Preconditioner
from .products import KernelRows, WhitenedGram, choose_strategy

__all__ = ["FalkonSolver"]

# Row blocks of a fixed size make a test row's score independent of the rows predicted with it; models
# this small (M·d) predict in float64 instead, where such differences are far below any tolerance.
_PREDICT_ROWS = {"cpu": 256, "cuda": 4096}
_SMALL_MODEL = 2**16


class FalkonSolver:
    """Nyström kernel ridge regression; ``fit(X, Y)`` then ``predict(X)``, all in torch.

    Hyper-parameters: ``kernel`` (one of ``KERNELS``), ``sigma`` (None picks the median heuristic on the
    training points; ignored by the linear kernel), ``lam``, ``M`` (capped at n), ``maxiter`` and ``tol`` of
    conjugate gradient, and ``seed`` of the centre sampling. How it computes comes from ``options``
    (``SolverOptions``: dtype, device, matmul, strategy, block_rows, store_bytes); the keyword arguments of
    those names, where not None, replace the matching fields of ``options``; ``dtype`` and ``device`` hold
    the resolved ones.
    After ``fit``: ``centers_``, ``center_indices_``, ``alpha_`` (M, k), ``sigma_``, ``lam_`` (λ raised to
    ``lambda_floor``), ``n_iter_``, ``jitter_``, ``strategy_``, ``matmul_``.
    """

    def __init__(self, kernel: str = "gaussian", sigma: float | None = None, lam: float = 1e-6, M: int = 1000,
                 maxiter: int = 20, tol: float = 1e-7, *, seed: int = 0, options: SolverOptions | None = None,
                 dtype: str | torch.dtype | None = None, device: str | torch.device | None = None,
                 matmul: str | None = None, strategy: str | None = None, block_rows: int | None = None,
                 store_bytes: int | None = None):
        _check_hyper_parameters(kernel, sigma, lam, M, maxiter, tol)
        self.kernel, self.sigma, self.lam, self.M = kernel, sigma, float(lam), int(M)
        self.maxiter, self.tol, self.seed = int(maxiter), float(tol), int(seed)
        self.options = SolverOptions.merged(options, dtype=dtype, device=device, matmul=matmul, strategy=strategy,
                                            block_rows=block_rows, store_bytes=store_bytes)
        self.dtype, self.device, self.matmul_ = self.options.resolved()

    @classmethod
    def fitted(cls, centers, alpha, sigma: float | None, lam: float, kernel: str = "gaussian",
               options: SolverOptions | None = None) -> FalkonSolver:
        """A solver ready to predict from a saved fit: its centres (M, d), coefficients (M, k), σ and λ."""
        solver = cls(kernel, sigma, lam, max(1, len(centers)), options=options)
        solver.sigma_, solver.lam_, solver._squeeze = sigma, float(lam), False
        solver.centers_ = torch.as_tensor(centers, device=solver.device).to(solver.dtype)
        solver.alpha_ = torch.as_tensor(alpha, device=solver.device)
        return solver

    @torch.no_grad()
    def fit(self, X, Y) -> FalkonSolver:
        with matmul_precision(self.matmul_):
            return self._fit(X, Y)

    @torch.no_grad()
    def predict(self, X) -> torch.Tensor:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("FalkonSolver.predict was called before fit")
        with matmul_precision(self.matmul_):
            return self._predict(X)

    def _fit(self, X, Y) -> FalkonSolver:
        X, Y = self._tensor(X), self._tensor(Y)
        self._squeeze = Y.ndim == 1
        Y = Y.reshape(Y.shape[0], -1)
        _check_data(X, Y)
        generator = torch.Generator().manual_seed(self.seed)
        self.lam_ = max(self.lam, lambda_floor(self.dtype))
        self.sigma_ = self._bandwidth(X, generator)
        self.center_indices_ = self._sample_centres(X.shape[0], generator)
        self.centers_ = X[self.center_indices_.to(X.device)]
        self.alpha_, self.n_iter_ = self._solve(X, Y)
        return self

    def _predict(self, X) -> torch.Tensor:
        X = self._tensor(X)
        if X.ndim != 2 or X.shape[1] != self.centers_.shape[1]:
            raise ValueError(f"expected X of shape (n, {self.centers_.shape[1]}), got {tuple(X.shape)}")
        work = torch.float64 if self.centers_.numel() <= _SMALL_MODEL else self.dtype
        centres, alpha = self.centers_.to(work), self.alpha_.double()
        rows = _PREDICT_ROWS.get(X.device.type, _PREDICT_ROWS["cpu"])
        out = X.new_empty(X.shape[0], alpha.shape[1])
        for start in range(0, X.shape[0], rows):
            block = _padded(X[start:start + rows].to(work), rows)
            # Scores accumulate in float64: with a small λ, α is large and its terms cancel.
            scores = kernel_matrix(block, centres, self.kernel, self.sigma_).double() @ alpha
            out[start:start + rows] = scores[: min(rows, X.shape[0] - start)]
        return out[:, 0] if self._squeeze else out

    def _solve(self, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, int]:
        n, d = X.shape
        M = self.centers_.shape[0]
        options = self.options
        free = memory.free_bytes(X.device)
        store_bytes = memory.store_budget(X.device, free) if options.store_bytes is None else options.store_bytes
        storable = n * M * X.element_size() <= store_bytes
        self.strategy_ = options.strategy if options.strategy != "auto" else \
            choose_strategy(n, M, d, Y.shape[1], self.maxiter, storable, self.matmul_)
        rows = options.block_rows or memory.block_rows(2 * (M + d) * X.element_size(), X.device, free)
        knm = KernelRows(X, self.centers_, self.kernel, self.sigma_, rows, store=self.strategy_ == "store")
        kmm = kernel_matrix(self.centers_, self.centers_, self.kernel, self.sigma_)
        pc = Preconditioner(kmm, self.lam_, n)
        del kmm
        self.jitter_ = pc.jitter
        products = WhitenedGram(knm, Y, pc) if self.strategy_ == "gram" else knm

        def system(U):
            return pc.inner_t(products.whitened_gram(pc, pc.inner(U))) + pc.penalty(U)

        rhs = pc.inner_t(products.whitened_rhs(pc, Y))
        beta, n_iter = conjugate_gradient(system, rhs, self.maxiter, self.tol)
        return pc.apply(beta), n_iter

    def _bandwidth(self, X: torch.Tensor, generator: torch.Generator) -> float | None:
        inverse_bandwidth = get_kernel(self.kernel).inverse_bandwidth
        if inverse_bandwidth is None:  # a kernel without a bandwidth (linear)
            return None
        sigma = float(self.sigma) if self.sigma is not None else median_sigma(X, generator=generator)
        if inverse_bandwidth(sigma) > torch.finfo(self.dtype).max:
            raise SolverError(f"sigma={sigma:g} is too small for {self.dtype}: the kernel would be NaN/inf; "
                              "standardise the features or choose a larger sigma")
        return sigma

    def _sample_centres(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # Sorted indices keep centres in data order, so the same seed gives the same centres on any device.
        return torch.randperm(n, generator=generator)[: min(self.M, n)].sort().values

    def _tensor(self, A) -> torch.Tensor:
        return torch.as_tensor(A, dtype=self.dtype, device=self.device)


def _padded(block: torch.Tensor, rows: int) -> torch.Tensor:
    if block.shape[0] == rows:
        return block
    out = block.new_zeros(rows, block.shape[1])
    out[: block.shape[0]] = block
    return out


def _check_hyper_parameters(kernel, sigma, lam, M, maxiter, tol) -> None:
    get_kernel(kernel)  # raises for an unknown name
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0 or None, got {sigma!r}")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    for name, value in (("M", M), ("maxiter", maxiter)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")


def _check_data(X: torch.Tensor, Y: torch.Tensor) -> None:
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {tuple(X.shape)}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    # min and max are NaN or infinite exactly when some entry is; one pass, no n×d mask.
    if not all(bool(torch.isfinite(v)) for A in (X, Y) for v in torch.aminmax(A)):
        raise ValueError("X and Y must contain only finite values (found NaN or inf)")
