"""Computational options of a solve: where it runs, in what precision, and how it takes its products.

They decide speed and memory, not the problem solved: the model's hyper-parameters (kernel, σ, λ, M,
maxiter, tol, seed) are ``FalkonSolver``'s own arguments, as toptune's classifier exposes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..measure.device import resolve_device
from .precision import resolve_dtype, resolve_matmul
from .products import STRATEGIES

__all__ = ["SolverOptions"]


@dataclass(frozen=True)
class SolverOptions:
    """How a ``FalkonSolver`` computes.

    ``dtype`` 'float32' or 'float64'. ``device`` None or 'auto' uses CUDA when available. ``matmul`` the
    float32 product mode: 'auto', 'ieee' or 'bf16' (see ``precision``). ``strategy`` how products with
    K_nMᵀK_nM are taken: 'auto', 'gram', 'store' or 'stream' (see ``products``). ``block_rows`` overrides
    how many rows of a kernel matrix are formed at once and ``store_bytes`` the largest K_nM kept between
    iterations; both default to shares of the device's free memory.

    The dtype, strategy and block rows are checked here; the device and product mode are checked against
    the hardware when a solver resolves them (``resolved``).
    """

    dtype: str | torch.dtype = "float32"
    device: str | torch.device | None = None
    matmul: str = "auto"
    strategy: str = "auto"
    block_rows: int | None = None
    store_bytes: int | None = None

    def __post_init__(self):
        resolve_dtype(self.dtype)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        block_rows = self.block_rows or 1  # None (and 0) mean: from the free memory
        if int(block_rows) != block_rows or block_rows < 1:
            raise ValueError(f"block_rows must be an integer >= 1, got {self.block_rows!r}")

    @classmethod
    def merged(cls, options: SolverOptions | None = None, **fields) -> SolverOptions:
        """``options`` (the defaults when None) with every keyword argument that is not None replacing its
        field: how ``FalkonSolver`` maps its keyword arguments ``dtype=``, ``device=`` ... into options."""
        changes = {name: value for name, value in fields.items() if value is not None}
        return dataclasses.replace(options if options is not None else cls(), **changes)

    def resolved(self) -> tuple[torch.dtype, torch.device, str]:
        """(dtype, device, product mode 'ieee' or 'bf16') that a solve with these options runs in.

        Raises ValueError for a device or product mode this machine cannot run.
        """
        dtype, device = resolve_dtype(self.dtype), resolve_device(self.device)
        return dtype, device, resolve_matmul(self.matmul, device, dtype)
