"""Image folders with symbolic links: every image file counts once, under one class; links never loop, never
lead out of the dataset folder unless follow_links=true, and whatever is left out is listed."""

from __future__ import annotations

import os
import time

import pytest
from PIL import Image

from toptune.errors import DatasetError
from toptune.progress import Progress, reporting
from toptune.registry import create_dataset


def _images(folder, n, shade=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (shade, 10 * i, 0)).save(folder / f"{i}.png")
    return folder


def _load(path, **params):
    return create_dataset("imagefolder", path=str(path), **params).load()


def _everything(splits) -> list[tuple[str, str]]:
    """(real file, class name) of every image in both splits."""
    out = []
    for split in (splits.train, splits.test):
        out += [(os.path.realpath(os.path.join(split.root, p)), splits.classes[label])
                for p, label in zip(split.paths, split.labels)]
    return out


class Notes(Progress):
    def __init__(self):
        self.lines = []

    def note(self, text):
        self.lines.append(text)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    _images(root / "cat", 4, 50)
    _images(root / "dog", 4, 150)
    return root


def test_a_link_into_another_class_counts_the_image_once_under_its_own_class(tree):
    os.symlink(tree / "dog" / "0.png", tree / "cat" / "stolen.png")
    os.symlink(tree / "dog", tree / "cat" / "all-dogs")
    splits = _load(tree)
    found = _everything(splits)
    assert len(found) == 8 and len({f for f, _ in found}) == 8
    assert dict(found)[os.path.realpath(tree / "dog" / "0.png")] == "dog"
    assert splits.info["skipped_count"] == 2
    assert any(line.startswith("cat/stolen.png: the same file as dog/0.png") for line in splits.info["skipped"])


def test_link_loops_end_and_are_listed(tree):
    os.symlink("..", tree / "cat" / "up")
    os.symlink(".", tree / "dog" / "self")
    os.symlink(tree, tree / "dog" / "root")
    t0 = time.monotonic()
    splits = _load(tree)
    assert time.monotonic() - t0 < 10
    assert sorted(c for _, c in _everything(splits)) == ["cat"] * 4 + ["dog"] * 4
    assert {line.split(":")[0] for line in splits.info["skipped"]} == {"cat/up", "dog/self", "dog/root"}


def test_a_class_folder_that_links_to_another_is_left_out(tree):
    os.symlink(tree / "cat", tree / "kitty")
    splits = _load(tree)
    assert splits.classes == ["cat", "dog"] and len(_everything(splits)) == 8
    assert [line for line in splits.info["skipped"] if line.startswith("kitty:")]


def test_links_out_of_the_folder_need_follow_links(tree, tmp_path):
    outside = _images(tmp_path / "elsewhere", 3, 250)
    os.symlink(outside, tree / "cat" / "more")
    os.symlink(outside / "0.png", tree / "dog" / "one-more.png")
    kept = _load(tree)
    assert len(_everything(kept)) == 8
    assert all("outside the dataset folder" in line for line in kept.info["skipped"])
    followed = _load(tree, follow_links=True)
    found = _everything(followed)
    assert len(found) == 11 and len({f for f, _ in found}) == 11  # 0.png once, under cat (its folder came first)
    assert dict(found)[os.path.realpath(outside / "0.png")] == "cat"


def test_a_file_linked_from_train_into_test_is_not_in_both_splits(tmp_path):
    root = tmp_path / "data"
    for split in ("train", "val"):
        for name, shade in (("a", 10), ("b", 200)):
            _images(root / split / name, 2, shade + (split == "val"))
    os.symlink(root / "train" / "a" / "0.png", root / "val" / "a" / "leak.png")
    splits = _load(root)
    train = {os.path.realpath(os.path.join(root, p)) for p in splits.train.paths}
    test = {os.path.realpath(os.path.join(root, p)) for p in splits.test.paths}
    assert not train & test and len(train) == 4 and len(test) == 4
    assert splits.info["skipped"] == ["val/a/leak.png: the same file as train/a/0.png, which counts instead"]


def test_broken_links_are_listed_and_what_was_skipped_is_noted_once(tree):
    os.symlink(tree / "nowhere.png", tree / "cat" / "broken.png")
    notes = Notes()
    with reporting(notes):
        splits = _load(tree)
    assert splits.info["skipped"] == ["cat/broken.png: a broken link"]
    assert len(notes.lines) == 1 and "1 link(s) or duplicate file(s) left out" in notes.lines[0]


def test_a_tree_without_links_is_read_as_before(tree):
    splits = _load(tree)
    assert "skipped" not in splits.info and len(_everything(splits)) == 8
    assert create_dataset("imagefolder", path=str(tree)).fingerprint() == \
        create_dataset("imagefolder", path=str(tree)).fingerprint()


def test_a_split_folder_linked_from_outside_needs_follow_links(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    for name, shade in (("a", 10), ("b", 200)):
        _images(elsewhere / name, 2, shade)
    root = tmp_path / "data"
    for name, shade in (("a", 30), ("b", 220)):
        _images(root / "val" / name, 2, shade)
    os.symlink(elsewhere, root / "train")
    with pytest.raises(DatasetError, match="link leading outside"):
        _load(root)
    assert len(_load(root, follow_links=True).train) == 4
