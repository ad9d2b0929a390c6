"""A saved model on disk: ``model.json`` (what it is, as plain JSON) and named tensors in ``.safetensors`` files.

Nothing is pickled and nothing stored is executed: loading reads JSON and raw tensors, then rebuilds the
network through the installed plugins. The folder is written under a temporary name and renamed, so a
crash never leaves half a model where a whole one is expected.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

FORMAT = "toptune-model"
VERSION = 1
MANIFEST = "model.json"


@dataclass
class ModelFiles:
    """``manifest``: JSON-able description; ``tensors``: file stem -> {name: array}, one safetensors file each."""

    manifest: dict
    tensors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.manifest["method"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])


def write(folder: str | os.PathLike, files: ModelFiles) -> int:
    """Write a model folder atomically; returns its size in bytes."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = {**files.manifest, "format": FORMAT, "version": VERSION, "files": sorted(files.tensors)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        for stem, arrays in files.tensors.items():
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / f"{stem}.safetensors"))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return size(folder)


def read(folder: str | os.PathLike) -> ModelFiles:
    """A model folder back, checked: a missing, damaged or newer-format file is a ``ModelError`` naming it."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(f"no saved model in {folder} (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"the model file {path} is damaged ({type(exc).__name__}); run the experiment again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path} is not a toptune model")
    if int(manifest.get("version", 0)) > VERSION:
        raise ModelError(f"the model in {folder} was saved by a newer toptune (format v{manifest['version']}); "
                         "upgrade toptune")
    tensors = {}
    for stem in manifest.get("files", []):
        tensor_path = folder / f"{stem}.safetensors"
        try:
            tensors[stem] = load_file(str(tensor_path))
        except Exception as exc:  # missing, truncated, or not safetensors at all
            raise ModelError(f"the model file {tensor_path} is missing or damaged "
                             f"({type(exc).__name__}); run the experiment again") from None
    return ModelFiles(manifest, tensors)


def size(folder: str | os.PathLike) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist)."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
