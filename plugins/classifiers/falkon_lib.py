"""Optional ``falkon`` classifier: the FalkonML library's solver behind the ``kernel`` classifier's options.

FalkonML (Meanti et al. 2020) is the reference implementation, but it is not on PyPI and builds a compiled
extension, so it is an optional dependency. Without it this module still imports: the plugin is listed
as unavailable with the install command (``unavailable``, read by ``toptune.registry``), and creating it
raises ``PluginError`` with the same message.

Standardisation, σ (median heuristic or ``'auto'``), λ (``'auto'``) and the default M are toptune's, as in
``kernel``; only the solve is FalkonML's. Its objective is toptune's divided by n, so ``lam`` is its
``penalty`` unchanged.
"""

from __future__ import annotations

import torch

from toptune.errors import PluginError
from toptune.solvers import lambda_floor

from .kernel import DEFAULT_LAM, KernelClassifier

INSTALL_HINT = ("pip install git+https://github.com/FalkonML/falkon.git (install PyTorch first; the build "
                "needs a C++ compiler, and the CUDA toolkit for GPU support)")


def _import_falkon():
    """(the falkon module, None) or (None, why it cannot be used)."""
    try:
        import falkon
    except ModuleNotFoundError as exc:
        if exc.name != "falkon":  # falkon is there but one of its own imports is missing
            return None, f"falkon is installed but cannot be imported ({exc}); reinstall it: {INSTALL_HINT}"
        return None, f"falkon not installed: {INSTALL_HINT}"
    except Exception as exc:  # noqa: BLE001 - anything, e.g. a compiled extension built for another torch
        why = f"{type(exc).__name__}: {exc}"
        return None, f"falkon is installed but cannot be imported ({why}); reinstall it: {INSTALL_HINT}"
    return falkon, None


falkon, UNAVAILABLE = _import_falkon()


class FalkonLibClassifier(KernelClassifier):
    """``kernel``'s estimator with the conjugate-gradient solve done by ``falkon.Falkon``."""

    description = "Kernel ridge classifier solved by the FalkonML library (optional; kernel's options but matmul)"
    unavailable = UNAVAILABLE
    # FalkonML runs its own products, so kernel's product-mode option does not apply.
    params = {name: param for name, param in KernelClassifier.params.items() if name != "matmul"}
    # Its fitted model lives inside FalkonML's own objects: no saved state (runs say so; predict needs one).
    save_state = load_state = scores_module = None

    def __init__(self, kernel="gaussian", sigma=None, lam=DEFAULT_LAM, M=None, maxiter=20, tol=1e-7,
                 standardize=True, dtype="float32", device="auto", seed=0):
        if self.unavailable:
            raise PluginError(self.unavailable)
        super().__init__(kernel=kernel, sigma=sigma, lam=lam, M=M, maxiter=maxiter, tol=tol,
                         standardize=standardize, dtype=dtype, device=device, seed=seed)

    def _solver(self, settings: dict, M: int, dtype: torch.dtype, device: torch.device) -> _LibrarySolver:
        return _LibrarySolver(settings["kernel"], self.sigma_, self.lam_, M, settings["maxiter"], settings["tol"],
                              dtype, device, settings["seed"])


class _LibrarySolver:
    """``falkon.Falkon`` behind the interface of ``FalkonSolver`` that ``KernelClassifier`` uses."""

    # Falkon's out-of-core model takes host tensors and moves blocks to the GPU itself.
    device = torch.device("cpu")

    def __init__(self, kernel, sigma, lam, M, maxiter, tol, dtype, compute_device, seed):
        self.kernel, self.sigma, self.lam_, self.M = kernel, sigma, max(lam, lambda_floor(dtype)), M
        self.maxiter, self.tol, self.dtype, self.seed = maxiter, tol, dtype, seed
        self.use_cpu = compute_device.type != "cuda"

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> _LibrarySolver:
        options = falkon.FalkonOptions(use_cpu=self.use_cpu, cg_tolerance=self.tol, keops_active="no")
        self.model_ = falkon.Falkon(kernel=self._kernel(options), penalty=self.lam_, M=self.M,
                                    maxiter=self.maxiter, seed=self.seed, options=options)
        self.model_.fit(X.cpu(), Y.cpu())
        self.centers_ = self.model_.ny_points_
        self.n_iter_ = self.maxiter  # Falkon does not report how many iterations it ran
        self.strategy_ = "falkon"
        return self

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.model_.predict(X.cpu())

    def _kernel(self, options):
        if self.kernel == "gaussian":
            return falkon.kernels.GaussianKernel(self.sigma, opt=options)
        if self.kernel == "laplacian":
            return falkon.kernels.LaplacianKernel(self.sigma, opt=options)
        return falkon.kernels.LinearKernel(opt=options)
