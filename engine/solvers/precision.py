"""Floating-point precision of a solve: its dtype, the mode of its float32 matrix products, and its λ floor.

Matrix products in float32 may run in oneDNN's bf16 mode (``matmul``): on CPUs with native bf16 dot
products (AVX512-BF16, AMX) it splits each float32 operand into bf16 parts and accumulates in float32, so
its round-off stays at float32's order (relative error 1e-6 against 2e-6 for MKL's sgemm on K_nM·V,
measured on 2 Zen 4 cores) while kernel blocks form 2.4× and the conjugate-gradient products 3–6× faster.
``auto`` uses it wherever that hardware is present and a measured product confirms that accuracy
(``bf16_dot_products``); float64, CUDA and other CPUs always run IEEE products.
"""

from __future__ import annotations

import functools
import threading
from contextlib import AbstractContextManager, nullcontext

import torch

__all__ = ["DTYPES", "MATMULS", "bf16_dot_products", "bf16_mode_error", "cpu_capabilities", "lambda_floor",
           "matmul_precision", "resolve_dtype", "resolve_matmul"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
MATMULS = ("auto", "ieee", "bf16")
# Split-bf16 products err about 1e-6 relative, plain bf16 ones about 2e-3: the bf16 mode must beat this.
_SPLIT_BF16_ERROR = 1e-5


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def cpu_capabilities() -> dict:
    """The CPU's instruction-set features as torch sees them (e.g. ``avx512_bf16``, ``amx_bf16``); empty if unknown."""
    try:
        return dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, RuntimeError):  # private API: a torch without it simply gets IEEE products
        return {}


@functools.cache  # the CPU does not change while the process runs
def bf16_dot_products() -> bool:
    """Whether oneDNN's bf16 mode for float32 products keeps float32-level accuracy on this CPU.

    On CPUs with AVX512-BF16 (Zen 4) oneDNN splits each float32 operand into bf16 parts (relative error
    1e-6), but on CPUs with AMX (Sapphire Rapids and later) the same setting runs plain bf16 products
    (2e-3), which breaks solves with a small λ: digits pixels then score 0.29 instead of 0.98. So the mode
    is measured, not assumed: one small product against float64 (``bf16_mode_error``), once per process.
    """
    capability = cpu_capabilities()
    if not (torch.backends.mkldnn.is_available() and (capability.get("avx512_bf16") or capability.get("amx_bf16"))):
        return False
    return bf16_mode_error() < _SPLIT_BF16_ERROR


def bf16_mode_error() -> float:
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


class _SharedBf16Mode(AbstractContextManager):
    """oneDNN's bf16 mode for float32 products, held by every solve inside it at once.

    The setting is process-wide, so concurrent solves share it: the first to enter switches it on and
    remembers torch's setting, the last to leave restores that.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._before = None

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._before = torch.backends.mkldnn.matmul.fp32_precision
                torch.backends.mkldnn.matmul.fp32_precision = "bf16"
            self._users += 1
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                torch.backends.mkldnn.matmul.fp32_precision = self._before


_BF16_MODE = _SharedBf16Mode()


def matmul_precision(mode: str) -> AbstractContextManager:
    """Run float32 matrix products in ``mode`` ('ieee' leaves torch's setting alone) within the block.

    The setting is process-wide: concurrent solves share it, and the first to enter restores it last out.
    """
    return _BF16_MODE if mode == "bf16" else nullcontext()


def lambda_floor(dtype: torch.dtype) -> float:
    """The smallest λ the solver uses in ``dtype``: smaller values, 0 included, are raised to it.

    Falkon's preconditioner makes the data term of the solved system of order 1, so a penalty below the
    precision's epsilon is numerically zero there; and without a penalty a singular K_MM (duplicated
    points, the linear kernel with M > d) leaves directions in which CG amplifies round-off without bound.
    """
    return float(torch.finfo(dtype).eps)
