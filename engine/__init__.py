"""toptune: fine-tune or top-tune? Measure it."""

import os

__version__ = "0.1.0"

# Large tensors on transparent huge pages: on Linux, first touching a fresh 450 MB kernel matrix in 4 KiB
# pages cost 0.1-0.7 s per solve (2-core VM), a quarter of a whole Falkon fit. torch reads the switch once,
# at its first allocation, so it only takes effect when toptune is imported before torch; setting
# THP_MEM_ALLOC_ENABLE=0 beforehand keeps the default pages.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
