"""What a model predicts on: image files, folders (recursive), globs, PIL images, numpy arrays or tensors.

Everything becomes one split of PIL images that the feature extractor decodes and transforms exactly as
it did the run's own images, so a run's test images predict as they did in the run.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from ..data import to_rgb
from ..errors import ParamError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _files(item: str | os.PathLike) -> list[str]:
    """The image files one path, folder or glob names, in a stable order."""
    text = str(item)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [str(p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not found:
            raise ParamError(f"no image files ({' '.join(IMAGE_EXTENSIONS)}) under the folder {path}")
        return found
    if path.is_file():
        return [str(path)]
    if any(c in text for c in "*?["):
        matches = sorted(p for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file())
        if not matches:
            raise ParamError(f"no file matches {text}")
        return matches
    raise ParamError(f"no such file or folder: {text}")


def _to_pil(item, index: int):
    from PIL import Image

    if isinstance(item, Image.Image):
        return to_rgb(item)
    torch = __import__("sys").modules.get("torch")
    if torch is not None and isinstance(item, torch.Tensor):
        item = item.detach().cpu()
        if item.ndim == 3 and item.shape[0] in (1, 3):  # C, H, W in [0, 1], torchvision's layout
            item = item.permute(1, 2, 0)
        item = item.numpy()
    if isinstance(item, np.ndarray):
        array = item
        if array.dtype != np.uint8:  # floats in [0, 1]
            array = np.clip(np.rint(np.asarray(array, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ParamError(f"image {index}: expected an (H, W), (H, W, 3) or (3, H, W) array, got {item.shape}")
        return to_rgb(Image.fromarray(array))
    raise ParamError(f"image {index}: cannot read a {type(item).__name__} as an image (give a path, a PIL "
                     "image, a numpy array or a tensor)")


class Inputs:
    """A split for the feature extractor: ``split[i]`` decodes item i; ``names[i]`` says which it was."""

    def __init__(self, items):
        if isinstance(items, (str, os.PathLike)) or not isinstance(items, (list, tuple)):
            items = [items]
        self.items, self.names = [], []
        for index, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                files = _files(item)
                self.items += files
                self.names += files
            else:
                self.items.append(item)
                self.names.append(f"<image {index}>")
        self.labels = np.zeros(len(self.items), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        if isinstance(item, str):
            from PIL import Image

            with Image.open(item) as img:
                img.load()  # a truncated file raises here, and is reported by name
                rgb = to_rgb(img)
                return (rgb if rgb is not img else img.copy()), 0
        return _to_pil(item, index), 0
