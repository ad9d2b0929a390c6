"""Memory budgets of a solve, from the free memory of the device it runs on.

They decide how many kernel rows are formed at once, whether K_nM is kept between conjugate-gradient
iterations, and the largest default number of centres. Fractions leave room for the caller's own arrays
(features, predictions) and for the allocator's fragmentation.
"""

from __future__ import annotations

import math

import torch

# One kernel block: large enough that matrix products run at full speed (GPUs need far more rows than
# CPUs for that), small enough to stay in cache for the passes after the product and never to compete
# with stored matrices (2 Zen 4 cores, bf16-mode products: a 50,000 x 2,240 K_nM in 1,024-row blocks
# 0.85 s, in 4,096-row ones 0.98 s).
_BLOCK_FRACTION = 1 / 16
_BLOCK_BYTES = {"cpu": (2**20, 2**25), "cuda": (2**24, 2**30)}  # (floor, cap)
_STORE_FRACTION = 0.4  # K_nM may take this share of free memory
_SQUARE_FRACTION = 0.25  # the M×M matrices of the preconditioner (about four of them) share this
_SQUARES = 4
# Falkon needs about √n·log n centres for the statistical rate; 10·√n is that for realistic n.
_M_PER_ROOT_N = 10
# Below n = 10,000 the √n rule leaves accuracy on the table for no real saving: M = 1,000 costs a
# fraction of a second on 2 cores (digits features, n = 1,347: M = 370 scored 0.924, M = 1,000 0.933).
_MIN_CENTRES = 1000


def free_bytes(device: torch.device) -> int:
    """Memory a solve can still allocate on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # Blocks cached by torch's allocator are free for torch even though the driver counts them as used.
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    import psutil

    return int(psutil.virtual_memory().available)


def block_rows(row_bytes: int, device: torch.device, free: int | None = None) -> int:
    """Rows per block when each row of a block costs ``row_bytes`` (the kernel row and its temporaries)."""
    floor, cap = _BLOCK_BYTES.get(device.type, _BLOCK_BYTES["cpu"])
    free = free_bytes(device) if free is None else free
    budget = min(max(free * _BLOCK_FRACTION, floor), cap)
    return max(1, int(budget // max(row_bytes, 1)))


def store_budget(device: torch.device, free: int | None = None) -> int:
    """Bytes that a stored K_nM may occupy."""
    return int((free_bytes(device) if free is None else free) * _STORE_FRACTION)


def max_centres(itemsize: int, device: torch.device, free: int | None = None) -> int:
    """The most centres whose M×M factorisations fit in memory."""
    free = free_bytes(device) if free is None else free
    return max(1, math.isqrt(int(free * _SQUARE_FRACTION / (_SQUARES * itemsize))))


def default_centres(n: int, itemsize: int, device: torch.device, free: int | None = None) -> int:
    """``min(n, max(1000, 10·⌈√n⌉))`` centres, fewer when their M×M matrices would not fit in memory."""
    wanted = min(n, max(_MIN_CENTRES, _M_PER_ROOT_N * math.ceil(math.sqrt(n))))
    return max(1, min(wanted, max_centres(itemsize, device, free)))
