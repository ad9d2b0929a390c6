"""Standard benchmarks through torchvision.datasets, each a small subclass of ``TorchvisionDataset``.

Official train/test splits are used where torchvision has them (a validation split is folded into
train, since top-tuning has no early stopping to feed); datasets without one get a seeded stratified split.

Labels come from the list each torchvision class keeps (``targets``, ``_labels``, ``y`` or ``_samples``),
so reading them never decodes an image. A torchvision class exposing none of these would be iterated
once, decoding every image: correct but slow, so every class below has one of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from toptune.data import to_rgb
from toptune.errors import DatasetError
from toptune.params import Param
from toptune.protocols import DatasetSplits

from . import common as C

DATA_DIR_ENV = "TOPTUNE_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/toptune/data"


def default_root() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def source_params() -> dict[str, Param]:
    return {
        "root": Param("str", None, f"data folder (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})"),
        "download": Param("bool", True, "download the files when they are not in root"),
    }


def labels_of(ds: Any) -> np.ndarray:
    for attr in ("targets", "_labels", "y"):
        if hasattr(ds, attr):
            return np.asarray(getattr(ds, attr), dtype=np.int64)
    if hasattr(ds, "_samples"):
        return np.asarray([target for _, target in ds._samples], dtype=np.int64)
    return np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)


def image_paths(ds: Any) -> list | None:
    """The image file of every sample when the torchvision class keeps them, so sizes need no decoding."""
    for attr in ("_image_files", "_images"):
        if hasattr(ds, attr):
            return list(getattr(ds, attr))
    for attr in ("samples", "_samples"):
        if hasattr(ds, attr):
            return [path for path, _ in getattr(ds, attr)]
    return None


def classes_of(ds: Any, n_classes: int) -> list[str]:
    names = getattr(ds, "classes", None) or getattr(ds, "categories", None)
    return [str(c) for c in names] if names else [str(i) for i in range(n_classes)]


class TorchvisionSplit:
    """Several torchvision datasets seen as one (e.g. train + val), optionally restricted to ``indices``."""

    def __init__(self, parts: list, indices: np.ndarray | None = None):
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        every = np.concatenate([labels_of(p) for p in parts])
        self.indices = np.arange(len(every)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.labels = every[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def locate(self, index: int) -> tuple[Any, int]:
        """The part holding sample ``index`` of this split, and the sample's position in that part."""
        flat = int(self.indices[index])
        part = int(np.searchsorted(self.offsets, flat, side="right")) - 1
        return self.parts[part], flat - int(self.offsets[part])

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        part, j = self.locate(index)
        img = to_rgb(part[j][0])
        img.load()  # decode now so a broken file raises here; Pillow also closes the file it opened
        return img, int(self.labels[index])

    def image_hw(self, index: int) -> tuple[int, int]:
        part, j = self.locate(index)
        paths = image_paths(part)
        if paths is None:
            with part[j][0] as img:  # e.g. Caltech101 hands back a lazily opened file: close it
                return img.height, img.width
        with Image.open(paths[j]) as img:  # header only
            return img.height, img.width

    def mean_image_size(self) -> list[float] | None:
        arrays = [getattr(p, "data", None) for p in self.parts]
        if all(isinstance(a, np.ndarray) and a.ndim == 4 for a in arrays):  # in-memory NHWC, e.g. CIFAR
            return [float(arrays[0].shape[1]), float(arrays[0].shape[2])]
        return C.mean_size(len(self), self.image_hw)


class TorchvisionDataset:
    """Base class: a subclass names the torchvision class and the constructor arguments of each split."""

    api_version = 1
    description = "a torchvision dataset"
    params = source_params()
    # `toptune plugins check` uses data already on disk and reports the others as needing data.
    check_params = {"download": False}
    name: ClassVar[str]
    tv_class: ClassVar[str]  # attribute of torchvision.datasets
    train_parts: ClassVar[tuple[dict, ...]] = ({},)
    # Empty: no official test split, so train_parts is split here with test_size / split_seed.
    test_parts: ClassVar[tuple[dict, ...]] = ()

    # Set by the datasets split here (``_SplitHere``); official splits have none.
    test_size: float | None = None
    split_seed: int | None = None

    def __init__(self, root: str | None = None, download: bool = True):
        self.root = root
        self.download = download

    def data_root(self) -> Path:
        return Path(self.root).expanduser() if self.root else default_root()

    def load(self) -> DatasetSplits:
        root = self.data_root()
        train, test = self._splits(root)
        classes = classes_of(train.parts[0], int(max(train.labels.max(), test.labels.max())) + 1)
        info = {"mean_image_size": train.mean_image_size(), "root": str(root),
                **C.split_info(train.labels, test.labels, classes)}
        return DatasetSplits(train=train, test=test, classes=classes, info=info)

    def _splits(self, root: Path) -> tuple[TorchvisionSplit, TorchvisionSplit]:
        train_parts = [self._open(root, kwargs) for kwargs in self.train_parts]
        if self.test_parts:
            test_parts = [self._open(root, kwargs) for kwargs in self.test_parts]
            return TorchvisionSplit(train_parts), TorchvisionSplit(test_parts)
        labels = TorchvisionSplit(train_parts).labels
        train, test = C.stratified_split(labels, self.test_size, self.split_seed)
        return TorchvisionSplit(train_parts, train), TorchvisionSplit(train_parts, test)

    def _open(self, root: Path, kwargs: dict) -> Any:
        import torchvision.datasets  # slow to import, so only when data is really loaded

        cls = getattr(torchvision.datasets, self.tv_class)
        # Files already there load without download=True, which would re-verify checksums and could
        # touch the network for nothing.
        try:
            return cls(str(root), download=False, **kwargs)
        except Exception as exc:
            if not self.download:
                raise self._missing(root, f"download=False; torchvision: {exc}") from exc
        try:
            return cls(str(root), download=True, **kwargs)
        except Exception as exc:  # network, checksum, archive or layout failures all end the same way
            raise self._missing(root, f"{type(exc).__name__}: {exc}") from exc

    def _missing(self, root: Path, reason: str) -> DatasetError:
        return DatasetError(
            f"dataset '{self.name}' is not in {root} and could not be downloaded ({reason}); "
            "connect to the internet or place the files there (torchvision layout)"
        )

    def fingerprint(self) -> str:
        # These are fixed public releases (CIFAR's files are even md5-checked), so the name and split
        # identify the images; the root is left out because the same release anywhere is the same data.
        split = None if self.test_parts else [self.test_size, self.split_seed, C.SPLIT_ALGORITHM]
        return C.digest("torchvision", self.name, self.tv_class, self.train_parts, self.test_parts, split)


class _SplitHere(TorchvisionDataset):
    params = {**source_params(), **C.split_params()}

    def __init__(self, root: str | None = None, download: bool = True, test_size: float = 0.25, split_seed: int = 0):
        super().__init__(root, download)
        self.test_size = test_size
        self.split_seed = split_seed


def _dataset(name: str, tv_class: str, description: str, train_parts: tuple, test_parts: tuple = ()) -> type:
    """One torchvision dataset as a plugin class; without ``test_parts`` it is split here (test_size, split_seed)."""
    base = TorchvisionDataset if test_parts else _SplitHere
    return type(tv_class, (base,), {"name": name, "tv_class": tv_class, "description": description,
                                     "train_parts": train_parts, "test_parts": test_parts, "__module__": __name__})


TRAIN, TEST = ({"train": True},), ({"train": False},)
CIFAR10 = _dataset("cifar10", "CIFAR10", "CIFAR-10: 60,000 32x32 images, 10 classes, official 50k/10k split",
                   TRAIN, TEST)
CIFAR100 = _dataset("cifar100", "CIFAR100",
                    "CIFAR-100: 60,000 32x32 images, 100 fine classes, official 50k/10k split", TRAIN, TEST)
Flowers102 = _dataset("flowers102", "Flowers102",
                      "Oxford Flowers-102: 8,189 images, 102 classes, official train+val / test split",
                      ({"split": "train"}, {"split": "val"}), ({"split": "test"},))
OxfordPets = _dataset("oxford_pets", "OxfordIIITPet",
                      "Oxford-IIIT Pet: 7,349 images, 37 breeds, official trainval / test split",
                      ({"split": "trainval"},), ({"split": "test"},))
DTD = _dataset("dtd", "DTD",
               "Describable Textures: 5,640 images, 47 classes, official train+val / test split (partition 1)",
               ({"split": "train"}, {"split": "val"}), ({"split": "test"},))
EuroSAT = _dataset("eurosat", "EuroSAT",
                   "EuroSAT RGB: 27,000 64x64 satellite images, 10 classes, seeded stratified split", ({},))
Caltech101 = _dataset("caltech101", "Caltech101",
                      "Caltech-101: 8,677 images, 101 classes (no background), seeded stratified split", ({},))
StanfordCars = _dataset("stanford_cars", "StanfordCars",
                        "Stanford Cars: 16,185 images, 196 classes, official split (manual download only)",
                        ({"split": "train"},), ({"split": "test"},))
FGVCAircraft = _dataset("fgvc_aircraft", "FGVCAircraft",
                        "FGVC-Aircraft: 10,000 images, 100 variants, official trainval / test split",
                        ({"split": "trainval"},), ({"split": "test"},))
Food101 = _dataset("food101", "Food101", "Food-101: 101,000 images, 101 classes, official 75,750 / 25,250 split",
                   ({"split": "train"},), ({"split": "test"},))
