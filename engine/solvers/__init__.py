"""Numerical solvers behind the classifier plugins."""

from .falkon import KERNELS, FalkonSolver, conjugate_gradient, kernel_matrix, median_sigma

__all__ = ["KERNELS", "FalkonSolver", "conjugate_gradient", "kernel_matrix", "median_sigma"]
