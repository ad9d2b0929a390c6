"""Dataset plugins: the bundled digits, image folders, and torchvision datasets without any network."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
from PIL import Image

from toptune import registry
from toptune.errors import DatasetError
from toptune.protocols import Dataset, DatasetSplits, ImageSplit
from toptune.registry import create_dataset

TV_NAMES = ["cifar10", "cifar100", "flowers102", "oxford_pets", "dtd", "eurosat", "caltech101",
            "stanford_cars", "fgvc_aircraft", "food101"]


def _is_rgb_pair(item) -> bool:
    img, label = item
    return isinstance(img, Image.Image) and img.mode == "RGB" and isinstance(label, int)


def test_every_dataset_plugin_loads_and_satisfies_the_interface():
    statuses = {s.info.name: s for s in registry.check("dataset")}
    for name in ["digits", "imagefolder", *TV_NAMES]:
        assert statuses[name].ok, statuses[name].error


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return create_dataset("digits").load()


def test_digits_sizes_and_classes(digits):
    assert isinstance(create_dataset("digits"), Dataset)
    assert isinstance(digits.train, ImageSplit) and isinstance(digits.test, ImageSplit)
    assert len(digits.train) + len(digits.test) == 1797
    assert list(digits.classes) == [str(d) for d in range(10)]
    assert digits.info["mean_image_size"] == [8.0, 8.0]
    assert digits.info["n_test"] == len(digits.test)
    assert 0.23 < len(digits.test) / 1797 < 0.27


def test_digits_split_is_stratified(digits):
    assert digits.train.labels.dtype == np.int64
    assert set(digits.train.labels) == set(digits.test.labels) == set(range(10))
    ratios = np.bincount(digits.test.labels) / (np.bincount(digits.test.labels) + np.bincount(digits.train.labels))
    assert np.all(np.abs(ratios - 0.25) < 0.02)


def test_digits_images_are_8x8_rgb_scaled_to_255(digits):
    img, label = digits.train[0]
    assert _is_rgb_pair((img, label)) and img.size == (8, 8) and label == digits.train.labels[0]
    pixels = np.stack([np.asarray(digits.train[i][0]) for i in range(50)])
    assert pixels.dtype == np.uint8 and pixels.max() == 255 and pixels.min() == 0


def _test_pixels(splits: DatasetSplits) -> np.ndarray:
    return np.stack([np.asarray(splits.test[i][0]) for i in range(len(splits.test))])


def test_digits_split_is_fixed_and_follows_split_params(digits):
    again = create_dataset("digits").load()
    assert np.array_equal(_test_pixels(again), _test_pixels(digits))
    assert np.array_equal(again.test.labels, digits.test.labels)
    other = create_dataset("digits", split_seed=1).load()
    assert not np.array_equal(_test_pixels(other), _test_pixels(digits))
    smaller = create_dataset("digits", test_size="0.1").load()
    assert len(smaller.test) < len(digits.test)


def test_digits_fingerprint_is_stable_and_tracks_split_params():
    base = create_dataset("digits").fingerprint()
    assert base == create_dataset("digits").fingerprint()
    assert int(base, 16) >= 0 and len(base) <= 64
    assert create_dataset("digits", split_seed=1).fingerprint() != base
    assert create_dataset("digits", test_size=0.3).fingerprint() != base


# ---------------------------------------------------------------- imagefolder


def _png(path, size=(6, 4), mode="RGB", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def _tree(root, counts: dict[str, int], size=(6, 4)):
    for name, n in counts.items():
        for i in range(n):
            _png(root / name / f"img{i}.png", size=size, value=(i * 20, 0, 0))
    return root


def _imagefolder(path, **params):
    return create_dataset("imagefolder", path=str(path), **params)


def test_imagefolder_flat_tree_is_split_per_class(tmp_path):
    _tree(tmp_path, {"cat": 8, "dog": 4, "eel": 2}, size=(6, 4))
    splits = _imagefolder(tmp_path).load()
    assert list(splits.classes) == ["cat", "dog", "eel"]
    assert len(splits.train) + len(splits.test) == 14
    assert set(splits.train.labels) == set(splits.test.labels) == {0, 1, 2}
    assert splits.info["layout"] == "split" and splits.info["ignored_files"] == 0
    assert splits.info["mean_image_size"] == [4.0, 6.0]
    assert all(_is_rgb_pair(splits.test[i]) for i in range(len(splits.test)))
    assert [splits.train[i][1] for i in range(len(splits.train))] == splits.train.labels.tolist()


def test_imagefolder_split_is_seeded(tmp_path):
    _tree(tmp_path, {"a": 10, "b": 10})
    first, again = _imagefolder(tmp_path).load(), _imagefolder(tmp_path).load()
    other = _imagefolder(tmp_path, split_seed=3).load()
    assert first.test.paths == again.test.paths
    assert first.test.paths != other.test.paths
    assert len(_imagefolder(tmp_path, test_size=0.5).load().test) == 10


@pytest.mark.parametrize("held", ["val", "test"])
def test_imagefolder_explicit_train_and_held_out_trees(tmp_path, held):
    _tree(tmp_path / "train", {"a": 3, "b": 2})
    _tree(tmp_path / held, {"a": 1, "b": 2})
    splits = _imagefolder(tmp_path, test_size=0.9).load()  # test_size is unused with explicit splits
    assert splits.info["layout"] == f"train/{held}"
    assert (len(splits.train), len(splits.test)) == (5, 3)
    assert splits.test.labels.tolist() == [0, 1, 1]
    assert all(p.startswith(held) for p in splits.test.paths)


def test_imagefolder_prefers_test_over_val_and_records_unused_folders(tmp_path):
    for part in ("train", "val", "test"):
        _tree(tmp_path / part, {"a": 1, "b": 1})
    splits = _imagefolder(tmp_path).load()
    assert splits.info["layout"] == "train/test" and splits.info["unused_folders"] == ["val"]


def test_imagefolder_ignores_and_counts_other_files(tmp_path):
    _tree(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "README.md").write_text("about")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "b" / "labels.csv").write_text("x")
    _png(tmp_path / "b" / "nested" / "deep.JPG")  # upper-case extension, in a sub-folder: still an image
    (tmp_path / ".git").mkdir()  # hidden folders are not classes
    splits = _imagefolder(tmp_path).load()
    assert list(splits.classes) == ["a", "b"]
    assert splits.info["ignored_files"] == 3
    assert len(splits.train) + len(splits.test) == 5


def test_imagefolder_converts_grey_and_transparent_images_to_rgb(tmp_path):
    _png(tmp_path / "a" / "grey.png", mode="L", value=128)
    _png(tmp_path / "a" / "alpha.png", mode="RGBA", value=(0, 0, 0, 0))
    _png(tmp_path / "b" / "p1.png")
    _png(tmp_path / "b" / "p2.png")
    splits = _imagefolder(tmp_path, test_size=0.5).load()
    both = [splits.train[i] for i in range(len(splits.train))] + [splits.test[i] for i in range(len(splits.test))]
    assert all(_is_rgb_pair(item) for item in both)


def test_imagefolder_corrupt_files_raise_on_access_not_at_load(tmp_path):
    _tree(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "garbage.png").write_bytes(b"not a png at all")
    # A valid header with half the pixel data: opening works, only a full decode notices.
    Image.effect_noise((64, 64), 50).save(tmp_path / "b" / "big.png")
    data = (tmp_path / "b" / "big.png").read_bytes()
    (tmp_path / "b" / "big.png").write_bytes(data[: len(data) // 2])
    splits = _imagefolder(tmp_path, test_size=0.5).load()
    assert len(splits.train) + len(splits.test) == 8
    for split in (splits.train, splits.test):
        for i, path in enumerate(split.paths):
            if path.endswith(("garbage.png", "big.png")):
                with pytest.raises(OSError):
                    split[i]
            else:
                assert _is_rgb_pair(split[i])


@pytest.mark.parametrize("fmt, cut", [("JPEG", 0.5), ("JPEG", 2), ("PNG", 0.5), ("PNG", 12), ("PNG", 16)])
def test_imagefolder_truncated_files_raise_when_read(tmp_path, fmt, cut):
    """A file cut short raises when indexed, wherever the cut falls: a PNG cut inside its end chunk, or inside
    the checksum of its pixel data, still decodes in Pillow, so its end marker is checked too."""
    _tree(tmp_path, {"a": 3, "b": 3})
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 48 * 48 * 3).reshape(48, 48, 3).astype(np.uint8) // 2 + \
        rng.integers(0, 60, (48, 48, 3), dtype=np.uint8)
    path = tmp_path / "b" / f"cut.{fmt.lower()}"
    Image.fromarray(smooth).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)] if cut < 1 else data[:-cut])
    splits = _imagefolder(tmp_path, test_size=0.5).load()
    found = [(split, i) for split in (splits.train, splits.test) for i, p in enumerate(split.paths)
             if p.endswith(path.name)]
    assert len(found) == 1
    split, i = found[0]
    with pytest.raises(OSError, match="(?i)truncated"):
        split[i]


def test_imagefolder_complete_png_with_trailing_bytes_still_reads(tmp_path):
    _tree(tmp_path, {"a": 3, "b": 3})
    path = tmp_path / "a" / "img0.png"
    path.write_bytes(path.read_bytes() + b"\x00" * 100)  # some tools pad files after the end marker
    splits = _imagefolder(tmp_path, test_size=0.5).load()
    assert all(_is_rgb_pair(split[i]) for split in (splits.train, splits.test) for i in range(len(split)))


def _file(path):
    path.write_text("x")
    return path


# case: (make the tree in tmp_path and return the path to pass, regex the one-line message must match)
BAD_TREES = {
    "missing path": (lambda tmp: None, "imagefolder needs --param path=DIR"),
    "does not exist": (lambda tmp: tmp / "nope", "does not exist"),
    "not a directory": (lambda tmp: _file(tmp / "file.txt"), "is not a directory"),
    "no class folders": (lambda tmp: _file(tmp / "x.png").parent, "has no class folders"),
    "empty class": (lambda tmp: _mkdir(_tree(tmp, {"a": 2}) / "b"), "class folder .* has no images"),
    "one class": (lambda tmp: _tree(tmp, {"a": 3}), r"has only 1 class folder \('a'\)"),
    "class too small": (lambda tmp: _tree(tmp, {"a": 3, "b": 1}), "class 'b' has only 1 image"),
    "train only": (lambda tmp: _tree(tmp / "train", {"a": 2, "b": 2}).parent, "has train/ but no val/ or test/"),
    "class mismatch": (lambda tmp: _mismatched(tmp), "only in train/: c; only in val/: d"),
}


def _mkdir(path):
    path.mkdir(parents=True)
    _file(path / "readme.txt")
    return path.parent


def _mismatched(tmp):
    _tree(tmp / "train", {"a": 1, "b": 1, "c": 1})
    _tree(tmp / "val", {"a": 1, "b": 1, "d": 1})
    return tmp


@pytest.mark.parametrize("case", list(BAD_TREES))
def test_imagefolder_bad_inputs_raise_clear_errors(tmp_path, case):
    make, expected = BAD_TREES[case]
    path = make(tmp_path)
    dataset = create_dataset("imagefolder", path=None if path is None else str(path))
    for call in (dataset.load, dataset.fingerprint):
        with pytest.raises(DatasetError, match=expected) as info:
            call()
        assert "\n" not in str(info.value)


def test_imagefolder_empty_class_message_names_folder_and_extensions(tmp_path):
    _mkdir(_tree(tmp_path, {"a": 2}) / "b")
    with pytest.raises(DatasetError) as info:
        _imagefolder(tmp_path).load()
    assert str(tmp_path / "b") in str(info.value) and ".png" in str(info.value) and "has no images" in str(info.value)


def test_imagefolder_fingerprint_tracks_files_and_split(tmp_path):
    _tree(tmp_path, {"a": 3, "b": 3})
    base = _imagefolder(tmp_path).fingerprint()
    assert base == _imagefolder(tmp_path).fingerprint()
    assert _imagefolder(tmp_path, split_seed=1).fingerprint() != base
    assert _imagefolder(tmp_path, test_size=0.5).fingerprint() != base
    (tmp_path / "a" / "notes.txt").write_text("ignored files do not matter")
    assert _imagefolder(tmp_path).fingerprint() == base
    _png(tmp_path / "a" / "img9.png")
    added = _imagefolder(tmp_path).fingerprint()
    assert added != base
    _png(tmp_path / "a" / "img9.png", size=(30, 30))
    assert _imagefolder(tmp_path).fingerprint() != added


# ---------------------------------------------------------------- torchvision




@pytest.mark.parametrize("name", TV_NAMES)
def test_torchvision_absent_without_download_names_the_dataset(tmp_path, name, no_network):
    dataset = create_dataset(name, root=str(tmp_path / "data"), download=False)
    with pytest.raises(DatasetError) as info:
        dataset.load()
    message = str(info.value)
    assert message.startswith(f"dataset '{name}' is not in {tmp_path / 'data'} and could not be downloaded (")
    assert "download=False" in message and message.endswith("place the files there (torchvision layout)")
    assert no_network == []


@pytest.mark.parametrize("name", ["cifar10", "dtd", "eurosat"])
def test_torchvision_download_without_network_raises_dataset_error(tmp_path, name, no_network):
    with pytest.raises(DatasetError, match=f"dataset '{name}' is not in .* could not be downloaded .*URLError"):
        create_dataset(name, root=str(tmp_path)).load()
    assert no_network  # the real download path was taken


def test_torchvision_default_root_comes_from_the_environment(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TOPTUNE_DATA_DIR", str(tmp_path / "env-root"))
    with pytest.raises(DatasetError, match="env-root"):
        create_dataset("cifar100", download=False).load()


def _pickle(path, obj) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return hashlib.md5(path.read_bytes()).hexdigest()


def _fake_cifar10(root, monkeypatch, per_batch=20):
    """CIFAR-10 in torchvision's on-disk format, small: 5 train batches and a test batch of ``per_batch``."""
    import torchvision.datasets as tvd

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    md5s = {}
    for name in names:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(per_batch)]}
        md5s[name] = _pickle(folder / name, batch)
    label_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta_md5 = _pickle(folder / "batches.meta", {"label_names": label_names})
    # torchvision verifies each file against the md5 of the real release. Pointing those expected
    # checksums at our fake files (instead of disabling the check) keeps its whole loading path real:
    # presence check, integrity check, unpickling and the metadata, exactly as with downloaded data.
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[n, md5s[n]] for n in names[:5]])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5s["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": meta_md5})
    return label_names


def test_torchvision_cifar10_present_on_disk_loads_without_downloading(tmp_path, monkeypatch, no_network):
    label_names = _fake_cifar10(tmp_path, monkeypatch)
    dataset = create_dataset("cifar10", root=str(tmp_path))
    splits = dataset.load()
    assert no_network == []
    assert list(splits.classes) == label_names
    assert (len(splits.train), len(splits.test)) == (100, 20)
    assert splits.train.labels.tolist() == [i % 10 for i in range(20)] * 5
    assert splits.info["mean_image_size"] == [32.0, 32.0] and splits.info["n_classes"] == 10
    img, label = splits.test[13]
    assert _is_rgb_pair((img, label)) and img.size == (32, 32) and label == 3
    assert dataset.fingerprint() == create_dataset("cifar10", root=str(tmp_path / "elsewhere")).fingerprint()
    assert dataset.fingerprint() != create_dataset("cifar100").fingerprint()


def _fake_caltech101(root):
    """Caltech-101's layout: one folder per category (plus the background one torchvision drops)."""
    folder = root / "caltech101" / "101_ObjectCategories"
    for name, n in {"BACKGROUND_Google": 2, "accordion": 4, "ant": 6}.items():
        for i in range(1, n + 1):
            _png(folder / name / f"image_{i:04d}.jpg", size=(10, 20), mode="L", value=i * 30)


def test_torchvision_caltech101_is_split_here_and_made_rgb(tmp_path, no_network):
    _fake_caltech101(tmp_path)
    splits = create_dataset("caltech101", root=str(tmp_path), test_size=0.5).load()
    assert list(splits.classes) == ["accordion", "ant"]
    assert (len(splits.train), len(splits.test)) == (5, 5)
    assert set(splits.train.labels) == set(splits.test.labels) == {0, 1}
    assert splits.info["mean_image_size"] == [20.0, 10.0]
    assert all(_is_rgb_pair(splits.test[i]) for i in range(len(splits.test)))
    assert [splits.test[i][1] for i in range(5)] == splits.test.labels.tolist()


def test_torchvision_fingerprint_tracks_the_split_only_where_split_here():
    base = create_dataset("eurosat").fingerprint()
    assert base == create_dataset("eurosat", root="/somewhere/else").fingerprint()
    assert create_dataset("eurosat", split_seed=1).fingerprint() != base
    assert create_dataset("eurosat", test_size=0.5).fingerprint() != base
    assert "test_size" not in registry.load("dataset", "cifar10").params
