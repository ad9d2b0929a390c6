"""toptune: fine-tune or top-tune? Measure it.

The curated API: ``RunSpec`` and ``run`` / ``execute`` for experiments, ``Store`` for results,
``load_model`` for the model a run leaves, and the registry's ``create_*`` / ``list_*`` for plugins. Names are
imported on first use, so ``import toptune`` stays light.
"""

import os

__version__ = "0.1.0"

# Large tensors on transparent huge pages: on Linux, first touching a fresh 450 MB kernel matrix in 4 KiB
# pages cost 0.1-0.7 s per solve (2-core VM), a quarter of a whole Falkon fit. torch reads the switch once,
# at its first allocation, so it only takes effect when toptune is imported before torch; setting
# THP_MEM_ALLOC_ENABLE=0 beforehand keeps the default pages.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

_API = {
    "RunSpec": "spec", "run": "runner", "execute": "runner", "Store": "store", "load_model": "models",
    "create_backbone": "registry", "create_classifier": "registry", "create_dataset": "registry",
    "list_backbones": "registry", "list_classifiers": "registry", "list_datasets": "registry",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'toptune' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
