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
from toptune.progress import current
from toptune.protocols import DatasetSplits

from . import common as C

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
HELD_OUT_FOLDERS = ("test", "val")  # the first one present is the test split
SHOWN_SKIPPED = 20  # entries of the skipped list kept in a run's info (the count is kept whole)


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
        path = os.path.join(self.root, self.paths[index])
        with Image.open(path) as img:
            # Decoding everything here makes a truncated file raise now, not later inside a transform; a PNG
            # that lost its end decodes without complaint, so its end is checked too.
            img.load()
            C.check_complete(path, img.format)
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
    skipped: list[str] = field(default_factory=list)  # "relative path: why" for every link or duplicate left out

    def all_paths(self) -> list[str]:
        trees = [self.train] + ([self.test] if self.test else [])
        return sorted(p for tree in trees for paths in tree.images.values() for p in paths)

    def ignored_files(self) -> int:
        return self.ignored + self.train.ignored + (self.test.ignored if self.test else 0)


class Walk:
    """One scan of a dataset folder, so that every image file counts once, under one class, and nothing loops.

    Folders are walked without following links first, so every file that really lives in a class folder is
    claimed there. Links come after, in the order they were found: one to a folder walks it unless that folder
    (by its resolved path) was walked already, which ends loops and duplicate classes; one to a file adds it
    unless its resolved path is claimed already (by another class, or the other split). Links that lead
    outside the dataset folder are skipped unless ``follow_links``. Every link or file left out is recorded.
    """

    def __init__(self, root: Path, follow_links: bool):
        self.root, self.follow_links = root, follow_links
        self.real_root = os.path.realpath(root)
        self.walked: set[str] = set()  # resolved folders
        self.claims: dict[str, str] = {}  # resolved image file -> the relative path it counts under
        self.links: list[tuple[str, Tree, str]] = []  # (link path, its tree, its class) still to follow
        self.skipped: list[str] = []

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def skip(self, path: str, why: str) -> None:
        self.skipped.append(f"{self.rel(path)}: {why}")

    def inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root.rstrip(os.sep) + os.sep)

    def folder(self, path: str, tree: Tree, name: str) -> None:
        """Every image under ``path`` (a folder reached without a link, or a link's target) for class ``name``."""
        stack = [path]
        while stack:
            here = stack.pop()
            real = os.path.realpath(here)
            if real in self.walked:
                self.skip(here, "a link to a folder already walked (a loop, or the same folder twice)")
                continue
            self.walked.add(real)
            try:
                entries = sorted(os.scandir(here), key=lambda e: e.name)
            except OSError as exc:
                self.skip(here, f"cannot be read ({exc.strerror or exc})")
                continue
            subfolders = []
            for entry in entries:
                if not _visible(entry.name):
                    continue
                if entry.is_symlink():
                    self.links.append((entry.path, tree, name))
                elif entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and is_image(entry.name):
                    self.add(entry.path, tree, name)
                else:
                    tree.ignored += 1
            stack.extend(reversed(subfolders))  # depth first, in name order, files of a folder first

    def add(self, path: str, tree: Tree, name: str) -> None:
        real = os.path.realpath(path)
        if real in self.claims:
            self.skip(path, f"the same file as {self.claims[real]}, which counts instead")
            return
        self.claims[real] = self.rel(path)
        tree.images.setdefault(name, []).append(self.rel(path))

    def follow(self) -> None:
        """Follow the links found so far, and those found behind them, in order."""
        while self.links:
            path, tree, name = self.links.pop(0)
            real = os.path.realpath(path)
            if not os.path.exists(real):
                self.skip(path, "a broken link")
            elif not self.inside(real) and not self.follow_links:
                self.skip(path, "a link leading outside the dataset folder (follow_links=true follows it)")
            elif os.path.isdir(real):
                self.folder(path, tree, name)
            elif is_image(path) or is_image(real):
                self.add(path, tree, name)
            else:
                tree.ignored += 1


def _entries(folder: Path) -> tuple[list[str], int]:
    """Visible sub-folder names (sorted; links to folders included) and the number of other entries in ``folder``."""
    dirs, files = [], 0
    for entry in os.scandir(folder):
        if entry.is_dir():
            if _visible(entry.name):
                dirs.append(entry.name)
        else:
            files += 1
    return sorted(dirs), files


def _scan_tree(walk: Walk, tree_path: Path) -> Tree:
    classes, loose_files = _entries(tree_path)
    if not classes:
        raise DatasetError(
            f"imagefolder path '{tree_path}' has no class folders; expected {tree_path}/<class name>/<image files>"
        )
    result = Tree(images={}, ignored=loose_files)
    for name in classes:
        folder = tree_path / name
        if folder.is_symlink():
            walk.links.append((str(folder), result, name))
        else:
            walk.folder(str(folder), result, name)
    return result


def _check_classes(walk: Walk, tree: Tree, tree_path: Path, classes: list[str]) -> None:
    """A real class folder must hold images; a linked one that added none (all duplicates) is dropped."""
    for name in classes:
        if tree.images.get(name):
            continue
        tree.images.pop(name, None)
        folder = tree_path / name
        if folder.is_symlink():
            if not any(line.startswith(f"{walk.rel(str(folder))}: ") for line in walk.skipped):
                walk.skip(str(folder), "a class folder that adds no image of its own (its files count elsewhere)")
            continue
        raise DatasetError(
            f"imagefolder class folder '{folder}' has no images ({' '.join(IMAGE_EXTENSIONS)}); "
            "add images or remove the folder"
        )
    order = {name: i for i, name in enumerate(classes)}
    tree.images = dict(sorted(tree.images.items(), key=lambda item: order[item[0]]))


def _check_path(path: str | None) -> Path:
    if not path:
        raise DatasetError("imagefolder needs --param path=DIR")
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"imagefolder path '{root}' does not exist; check --param path=DIR")
    if not root.is_dir():
        raise DatasetError(f"imagefolder path '{root}' is not a directory; point --param path at a folder")
    return root


def _walk_trees(walk: Walk, trees: list[Path]) -> list[Tree]:
    """Each tree's images (its class folders, then every link), then each class checked."""
    for tree in trees:
        if not walk.follow_links and not walk.inside(os.path.realpath(tree)):
            raise DatasetError(f"imagefolder folder '{tree}' is a link leading outside '{walk.root}'; "
                               "use --param follow_links=true to read it")
    walk.walked |= {walk.real_root, *(os.path.realpath(t) for t in trees)}  # a link up to them is a loop
    found = [_scan_tree(walk, t) for t in trees]
    walk.follow()
    for tree_path, tree in zip(trees, found):
        _check_classes(walk, tree, tree_path, _entries(tree_path)[0])
    return found


def _scan_presplit(walk: Walk, dirs: list[str], files: int) -> Scan:
    root = walk.root
    held = next((name for name in HELD_OUT_FOLDERS if name in dirs), None)
    if held is None:
        raise DatasetError(
            f"imagefolder path '{root}' has train/ but no val/ or test/ folder; add one, "
            "or put the class folders directly in the path to have them split with test_size"
        )
    train, test = _walk_trees(walk, [root / "train", root / held])
    _check_same_classes(train, test, held)
    unused = [d for d in dirs if d not in ("train", held)]
    return Scan(f"train/{held}", train, test, ignored=files, unused_folders=unused, skipped=walk.skipped)


def _check_same_classes(train: Tree, test: Tree, held: str) -> None:
    only_train = sorted(set(train.images) - set(test.images))
    only_test = sorted(set(test.images) - set(train.images))
    if only_train or only_test:
        raise DatasetError(
            f"imagefolder train/ and {held}/ must hold the same class folders: only in train/: "
            f"{', '.join(only_train) or '-'}; only in {held}/: {', '.join(only_test) or '-'}"
        )


def _scan_flat(walk: Walk) -> Scan:
    root = walk.root
    (tree,) = _walk_trees(walk, [root])
    if len(tree.images) < 2:
        count = len(tree.images)
        named = f" ({next(iter(tree.images))!r})" if tree.images else ""
        left_out = f" ({len(walk.skipped)} left out, e.g. {walk.skipped[0]})" if walk.skipped else ""
        raise DatasetError(
            f"imagefolder path '{root}' has only {count} class folder{'' if count == 1 else 's'}{named}; "
            f"a classifier needs at least 2{left_out}"
        )
    for name, paths in tree.images.items():
        if len(paths) < 2:
            raise DatasetError(
                f"imagefolder class '{name}' has only 1 image; the stratified split needs at least 2 per class "
                "(add images, or provide train/ and val/ folders)"
            )
    return Scan("split", tree, skipped=walk.skipped)


def scan(path: str | None, follow_links: bool = False) -> Scan:
    root = _check_path(path)
    walk = Walk(root, follow_links)
    dirs, files = _entries(root)
    if "train" in dirs:
        return _scan_presplit(walk, dirs, files)
    return _scan_flat(walk)


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
        "path": Param("str", None, "folder holding <class>/<images>, or train/ and val/ (or test/) trees",
                      required=True),
        "follow_links": Param("bool", False, "follow symbolic links that lead outside the folder (links inside it "
                                             "are followed; every image file counts once, under one class)"),
        **C.split_params(),
    }

    def __init__(self, path: str | None = None, test_size: float = 0.25, split_seed: int = 0,
                 follow_links: bool = False):
        self.path = path
        self.test_size = test_size
        self.split_seed = split_seed
        self.follow_links = follow_links

    def check(self) -> None:
        """Cheap checks before a run is recorded: the folder exists and is a folder."""
        _check_path(self.path)

    def load(self) -> DatasetSplits:
        found = scan(self.path, self.follow_links)
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
        if found.skipped:
            info["skipped"] = found.skipped[:SHOWN_SKIPPED]
            info["skipped_count"] = len(found.skipped)
            current().note(f"imagefolder: {len(found.skipped)} link(s) or duplicate file(s) left out, e.g. "
                           f"{found.skipped[0]} (the run's info lists them)")
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
        found = scan(self.path, self.follow_links)
        root = Path(self.path).expanduser()
        files = []
        for rel in found.all_paths():
            stat = (root / rel).stat()
            files.append([rel, stat.st_size, stat.st_mtime_ns])
        split = [self.test_size, self.split_seed, C.SPLIT_ALGORITHM] if found.layout == "split" else None
        return C.digest("imagefolder", found.layout, files, split)
