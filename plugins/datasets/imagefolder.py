"""A folder of images, one sub-folder per class, either pre-split (train/ + val/ or test/) or split here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from toptune.data import to_rgb
from toptune.errors import DatasetError
from toptune.params import Param
from toptune.protocols import DatasetSplits

from . import common as C

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
HELD_OUT_FOLDERS = ("test", "val")  # the first one present is the test split


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _visible(name: str) -> bool:
    # .git, .ipynb_checkpoints & co. are tool droppings, never classes
    return not name.startswith(".")


class FileSplit:
    """Image files under ``root``; decoded only when indexed."""

    def __init__(self, root: str, paths: list[str], labels: list[int]):
        self.root = root
        self.paths = paths
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        with Image.open(os.path.join(self.root, self.paths[index])) as img:
            # Decoding everything here makes a truncated file raise now, not later inside a transform.
            img.load()
            rgb = to_rgb(img)
            if rgb is img:
                rgb = img.copy()  # the file closes on leaving the block; keep a detached copy
        return rgb, int(self.labels[index])


@dataclass
class Tree:
    """Relative image paths of one class-per-folder tree, by class name."""

    images: dict[str, list[str]]
    ignored: int = 0


@dataclass
class Scan:
    layout: str  # "split" (flat tree, split here) or "train/test" / "train/val"
    train: Tree
    test: Tree | None = None
    ignored: int = 0
    unused_folders: list[str] = field(default_factory=list)

    def all_paths(self) -> list[str]:
        trees = [self.train] + ([self.test] if self.test else [])
        return sorted(p for tree in trees for paths in tree.images.values() for p in paths)

    def ignored_files(self) -> int:
        return self.ignored + self.train.ignored + (self.test.ignored if self.test else 0)


def _walk_class(root: Path, folder: Path) -> tuple[list[str], int]:
    """Relative paths of the images anywhere under ``folder`` and the number of other files."""
    images, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        for name in sorted(filenames):
            if is_image(name):
                images.append(os.path.relpath(os.path.join(dirpath, name), root))
            else:
                ignored += 1
    if not images:
        raise DatasetError(
            f"imagefolder class folder '{folder}' has no images ({' '.join(IMAGE_EXTENSIONS)}); "
            "add images or remove the folder"
        )
    return images, ignored


def _entries(folder: Path) -> tuple[list[str], int]:
    """Visible sub-folder names (sorted) and the number of plain files directly in ``folder``."""
    dirs, files = [], 0
    for entry in os.scandir(folder):
        if entry.is_dir():
            if _visible(entry.name):
                dirs.append(entry.name)
        else:
            files += 1
    return sorted(dirs), files


def _scan_tree(root: Path, tree: Path) -> Tree:
    classes, loose_files = _entries(tree)
    if not classes:
        raise DatasetError(
            f"imagefolder path '{tree}' has no class folders; expected {tree}/<class name>/<image files>"
        )
    result = Tree(images={}, ignored=loose_files)
    for name in classes:
        result.images[name], ignored = _walk_class(root, tree / name)
        result.ignored += ignored
    return result


def _check_path(path: str | None) -> Path:
    if not path:
        raise DatasetError("imagefolder needs --param path=DIR")
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"imagefolder path '{root}' does not exist; check --param path=DIR")
    if not root.is_dir():
        raise DatasetError(f"imagefolder path '{root}' is not a directory; point --param path at a folder")
    return root


def _scan_presplit(root: Path, dirs: list[str], files: int) -> Scan:
    held = next((name for name in HELD_OUT_FOLDERS if name in dirs), None)
    if held is None:
        raise DatasetError(
            f"imagefolder path '{root}' has train/ but no val/ or test/ folder; add one, "
            "or put the class folders directly in the path to have them split with test_size"
        )
    train, test = _scan_tree(root, root / "train"), _scan_tree(root, root / held)
    _check_same_classes(train, test, held)
    unused = [d for d in dirs if d not in ("train", held)]
    return Scan(f"train/{held}", train, test, ignored=files, unused_folders=unused)


def _check_same_classes(train: Tree, test: Tree, held: str) -> None:
    only_train = sorted(set(train.images) - set(test.images))
    only_test = sorted(set(test.images) - set(train.images))
    if only_train or only_test:
        raise DatasetError(
            f"imagefolder train/ and {held}/ must hold the same class folders: only in train/: "
            f"{', '.join(only_train) or '-'}; only in {held}/: {', '.join(only_test) or '-'}"
        )


def _scan_flat(root: Path) -> Scan:
    tree = _scan_tree(root, root)
    if len(tree.images) < 2:
        raise DatasetError(
            f"imagefolder path '{root}' has only 1 class folder ('{next(iter(tree.images))}'); "
            "a classifier needs at least 2"
        )
    for name, paths in tree.images.items():
        if len(paths) < 2:
            raise DatasetError(
                f"imagefolder class '{name}' has only 1 image; the stratified split needs at least 2 per class "
                "(add images, or provide train/ and val/ folders)"
            )
    return Scan("split", tree)


def scan(path: str | None) -> Scan:
    root = _check_path(path)
    dirs, files = _entries(root)
    if "train" in dirs:
        return _scan_presplit(root, dirs, files)
    return _scan_flat(root)


def _flatten(tree: Tree, classes: list[str]) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        paths += tree.images[name]
        labels += [label] * len(tree.images[name])
    return paths, labels


def _image_hw(path: str) -> tuple[int, int]:
    with Image.open(path) as img:  # reads the header only
        return img.height, img.width


class ImageFolderDataset:
    api_version = 1
    description = "images in class-per-folder trees: train/ + val/ (or test/), or one tree split by test_size"
    params = {
        "path": Param("str", None, "folder holding <class>/<images>, or train/ and val/ (or test/) trees"),
        **C.split_params(),
    }

    def __init__(self, path: str | None = None, test_size: float = 0.25, split_seed: int = 0):
        self.path = path
        self.test_size = test_size
        self.split_seed = split_seed

    def load(self) -> DatasetSplits:
        found = scan(self.path)
        root = str(Path(self.path).expanduser())
        classes = sorted(found.train.images)
        train, test = self._splits(found, classes, root)
        info = {
            "layout": found.layout,
            "mean_image_size": self._mean_size(root, found),
            "ignored_files": found.ignored_files(),
            **C.split_info(train.labels, test.labels, classes),
        }
        if found.unused_folders:
            info["unused_folders"] = found.unused_folders
        return DatasetSplits(train=train, test=test, classes=classes, info=info)

    def _splits(self, found: Scan, classes: list[str], root: str) -> tuple[FileSplit, FileSplit]:
        if found.test is not None:
            return FileSplit(root, *_flatten(found.train, classes)), FileSplit(root, *_flatten(found.test, classes))
        paths, labels = _flatten(found.train, classes)
        labels = np.asarray(labels, dtype=np.int64)
        train, test = C.stratified_split(labels, self.test_size, self.split_seed)
        return (
            FileSplit(root, [paths[i] for i in train], labels[train].tolist()),
            FileSplit(root, [paths[i] for i in test], labels[test].tolist()),
        )

    @staticmethod
    def _mean_size(root: str, found: Scan) -> list[float] | None:
        paths = found.all_paths()
        return C.mean_size(len(paths), lambda i: _image_hw(os.path.join(root, paths[i])))

    def fingerprint(self) -> str:
        found = scan(self.path)
        root = Path(self.path).expanduser()
        files = []
        for rel in found.all_paths():
            stat = (root / rel).stat()
            files.append([rel, stat.st_size, stat.st_mtime_ns])
        split = [self.test_size, self.split_seed, C.SPLIT_ALGORITHM] if found.layout == "split" else None
        return C.digest("imagefolder", found.layout, files, split)
