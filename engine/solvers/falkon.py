"""Nyström kernel ridge regression by the Falkon algorithm (Rudi, Carratino, Rosasco 2017; Meanti et al. 2020).

``FalkonSolver`` minimises ``||K_nM α - Y||² + λ n αᵀ K_MM α`` over the coefficients α of M centres drawn
from the training points, i.e. it solves the normal equations

    (K_nMᵀ K_nM + λ n K_MM) α = K_nMᵀ Y

by conjugate gradient, preconditioned with ``B = T⁻¹ A⁻¹ / √n`` where ``TᵀT = K_MM`` and
``AᵀA = T Tᵀ / M + λ I``. B makes the system close to the identity whenever ``K_nMᵀ K_nM ≈ (n/M) K_MM²``,
which is why a handful of iterations suffice. Every right-hand side (one per class) is solved at once.

The products with ``K_nMᵀ K_nM`` come from one of three strategies (``strategy_`` after a fit):
``gram`` forms the whitened M×M matrix ``T⁻ᵀ K_nMᵀ K_nM T⁻¹`` in one blocked pass, after which an
iteration costs only M² per class; ``store`` keeps K_nM and streams it through memory once per
iteration; ``stream`` recomputes K_nM block by block in every iteration, for when it fits in no memory.
``auto`` picks the cheapest from the sizes (``choose_strategy``). Block sizes and the memory K_nM may take
come from the device's free memory (``memory``).

Matrix products in float32 may run in oneDNN's bf16 mode (``matmul``): on CPUs with native bf16 dot
products (AVX512-BF16, AMX) it splits each float32 operand into bf16 parts and accumulates in float32, so
its round-off stays at float32's order (relative error 1e-6 against 2e-6 for MKL's sgemm on K_nM·V,
measured on 2 Zen 4 cores) while kernel blocks form 2.4× and the conjugate-gradient products 3–6× faster.
``auto`` uses it wherever that hardware is present; float64, CUDA and other CPUs always run IEEE products.

As in Falkon, the penalty uses ``K_MM + jitter·I`` (``TᵀT``; jitter ≈ 1e-13·trace(K_MM) in float64,
1e-5·trace in float32). Without it a rank-deficient K_MM (the linear kernel with M > d, duplicated
points) leaves a null space in which round-off accumulates and CG diverges.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ..errors import SolverError
from ..progress import current
from . import memory
from .kernels import KERNELS, kernel_matrix, median_sigma

__all__ = ["DTYPES", "KERNELS", "MATMULS", "STRATEGIES", "FalkonSolver", "conjugate_gradient", "kernel_matrix",
           "lambda_floor", "matmul_precision", "median_sigma", "resolve_device", "resolve_dtype", "resolve_matmul"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
STRATEGIES = ("auto", "gram", "store", "stream")
MATMULS = ("auto", "ieee", "bf16")
# Diagonal jitter relative to trace(K_MM), as in Falkon: it must outweigh round-off in each precision yet
# stay negligible against the spectrum.
_EPS = {torch.float32: 1e-5, torch.float64: 1e-13}
_JITTER_GROWTH = 100.0
_CHOLESKY_TRIES = 5
# Reading one entry of a stored K_nM in a product with few columns costs as much as this many of the
# multiply-adds that form the Gram matrix, by product mode. Measured on 2 Zen 4 cores (50,000 × 1,280
# synthetic and digits features, 20 iterations): the store/gram crossover lies near M = 1,000 with IEEE
# products and near M = 400 in bf16 mode, whose skinny products run 5× faster while its GEMMs gain 2.4×.
_READ_COST = {"ieee": 64, "bf16": 32}
# Slices of a stored K_nM that both products of an iteration use while the slice is still in cache.
_SWEEP_BYTES = 2**23
# Row blocks of a fixed size make a test row's score independent of the rows predicted with it; models
# this small (M·d) predict in float64 instead, where such differences are far below any tolerance.
_PREDICT_ROWS = {"cpu": 256, "cuda": 4096}
_SMALL_MODEL = 2**16
# Split-bf16 products err about 1e-6 relative, plain bf16 ones about 2e-3: the bf16 mode must beat this.
_SPLIT_BF16_ERROR = 1e-5


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


@functools.cache  # the CPU does not change while the process runs
def bf16_dot_products() -> bool:
    """Whether oneDNN's bf16 mode for float32 products keeps float32-level accuracy on this CPU.

    On CPUs with AVX512-BF16 (Zen 4) oneDNN splits each float32 operand into bf16 parts (relative error
    1e-6), but on CPUs with AMX (Sapphire Rapids and later) the same setting runs plain bf16 products
    (2e-3), which breaks solves with a small λ: digits pixels then score 0.29 instead of 0.98. So the mode
    is measured, not assumed: one small product against float64, once per process.
    """
    try:
        capability = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):  # private API: a torch without it simply gets IEEE products
        return False
    if not (torch.backends.mkldnn.is_available() and (capability.get("avx512_bf16") or capability.get("amx_bf16"))):
        return False
    return _bf16_mode_error() < _SPLIT_BF16_ERROR


def _bf16_mode_error() -> float:
    """Relative error of a float32 product in oneDNN's bf16 mode, against float64."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(256, 512, generator=generator)
    b = torch.randn(512, 256, generator=generator)
    with matmul_precision("bf16"):
        product = a @ b
    exact = a.double() @ b.double()
    return float((product.double() - exact).norm() / exact.norm())


def resolve_matmul(matmul: str, device: torch.device, dtype: torch.dtype) -> str:
    """'ieee' or 'bf16': the float32 product mode a solve on ``device`` in ``dtype`` runs (see the module docstring)."""
    if matmul not in MATMULS:
        raise ValueError(f"matmul must be one of {', '.join(MATMULS)}, got {matmul!r}")
    hardware = bf16_dot_products()
    available = device.type == "cpu" and dtype == torch.float32 and hardware
    if matmul == "auto":
        return "bf16" if available else "ieee"
    if matmul == "bf16" and not available:
        raise ValueError("matmul='bf16' needs dtype float32 on a CPU with bf16 dot products (AVX512-BF16 or "
                         f"AMX); this solve runs {str(dtype).removeprefix('torch.')} on {device.type}"
                         f"{'' if device.type != 'cpu' or hardware else ' without them'}; "
                         "use matmul='auto' or 'ieee'")
    return matmul


_PRECISION_LOCK = threading.Lock()
_precision_users = [0, None]  # solves inside ``matmul_precision('bf16')`` now, and the setting before the first


@contextmanager
def matmul_precision(mode: str):
    """Run float32 matrix products in ``mode`` ('ieee' leaves torch's setting alone) within the block.

    The setting is process-wide: concurrent solves share it, and the first to enter restores it last out.
    """
    if mode != "bf16":
        yield
        return
    with _PRECISION_LOCK:
        if _precision_users[0] == 0:
            _precision_users[1] = torch.backends.mkldnn.matmul.fp32_precision
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        _precision_users[0] += 1
    try:
        yield
    finally:
        with _PRECISION_LOCK:
            _precision_users[0] -= 1
            if _precision_users[0] == 0:
                torch.backends.mkldnn.matmul.fp32_precision = _precision_users[1]


def lambda_floor(dtype: torch.dtype) -> float:
    """The smallest λ the solver uses in ``dtype``: smaller values, 0 included, are raised to it.

    Falkon's preconditioner makes the data term of the solved system of order 1, so a penalty below the
    precision's epsilon is numerically zero there; and without a penalty a singular K_MM (duplicated
    points, the linear kernel with M > d) leaves directions in which CG amplifies round-off without bound.
    """
    return float(torch.finfo(dtype).eps)


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


class _KernelRows:
    """``K_nM = K(X, C)`` used block by block, so memory stays bounded; stored whole when ``store``."""

    def __init__(self, X, C, kernel, sigma, block_rows, store=False):
        self.X, self.C, self.kernel, self.sigma = X, C, kernel, sigma
        self.block_rows = block_rows
        self.stored = None
        if store:
            self.stored = X.new_empty(X.shape[0], C.shape[0])
            for _ in self._compute_blocks(into=self.stored):
                pass  # each block is written into its rows of the stored matrix

    def _compute_blocks(self, into: torch.Tensor | None = None) -> Iterator[tuple[slice, torch.Tensor]]:
        for start in range(0, self.X.shape[0], self.block_rows):
            rows = slice(start, start + self.block_rows)
            out = None if into is None else into[rows]
            yield rows, kernel_matrix(self.X[rows], self.C, self.kernel, self.sigma, out=out)

    def blocks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        if self.stored is None:
            return self._compute_blocks()
        # Slices of the stored matrix small enough to stay in cache between the two products with each.
        step = max(1, _SWEEP_BYTES // (self.stored.shape[1] * self.stored.element_size()))
        return ((slice(s, s + step), self.stored[s:s + step]) for s in range(0, self.stored.shape[0], step))

    # Products are taken transposed, (Wᵀ K)ᵀ rather than Kᵀ W and Vᵀ Kᵀ rather than K V: with few columns
    # in W or V, BLAS runs those forms markedly faster on a row-major K.
    def t_matmul(self, Y: torch.Tensor) -> torch.Tensor:
        """``K_nMᵀ Y``."""
        out = Y.new_zeros(Y.shape[1], self.C.shape[0])
        for rows, block in self.blocks():
            out.addmm_(Y[rows].T, block)
        return out.T

    def gram_matmul(self, V: torch.Tensor) -> torch.Tensor:
        """``K_nMᵀ K_nM V`` without ever forming the M×M product."""
        out = V.new_zeros(V.shape[1], self.C.shape[0])
        for _, block in self.blocks():
            out.addmm_(V.T @ block.T, block)
        return out.T

    def whitened_gram(self, pc: _Preconditioner, V: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ K_nMᵀ K_nM T⁻¹ V``."""
        return pc.outer_t(self.gram_matmul(pc.outer(V)))

    def whitened_rhs(self, pc: _Preconditioner, Y: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ K_nMᵀ Y``."""
        return pc.outer_t(self.t_matmul(Y))


class _WhitenedGram:
    """``H = T⁻ᵀ K_nMᵀ K_nM T⁻¹`` and ``T⁻ᵀ K_nMᵀ Y`` formed in one pass over K_nM; products then cost M².

    Whitening each block (``K_b T⁻¹``) before squaring keeps the round-off of the sum relative to the
    preconditioned problem. Squaring K_nM first and whitening after would blow its round-off up by
    ``|T⁻¹|²`` in the directions where K_MM is nearly singular, exactly where the penalty is weakest; CG
    then breaks down for small λ.
    """

    def __init__(self, rows: _KernelRows, Y: torch.Tensor, pc: _Preconditioner):
        M = rows.C.shape[0]
        self.H = Y.new_zeros(M, M)
        rhs = Y.new_zeros(Y.shape[1], M)
        chunks = _chunks(M)
        for block_rows, block in rows.blocks():
            whitened = torch.linalg.solve_triangular(pc.T, block, upper=True, left=False)  # K_b T⁻¹
            _add_upper_gram(self.H, whitened, chunks)
            rhs.addmm_(Y[block_rows].T, whitened)
        _mirror_upper(self.H, chunks)
        self.rhs = rhs.T

    def whitened_gram(self, pc: _Preconditioner, V: torch.Tensor) -> torch.Tensor:
        return self.H @ V

    def whitened_rhs(self, pc: _Preconditioner, Y: torch.Tensor) -> torch.Tensor:
        return self.rhs


def _chunks(M: int, size: int = 1024) -> list[slice]:
    # Column chunks of about ``size``: small enough that skipping the blocks below the diagonal saves
    # real work, large enough that each product still runs at full speed.
    count = max(1, round(M / size))
    step = -(-M // count)
    return [slice(start, min(start + step, M)) for start in range(0, M, step)]


def _add_upper_gram(G: torch.Tensor, K: torch.Tensor, chunks: list[slice]) -> None:
    """``G += KᵀK`` on the chunk blocks on and above the diagonal only, as G is symmetric."""
    for i, a in enumerate(chunks):
        for b in chunks[i:]:
            G[a, b].addmm_(K[:, a].T, K[:, b])


def _mirror_upper(G: torch.Tensor, chunks: list[slice]) -> None:
    # A product KᵀK is symmetric only up to round-off, and CG needs exact symmetry.
    for i, a in enumerate(chunks):
        G[a, a] = (G[a, a] + G[a, a].T) / 2
        for b in chunks[i + 1:]:
            G[b, a] = G[a, b].T


def choose_strategy(n: int, M: int, d: int, k: int, maxiter: int, storable: bool, matmul: str = "ieee") -> str:
    """The cheapest way to multiply by K_nMᵀK_nM in ``maxiter`` iterations with ``k`` columns.

    Costs per entry of K_nM, beyond forming it once (d multiply-adds): ``gram`` about 1.3·M once
    (whitening M/2, the symmetric square about 0.6·M, plus their lower efficiency); ``store`` 2·k per
    iteration, but never less than reading the entry from memory; ``stream`` d + 2·k per iteration.
    """
    gram = 1.3 * M
    if storable:
        return "gram" if gram <= maxiter * max(2 * k, _READ_COST[matmul]) else "store"
    return "gram" if gram <= maxiter * (d + 2 * k) else "stream"


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
    chunks = _chunks(M)
    out = T.new_empty(M, M)
    for i, a in enumerate(chunks):
        for b in chunks[i:]:
            # (T Tᵀ)[a, b] = Σ over columns k ≥ b.start of T[a, k] T[b, k]ᵀ: T[b, k] is 0 for k < b.start.
            tail = slice(b.start, M)
            torch.mm(T[a, tail], T[b, tail].T, out=out[a, b])
    _mirror_upper(out, chunks)
    return out


class _Preconditioner:
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


class FalkonSolver:
    """Nyström kernel ridge regression; ``fit(X, Y)`` then ``predict(X)``, all in torch.

    ``sigma=None`` picks the median heuristic on the training points (ignored by the linear kernel).
    ``M`` is capped at n. ``device=None`` uses CUDA when available. ``strategy`` chooses how products with
    K_nMᵀK_nM are taken (see the module docstring). ``block_rows`` overrides how many rows of a kernel
    matrix are formed at once and ``store_bytes`` the largest K_nM kept between iterations; both default
    to shares of the device's free memory.
    After ``fit``: ``centers_``, ``center_indices_``, ``alpha_`` (M, k), ``sigma_``, ``lam_`` (λ raised to
    ``lambda_floor``), ``n_iter_``, ``jitter_``, ``strategy_``, ``matmul_``.
    """

    def __init__(self, kernel: str = "gaussian", sigma: float | None = None, lam: float = 1e-6, M: int = 1000,
                 maxiter: int = 20, tol: float = 1e-7, dtype: str | torch.dtype = "float32",
                 device: str | torch.device | None = None, seed: int = 0, block_rows: int | None = None,
                 store_bytes: int | None = None, strategy: str = "auto", matmul: str = "auto"):
        _check_settings(kernel, sigma, lam, M, maxiter, tol, block_rows, strategy)
        self.kernel, self.sigma, self.lam, self.M = kernel, sigma, float(lam), int(M)
        self.maxiter, self.tol, self.seed = int(maxiter), float(tol), int(seed)
        self.dtype, self.device = resolve_dtype(dtype), resolve_device(device)
        self.block_rows, self.store_bytes, self.strategy = block_rows, store_bytes, strategy
        self.matmul, self.matmul_ = matmul, resolve_matmul(matmul, self.device, self.dtype)

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
        free = memory.free_bytes(X.device)
        store_bytes = memory.store_budget(X.device, free) if self.store_bytes is None else self.store_bytes
        storable = n * M * X.element_size() <= store_bytes
        self.strategy_ = self.strategy if self.strategy != "auto" else \
            choose_strategy(n, M, d, Y.shape[1], self.maxiter, storable, self.matmul_)
        rows = self.block_rows or memory.block_rows(2 * (M + d) * X.element_size(), X.device, free)
        knm = _KernelRows(X, self.centers_, self.kernel, self.sigma_, rows, store=self.strategy_ == "store")
        kmm = kernel_matrix(self.centers_, self.centers_, self.kernel, self.sigma_)
        pc = _Preconditioner(kmm, self.lam_, n)
        del kmm
        self.jitter_ = pc.jitter
        products = _WhitenedGram(knm, Y, pc) if self.strategy_ == "gram" else knm

        def system(U):
            return pc.inner_t(products.whitened_gram(pc, pc.inner(U))) + pc.penalty(U)

        rhs = pc.inner_t(products.whitened_rhs(pc, Y))
        beta, n_iter = conjugate_gradient(system, rhs, self.maxiter, self.tol)
        return pc.apply(beta), n_iter

    def _bandwidth(self, X: torch.Tensor, generator: torch.Generator) -> float | None:
        if self.kernel == "linear":
            return None
        sigma = float(self.sigma) if self.sigma is not None else median_sigma(X, generator=generator)
        if _inverse_bandwidth(self.kernel, sigma) > torch.finfo(self.dtype).max:
            raise SolverError(f"sigma={sigma:g} is too small for {self.dtype}: the kernel would be NaN/inf; "
                              "standardise the features or choose a larger sigma")
        return sigma

    def _sample_centres(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # Sorted indices keep centres in data order, so the same seed gives the same centres on any device.
        return torch.randperm(n, generator=generator)[: min(self.M, n)].sort().values

    def _tensor(self, A) -> torch.Tensor:
        return torch.as_tensor(A, dtype=self.dtype, device=self.device)


def _inverse_bandwidth(kernel: str, sigma: float) -> float:
    return 0.5 / sigma**2 if kernel == "gaussian" else 1.0 / sigma


def _padded(block: torch.Tensor, rows: int) -> torch.Tensor:
    if block.shape[0] == rows:
        return block
    out = block.new_zeros(rows, block.shape[1])
    out[: block.shape[0]] = block
    return out


def _check_settings(kernel, sigma, lam, M, maxiter, tol, block_rows, strategy) -> None:
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
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def _check_data(X: torch.Tensor, Y: torch.Tensor) -> None:
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {tuple(X.shape)}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    # min and max are NaN or infinite exactly when some entry is; one pass, no n×d mask.
    if not all(bool(torch.isfinite(v)) for A in (X, Y) for v in torch.aminmax(A)):
        raise ValueError("X and Y must contain only finite values (found NaN or inf)")
