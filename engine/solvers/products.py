"""Products with ``K_nMᵀ K_nM``, the costly part of every conjugate-gradient iteration, and how to take them.

They come from one of three strategies: ``gram`` forms the whitened M×M matrix ``T⁻ᵀ K_nMᵀ K_nM T⁻¹`` in
one blocked pass (``WhitenedGram``), after which an iteration costs only M² per class; ``store`` keeps
K_nM and streams it through memory once per iteration; ``stream`` recomputes K_nM block by block in every
iteration, for when it fits in no memory (both ``KernelRows``). ``auto`` picks the cheapest from the
sizes (``choose_strategy``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch

from .kernels import kernel_matrix

__all__ = ["STRATEGIES", "KernelRows", "WhitenedGram", "Whitening", "choose_strategy", "chunks", "mirror_upper"]

STRATEGIES = ("auto", "gram", "store", "stream")
# Reading one entry of a stored K_nM in a product with few columns costs as much as this many of the
# multiply-adds that form the Gram matrix, by product mode. Measured on 2 Zen 4 cores (50,000 × 1,280
# synthetic and digits features, 20 iterations): the store/gram crossover lies near M = 1,000 with IEEE
# products and near M = 400 in bf16 mode, whose skinny products run 5× faster while its GEMMs gain 2.4×.
_READ_COST = {"ieee": 64, "bf16": 32}
# Slices of a stored K_nM that both products of an iteration use while the slice is still in cache.
_SWEEP_BYTES = 2**23


class Whitening(Protocol):
    """What the products need of the preconditioner: its upper factor T (``TᵀT = K_MM``) and solves with it."""

    T: torch.Tensor

    def outer(self, V: torch.Tensor) -> torch.Tensor:
        """``T⁻¹ V``."""

    def outer_t(self, W: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ W``."""


class KernelRows:
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

    def whitened_gram(self, pc: Whitening, V: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ K_nMᵀ K_nM T⁻¹ V``."""
        return pc.outer_t(self.gram_matmul(pc.outer(V)))

    def whitened_rhs(self, pc: Whitening, Y: torch.Tensor) -> torch.Tensor:
        """``T⁻ᵀ K_nMᵀ Y``."""
        return pc.outer_t(self.t_matmul(Y))


class WhitenedGram:
    """``H = T⁻ᵀ K_nMᵀ K_nM T⁻¹`` and ``T⁻ᵀ K_nMᵀ Y`` formed in one pass over K_nM; products then cost M².

    Whitening each block (``K_b T⁻¹``) before squaring keeps the round-off of the sum relative to the
    preconditioned problem. Squaring K_nM first and whitening after would blow its round-off up by
    ``|T⁻¹|²`` in the directions where K_MM is nearly singular, exactly where the penalty is weakest; CG
    then breaks down for small λ.
    """

    def __init__(self, rows: KernelRows, Y: torch.Tensor, pc: Whitening):
        M = rows.C.shape[0]
        self.H = Y.new_zeros(M, M)
        rhs = Y.new_zeros(Y.shape[1], M)
        column_chunks = chunks(M)
        for block_rows, block in rows.blocks():
            whitened = torch.linalg.solve_triangular(pc.T, block, upper=True, left=False)  # K_b T⁻¹
            _add_upper_gram(self.H, whitened, column_chunks)
            rhs.addmm_(Y[block_rows].T, whitened)
        mirror_upper(self.H, column_chunks)
        self.rhs = rhs.T

    def whitened_gram(self, pc: Whitening, V: torch.Tensor) -> torch.Tensor:
        return self.H @ V

    def whitened_rhs(self, pc: Whitening, Y: torch.Tensor) -> torch.Tensor:
        return self.rhs


def chunks(M: int, size: int = 1024) -> list[slice]:
    """Column chunks of about ``size``: small enough that skipping the blocks below the diagonal of a
    symmetric or triangular M×M product saves real work, large enough that each product still runs at full
    speed."""
    count = max(1, round(M / size))
    step = -(-M // count)
    return [slice(start, min(start + step, M)) for start in range(0, M, step)]


def _add_upper_gram(G: torch.Tensor, K: torch.Tensor, column_chunks: list[slice]) -> None:
    """``G += KᵀK`` on the chunk blocks on and above the diagonal only, as G is symmetric."""
    for i, a in enumerate(column_chunks):
        for b in column_chunks[i:]:
            G[a, b].addmm_(K[:, a].T, K[:, b])


def mirror_upper(G: torch.Tensor, column_chunks: list[slice]) -> None:
    """Make G exactly symmetric from its chunk blocks on and above the diagonal."""
    # A product KᵀK is symmetric only up to round-off, and CG needs exact symmetry.
    for i, a in enumerate(column_chunks):
        G[a, a] = (G[a, a] + G[a, a].T) / 2
        for b in column_chunks[i + 1:]:
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
