"""The ``hf`` dataset plugin on Hugging Face datasets these tests build from real images; never the network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.support import research
from toptune import registry
from toptune.cli import app
from toptune.errors import DatasetError
from toptune.plugin_check import check_plugins
from toptune.plugins.datasets import hf
from toptune.store import Store

datasets = pytest.importorskip("datasets")

DIGIT_NAMES = [f"digit {d}" for d in range(10)]
PHOTO_NAMES = ["cat", "coffee", "china", "flower"]


def digit_images(n: int = 120) -> tuple[list[Image.Image], list[int]]:
    """scikit-learn's scanned handwritten digits as 8x8 greyscale images (real pixels, 10 classes)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = [Image.fromarray(np.round(x / 16 * 255).astype(np.uint8)) for x in bunch.images[:n]]
    return images, bunch.target[:n].astype(int).tolist()


def photo_crops(per_class: int = 24, size: int = 40, seed: int = 0) -> tuple[list[Image.Image], list[int]]:
    """Random crops of four real photos (scikit-image's cat and coffee, scikit-learn's china and flower)."""
    skimage_data = pytest.importorskip("skimage.data")
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    photos = [skimage_data.chelsea(), skimage_data.coffee(), china, flower]
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, photo in enumerate(photos):
        h, w = photo.shape[:2]
        for _ in range(per_class):
            y, x = rng.integers(0, h - size), rng.integers(0, w - size)
            images.append(Image.fromarray(np.ascontiguousarray(photo[y:y + size, x:x + size])))
            labels.append(label)
    return images, labels


def labelled(images, labels, names, image="image", label="label"):
    features = datasets.Features({image: datasets.Image(), label: datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({image: images, label: labels}, features=features)


def split_dict(ds, test_every: int = 4, test_name: str = "test"):
    rows = np.arange(len(ds))
    return datasets.DatasetDict({"train": ds.select(rows[rows % test_every != 0]),
                                 test_name: ds.select(rows[rows % test_every == 0])})


def load(path, **params):
    return registry.create_dataset("hf", path=str(path), **params).load()


@pytest.fixture
def offline(monkeypatch):
    """The Hub counts as unreachable whatever this machine can reach, so nothing waits on the network."""
    monkeypatch.setattr(hf, "hub_reachable", lambda: False)


def test_save_to_disk_dict_gives_its_splits_classlabel_names_and_the_images(tmp_path):
    images, labels = digit_images()
    split_dict(labelled(images, labels, DIGIT_NAMES)).save_to_disk(str(tmp_path / "saved"))
    splits = load(tmp_path / "saved")
    assert list(splits.classes) == DIGIT_NAMES
    assert (len(splits.train), len(splits.test)) == (90, 30)
    assert splits.info["layout"] == "train/test" and splits.info["source"] == "disk"
    assert splits.info["mean_image_size"] == [8.0, 8.0]
    expected_test = np.asarray(labels)[::4]
    assert splits.test.labels.tolist() == expected_test.tolist()
    img, label = splits.test[5]
    assert img.mode == "RGB" and label == expected_test[5]
    assert np.array_equal(np.asarray(img), np.asarray(images[20].convert("RGB")))


def test_validation_is_the_test_split_when_there_is_no_test_and_names_can_be_chosen(tmp_path):
    images, labels = digit_images()
    split_dict(labelled(images, labels, DIGIT_NAMES), test_name="validation").save_to_disk(str(tmp_path / "v"))
    assert load(tmp_path / "v").info["layout"] == "train/validation"
    swapped = load(tmp_path / "v", train_split="validation", test_split="train")
    assert (len(swapped.train), len(swapped.test)) == (30, 90)
    forced = load(tmp_path / "v", test_split="none")
    assert forced.info["layout"] == "split" and len(forced.train) + len(forced.test) == 90


def test_a_single_split_is_split_here_stratified_and_seeded(tmp_path):
    images, labels = photo_crops(per_class=12)
    labelled(images, labels, PHOTO_NAMES).save_to_disk(str(tmp_path / "one"))
    a, b = load(tmp_path / "one"), load(tmp_path / "one")
    assert a.info["layout"] == "split" and list(a.classes) == PHOTO_NAMES
    assert a.info["test_class_counts"] == [3, 3, 3, 3] and a.info["train_class_counts"] == [9, 9, 9, 9]
    assert a.test.rows.tolist() == b.test.rows.tolist()
    other = load(tmp_path / "one", split_seed=1)
    assert other.test.rows.tolist() != a.test.rows.tolist()
    assert sorted(a.train.rows.tolist() + a.test.rows.tolist()) == list(range(48))
    assert load(tmp_path / "one", test_size=0.5).info["test_class_counts"] == [6, 6, 6, 6]


def test_parquet_and_arrow_files_and_folders_of_them(tmp_path):
    images, labels = digit_images()
    dd = split_dict(labelled(images, labels, DIGIT_NAMES))
    (tmp_path / "pq").mkdir()
    for name, part in dd.items():
        part.to_parquet(str(tmp_path / "pq" / f"{name}.parquet"))
    folder = load(tmp_path / "pq", cache_dir=str(tmp_path / "hf-cache"))
    assert folder.info["source"] == "folder" and folder.info["layout"] == "train/test"
    assert list(folder.classes) == DIGIT_NAMES and len(folder.test) == 30
    single = load(tmp_path / "pq" / "train.parquet", cache_dir=str(tmp_path / "hf-cache"))
    assert single.info["source"] == "file" and single.info["layout"] == "split"
    assert len(single.train) + len(single.test) == 90
    dd.save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved" / "train").glob("*.arrow"))
    from_arrow = load(arrow, cache_dir=str(tmp_path / "hf-cache"))
    assert from_arrow.info["source"] == "file" and len(from_arrow.train) + len(from_arrow.test) == 90


def _image_tree(root, images, labels, names, split_of=None):
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / (split_of(i) if split_of else "") / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i}.png")


def test_image_folders_read_by_the_imagefolder_builder(tmp_path):
    images, labels = photo_crops(per_class=8)
    _image_tree(tmp_path / "flat", images, labels, PHOTO_NAMES)
    flat = load(tmp_path / "flat", cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(flat.classes) == sorted(PHOTO_NAMES) and flat.info["layout"] == "split"
    assert flat.info["mean_image_size"] == [40.0, 40.0]
    _image_tree(tmp_path / "presplit", images, labels, PHOTO_NAMES,
                split_of=lambda i: "test" if i % 4 == 0 else "train")
    presplit = load(tmp_path / "presplit", cache_dir=str(tmp_path / "hf-cache"))
    assert presplit.info["layout"] == "train/test" and (len(presplit.train), len(presplit.test)) == (24, 8)
    img, label = presplit.test[0]
    assert img.size == (40, 40) and presplit.classes[label] in PHOTO_NAMES


def test_columns_are_found_by_type_or_named_and_plain_labels_become_classes(tmp_path):
    images, labels = digit_images(60)
    features = datasets.Features({"caption": datasets.Value("string"), "picture": datasets.Image(),
                                  "fine": datasets.ClassLabel(names=DIGIT_NAMES),
                                  "parity": datasets.ClassLabel(names=["even", "odd"])})
    ds = datasets.Dataset.from_dict({"caption": ["x"] * 60, "picture": images, "fine": labels,
                                     "parity": [y % 2 for y in labels]}, features=features)
    split_dict(ds).save_to_disk(str(tmp_path / "two"))
    found = load(tmp_path / "two")
    assert (found.info["image_column"], found.info["label_column"]) == ("picture", "fine")
    assert list(load(tmp_path / "two", label_column="parity").classes) == ["even", "odd"]
    words = datasets.Dataset.from_dict({"image": images, "label": [DIGIT_NAMES[y] for y in labels]},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "label": datasets.Value("string")}))
    words.save_to_disk(str(tmp_path / "words"))
    as_text = load(tmp_path / "words")
    assert list(as_text.classes) == sorted(DIGIT_NAMES)
    _, label = as_text.train[0]
    assert as_text.classes[label] == DIGIT_NAMES[labels[as_text.train.rows[0]]]


def test_rows_without_a_label_are_left_out_and_counted(tmp_path):
    images, labels = digit_images(80)
    labels = [-1 if i % 10 == 0 else y for i, y in enumerate(labels)]
    split_dict(labelled(images, labels, DIGIT_NAMES)).save_to_disk(str(tmp_path / "holes"))
    splits = load(tmp_path / "holes")
    assert splits.info["unlabelled_rows"] == {"train": 4, "test": 4}
    assert (len(splits.train), len(splits.test)) == (56, 16) and splits.train.labels.min() >= 0


def _no_image(tmp):
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).save_to_disk(str(tmp / "d"))
    return tmp / "d", {}, "has no image column"


def _no_label(tmp):
    images, _ = digit_images(20)
    datasets.Dataset.from_dict({"image": images}, features=datasets.Features({"image": datasets.Image()})) \
        .save_to_disk(str(tmp / "d"))
    return tmp / "d", {}, "has no label column"


def _one_class(tmp):
    images, _ = digit_images(20)
    labelled(images, [3] * 20, DIGIT_NAMES).save_to_disk(str(tmp / "d"))
    return tmp / "d", {}, "label column 'label' has only 1 class ('digit 3')"


def _unlabelled_test(tmp):
    images, labels = digit_images(40)
    dd = split_dict(labelled(images, labels, DIGIT_NAMES))
    dd["test"] = labelled(list(dd["test"]["image"]), [-1] * len(dd["test"]), DIGIT_NAMES)
    dd.save_to_disk(str(tmp / "d"))
    return tmp / "d", {}, "split 'test' has no labels in column 'label'"


def _bad_split(tmp):
    images, labels = digit_images(40)
    split_dict(labelled(images, labels, DIGIT_NAMES)).save_to_disk(str(tmp / "d"))
    return tmp / "d", {"train_split": "training"}, "has no split 'training' (splits: train, test)"


def _bad_column(tmp):
    images, labels = digit_images(40)
    labelled(images, labels, DIGIT_NAMES).save_to_disk(str(tmp / "d"))
    return tmp / "d", {"label_column": "digit"}, "has no column 'digit'"


def _missing(tmp):
    return tmp / "nowhere" / "data", {}, "does not exist"


def _not_data(tmp):
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt", {}, "is not a .parquet or .arrow file"


@pytest.mark.parametrize("case", [_no_image, _no_label, _one_class, _unlabelled_test, _bad_split, _bad_column,
                                  _missing, _not_data])
def test_bad_inputs_raise_one_clear_line_naming_the_data(tmp_path, case):
    path, params, message = case(tmp_path)
    with pytest.raises(DatasetError) as err:
        load(path, **params)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert str(path) in text


def _cached_hub_dataset(cache_dir, hub_id: str, parts: dict):
    """Lay ``parts`` out in ``cache_dir`` as the datasets library leaves a Hub download, which its offline mode
    reads: <namespace>___<name>/<config>/<version>/<commit>/<name>-<split>.arrow beside dataset_info.json."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, name = hub_id.split("/")
    staging = cache_dir.parent / "staging"
    staging.mkdir(parents=True)
    files = {}
    for split, part in parts.items():
        files[split] = str(staging / f"{split}.parquet")
        part.to_parquet(files[split])
    builder = Parquet(cache_dir=str(staging / "build"), dataset_name=f"{namespace}___{name}", data_files=files)
    builder.download_and_prepare()
    commit = cache_dir / f"{namespace}___{name}" / "default" / "0.0.0" / "0123456789abcdef"
    commit.mkdir(parents=True)
    for built in Path(builder.cache_dir).iterdir():
        if not built.name.endswith(".lock"):
            shutil.copy(built, commit / built.name.replace(f"{namespace}___{name}-", f"{name}-"))


def test_a_hub_id_loads_from_the_cache_offline_and_names_what_is_missing(tmp_path, offline):
    images, labels = photo_crops(per_class=10)
    cache = tmp_path / "hf-cache"
    _cached_hub_dataset(cache, "someone/photos", dict(split_dict(labelled(images, labels, PHOTO_NAMES))))
    splits = registry.create_dataset("hf:someone/photos", cache_dir=str(cache)).load()
    assert list(splits.classes) == PHOTO_NAMES and (len(splits.train), len(splits.test)) == (30, 10)
    assert splits.info["source"] == "hub" and splits.info["hf_path"] == "someone/photos"
    with pytest.raises(DatasetError) as err:
        registry.create_dataset("hf:someone/elsewhere", cache_dir=str(cache)).load()
    text = str(err.value)
    assert "'someone/elsewhere' is not in the datasets cache" in text and "cannot be reached" in text
    with pytest.raises(DatasetError, match="config 'other'"):
        registry.create_dataset("hf:someone/photos:other", cache_dir=str(cache)).load()


def test_a_gated_dataset_says_so_and_where_to_ask_for_access(tmp_path, monkeypatch):
    import types

    import datasets.config
    import huggingface_hub
    import huggingface_hub.constants
    from huggingface_hub.errors import GatedRepoError

    asked = []

    def gated(self, repo_id, filename, **kwargs):  # what the Hub answers a client that is not logged in
        asked.append(repo_id)
        raise GatedRepoError("gated", response=types.SimpleNamespace(status_code=401, headers={}, request=None))

    monkeypatch.setattr(hf, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "hf_hub_download", gated)
    with pytest.raises(DatasetError) as err:
        registry.create_dataset("hf", path="some-org/private-scans", cache_dir=str(tmp_path / "c")).load()
    assert asked == ["some-org/private-scans"]
    assert "'some-org/private-scans' is gated on the Hub" in str(err.value)
    assert "https://huggingface.co/datasets/some-org/private-scans" in str(err.value)


def test_hub_names_are_parsed_and_contradictions_refused():
    assert hf.locate("user/name:cfg@v1.0") == hf.Source("hub", "user/name", "cfg", "v1.0")
    assert hf.locate("beans", revision="main") == hf.Source("hub", "beans", None, "main")
    with pytest.raises(DatasetError, match="contradicts"):
        hf.locate("user/name:cfg", config="other")
    with pytest.raises(DatasetError, match="neither an existing file or folder nor a Hub dataset id"):
        hf.locate("user/na me")


def test_fingerprint_is_stable_and_follows_the_data_and_the_split(tmp_path):
    images, labels = digit_images(80)

    def fingerprint(**params):
        return registry.create_dataset("hf", path=str(tmp_path / "d"), **params).fingerprint()

    labelled(images, labels, DIGIT_NAMES).save_to_disk(str(tmp_path / "d"))
    first = fingerprint()
    assert fingerprint() == first
    assert fingerprint(split_seed=1) != first and fingerprint(test_size=0.5) != first
    labelled(images[::-1], labels[::-1], DIGIT_NAMES).save_to_disk(str(tmp_path / "d2"))
    shutil.rmtree(tmp_path / "d")
    (tmp_path / "d2").rename(tmp_path / "d")
    assert fingerprint() != first
    _image_tree(tmp_path / "tree", *photo_crops(per_class=4), PHOTO_NAMES)
    tree = registry.create_dataset("hf", path=str(tmp_path / "tree"), cache_dir=str(tmp_path / "c")).fingerprint()
    photo = next((tmp_path / "tree" / "cat").glob("*.png"))
    Image.new("RGB", (40, 40), "red").save(photo)
    os.utime(photo, ns=(1, 1))
    assert registry.create_dataset("hf", path=str(tmp_path / "tree"), cache_dir=str(tmp_path / "c")).fingerprint() \
        != tree


def test_plugin_check_passes_on_a_local_dataset_and_skips_without_one(tmp_path):
    images, labels = digit_images(40)
    labelled(images, labels, DIGIT_NAMES).save_to_disk(str(tmp_path / "d"))
    (result,) = check_plugins(["hf"], params={"path": str(tmp_path / "d")})
    assert result.status == "pass" and result.details["n_classes"] == 10
    (bare,) = check_plugins(["hf"])
    assert bare.status == "skip" and "needs data" in bare.reason


cli = CliRunner()


def test_top_tuning_end_to_end_through_dataset_hf(tmp_path):
    images, labels = photo_crops(per_class=24)
    split_dict(labelled(images, labels, PHOTO_NAMES)).save_to_disk(str(tmp_path / "photos"))
    store = tmp_path / "runs.duckdb"
    with research.registered():
        res = cli.invoke(app, ["run", "--dataset", "hf", "--data", str(tmp_path / "photos"), "--backbone",
                               research.STAGED, "--classifier", "ridge", "-p", "image_size=32", "--store",
                               str(store), "--json", "-q"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["accuracy"] > 0.5  # chance is 0.25 with four classes
    run = Store(store).get_run(result["id"])
    info = run["info"] if isinstance(run["info"], dict) else json.loads(run["info"])
    assert info["classes"] == PHOTO_NAMES and info["n_classes"] == 4
    assert run["dataset"] == "hf" and info["label_column"] == "label"


def test_cli_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, monkeypatch):
    images, _ = digit_images(20)
    datasets.Dataset.from_dict({"image": images}, features=datasets.Features({"image": datasets.Image()})) \
        .save_to_disk(str(tmp_path / "unlabelled"))
    store = tmp_path / "runs.duckdb"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read when the Hub is asked, as well as at import
    cases = [(str(tmp_path / "missing"), "does not exist"),
             (str(tmp_path / "unlabelled"), "has no label column"),
             ("someone/not-downloaded", "'someone/not-downloaded' is not in the datasets cache and offline mode is on")]
    for data, message in cases:
        res = cli.invoke(app, ["run", "--dataset", "hf", "--data", data, "--store", str(store), "-q"])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.output
        assert "Traceback" not in res.output
    assert not store.exists()  # checked before the run was recorded
