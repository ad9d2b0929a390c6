"""Numerical solvers behind the classifier plugins.

One module per piece of the Falkon solver: ``falkon`` (``FalkonSolver``), ``options`` (``SolverOptions``,
how it computes), ``precision`` (dtypes, float32 product modes, the λ floor), ``cg`` (conjugate gradient),
``preconditioner`` (Falkon's preconditioner and its Cholesky factors), ``products`` (products with
K_nMᵀK_nM and the strategy choosing how), ``kernels`` (the kernel table), ``memory`` (budgets from free
memory) and ``search`` (choosing σ and λ on held-out points).
"""

from .cg import conjugate_gradient
from .falkon import FalkonSolver
from .kernels import KERNELS, Kernel, get_kernel, kernel_matrix, median_sigma
from .options import SolverOptions
from .precision import DTYPES, MATMULS, lambda_floor, matmul_precision, resolve_dtype, resolve_matmul
from .products import STRATEGIES

__all__ = ["DTYPES", "KERNELS", "MATMULS", "STRATEGIES", "FalkonSolver", "Kernel", "SolverOptions",
           "conjugate_gradient", "get_kernel", "kernel_matrix", "lambda_floor", "matmul_precision", "median_sigma",
           "resolve_dtype", "resolve_matmul"]
