"""Hugging Face ``datasets`` as a toptune dataset: ``--dataset hf --data ID_OR_PATH``, or ``hf:ID`` as a name.

``path`` decides the source. An existing file or folder is local and never touches the network: a
``save_to_disk`` folder, a ``.parquet`` / ``.arrow`` file, or a folder that ``load_dataset`` reads (parquet or
arrow files, or images in class folders for its ``imagefolder`` builder). Anything else is a Hub id,
``ID[:CONFIG][@REVISION]``, downloaded once into the datasets cache. When the Hub cannot be reached (no network,
or ``HF_HUB_OFFLINE=1``) the cached copy is used without waiting on retries, and an id that was never
downloaded fails with one line naming it.

Splits: ``train`` and ``test``, else the first of validation / valid / val; a dataset with only a train split
is split here (stratified, ``test_size`` and ``split_seed``), as ``imagefolder`` does. The image column is the
``Image`` feature, the label column the ``ClassLabel`` (else an integer or string column called label, labels,
…); both can be named. Class names come from the ``ClassLabel``, or are the sorted label values. Rows without
a label (-1 or null) are left out and counted. The fingerprint hashes the dataset's own fingerprints with
the files behind it (size and modification time), so a changed dataset never reuses cached features.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from toptune.data import to_rgb
from toptune.errors import DatasetError
from toptune.params import Param
from toptune.protocols import DatasetSplits

from . import common as C

INSTALL = "pip install 'toptune[hf]' (or: pip install datasets)"
UNAVAILABLE = None if importlib.util.find_spec("datasets") else f"the datasets library is not installed: {INSTALL}"

TEST_SPLITS = ("test", "validation", "valid", "val")  # the first one present is the test split
IMAGE_NAMES = ("image", "img", "images", "picture", "photo")
LABEL_NAMES = ("label", "labels", "target", "class", "category", "y")
FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}
SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
HUB_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Source:
    kind: str  # "hub" | "disk" (save_to_disk) | "file" (.parquet/.arrow) | "folder" (load_dataset reads it)
    where: str  # the Hub id, or the absolute local path
    config: str | None = None
    revision: str | None = None

    @property
    def local(self) -> bool:
        return self.kind != "hub"

    def describe(self) -> str:
        if self.local:
            return f"'{self.where}'"
        extra = (f", config '{self.config}'" if self.config else "") + (f", revision '{self.revision}'"
                                                                         if self.revision else "")
        return f"'{self.where}'{extra}"


def _looks_local(path: str) -> bool:
    """A path that cannot be a Hub id: absolute, relative with a dot, under ~, nested, or a data file name."""
    return (path.startswith(("/", ".", "~", "\\")) or path.count("/") > 1 or "\\" in path
            or Path(path).suffix.lower() in FILE_BUILDERS)


def locate(path: str | None, config: str | None = None, revision: str | None = None) -> Source:
    """Where the data is; raises DatasetError for a missing local path or something that is not a Hub id."""
    if not path:
        raise DatasetError("hf needs a dataset: --data ID_OR_PATH (a Hub id such as user/name, or a local "
                           "save_to_disk folder, parquet/arrow file or image folder)")
    local = Path(path).expanduser()
    if local.exists():
        if config or revision:
            raise DatasetError(f"hf path '{local}' is local; config and revision apply to Hub ids only")
        local = local.resolve()
        if local.is_file():
            if local.suffix.lower() not in FILE_BUILDERS:
                raise DatasetError(f"hf file '{local}' is not a .parquet or .arrow file; point --data at one, or at "
                                   "a folder (save_to_disk output, data files or class folders of images)")
            return Source("file", str(local))
        kind = "disk" if any((local / name).is_file() for name in SAVED_MARKERS) else "folder"
        return Source(kind, str(local))
    if _looks_local(path):
        raise DatasetError(f"hf path '{path}' does not exist; check --data (a local folder or file, or a Hub "
                           "dataset id such as user/name)")
    spec, _, at_revision = path.partition("@")
    hub_id, _, at_config = spec.partition(":")
    if not HUB_ID.fullmatch(hub_id):
        raise DatasetError(f"hf: '{path}' is neither an existing file or folder nor a Hub dataset id "
                           "(user/name, optionally :CONFIG and @REVISION)")
    for name, given, inline in (("config", config, at_config), ("revision", revision, at_revision)):
        if given and inline and given != inline:
            raise DatasetError(f"hf: {name} '{given}' contradicts '{inline}' in '{path}'; give it once")
    return Source("hub", hub_id, config or at_config or None, revision or at_revision or None)


def offline_by_environment() -> bool:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE, as the libraries read them at import or as set since."""
    import datasets.config

    return bool(datasets.config.HF_HUB_OFFLINE) or any(
        (os.environ.get(name) or "").upper() in TRUE_VALUES for name in OFFLINE_VARIABLES)


def hub_reachable() -> bool:
    """Whether the Hub endpoint answers a TCP connection within a few seconds (False in offline mode).

    Behind a proxy a direct connection says nothing, so the datasets library is left to try.
    """
    import datasets.config

    if offline_by_environment():
        return False
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urlparse(datasets.config.HF_ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)),
                                 timeout=HUB_TIMEOUT_S).close()
    except OSError:
        return False
    return True


@contextmanager
def _offline(enabled: bool) -> Iterator[None]:
    """When ``enabled``, the datasets library and huggingface_hub in offline mode, as HF_HUB_OFFLINE=1 sets them at
    import: a cached dataset loads at once instead of after a minute of connection retries."""
    import datasets.config
    import huggingface_hub.constants as hub

    if not enabled:
        yield
        return
    before = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = before


@contextmanager
def _quiet(bars: bool) -> Iterator[None]:
    """No warnings from the datasets library; its progress bars only when ``bars`` (a Hub download)."""
    import datasets

    level, disabled = datasets.logging.get_verbosity(), datasets.are_progress_bars_disabled()
    datasets.logging.set_verbosity_error()
    if not bars:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        if not disabled:
            datasets.enable_progress_bars()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _open_local(source: Source, cache_dir: str | None) -> Any:
    import datasets

    try:
        if source.kind == "disk":
            return datasets.load_from_disk(source.where)
        if source.kind == "file":
            builder = FILE_BUILDERS[Path(source.where).suffix.lower()]
            return datasets.load_dataset(builder, data_files=source.where, cache_dir=cache_dir)
        return datasets.load_dataset(source.where, cache_dir=cache_dir)
    except Exception as exc:  # the library's own errors (no data files, unreadable arrow, ...) end the same way
        raise DatasetError(f"hf could not read {source.describe()}: {_one_line(exc)}") from exc


def _open_hub(source: Source, cache_dir: str | None) -> Any:
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    offline = offline_by_environment()
    online = hub_reachable()
    hub_id = source.where
    try:
        with _quiet(bars=online), _offline(not online):
            return datasets.load_dataset(hub_id, name=source.config, revision=source.revision, cache_dir=cache_dir)
    except DatasetNotFoundError as exc:
        if "gated" in str(exc):
            raise DatasetError(f"hf dataset '{hub_id}' is gated on the Hub: accept its conditions at "
                               f"https://huggingface.co/datasets/{hub_id} and log in (hf auth login, or set "
                               "HF_TOKEN)") from exc
        raise DatasetError(f"hf dataset '{hub_id}' is not on the Hub or cannot be accessed: {_one_line(exc)} "
                           "(check the id; a private dataset needs hf auth login or HF_TOKEN)") from exc
    except ConnectionError as exc:
        why = "offline mode is on (HF_HUB_OFFLINE)" if offline else \
            f"{urlparse(datasets.config.HF_ENDPOINT).hostname} cannot be reached"
        raise DatasetError(f"hf dataset {source.describe()} is not in the datasets cache and {why}; download it "
                           "once with a network connection, or point --data at a local copy (a save_to_disk "
                           "folder or parquet files; no file or folder of that name is here)") from exc
    except Exception as exc:  # a config that does not exist, a broken download, ...
        raise DatasetError(f"hf dataset {source.describe()} could not be loaded: {_one_line(exc)}") from exc


def open_splits(source: Source, cache_dir: str | None = None) -> dict[str, Any]:
    """Every split of the dataset, by name (a single saved Dataset is the split 'train')."""
    import datasets

    if source.local:
        with _quiet(bars=False):
            loaded = _open_local(source, cache_dir)
    else:
        loaded = _open_hub(source, cache_dir)
    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}
    return dict(loaded)


def _kind(feature: Any) -> str:
    """'image', 'classlabel', 'int', 'str' or 'other': what a column can serve as."""
    import datasets

    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "classlabel"
    dtype = getattr(feature, "dtype", "") if isinstance(feature, datasets.Value) else ""
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype in ("string", "large_string"):
        return "str"
    return "other"


def _columns_text(features: dict) -> str:
    return ", ".join(f"{name} ({_kind(f)})" for name, f in features.items()) or "none"


def pick_image_column(features: dict, wanted: str | None, where: str) -> str:
    if wanted:
        if wanted not in features:
            raise DatasetError(f"hf dataset {where} has no column '{wanted}' (columns: {_columns_text(features)}); "
                               "fix --param image_column")
        if _kind(features[wanted]) not in ("image", "str"):
            raise DatasetError(f"hf dataset {where}: column '{wanted}' holds {_kind(features[wanted])} values, not "
                               "images (an Image feature, or image file paths)")
        return wanted
    images = [name for name, f in features.items() if _kind(f) == "image"]
    if not images:
        raise DatasetError(f"hf dataset {where} has no image column (no Image feature among its columns: "
                           f"{_columns_text(features)}); name one with --param image_column=NAME")
    return next((name for name in images if name.lower() in IMAGE_NAMES), images[0])


def pick_label_column(features: dict, wanted: str | None, image_column: str, where: str) -> str:
    if wanted:
        if wanted not in features:
            raise DatasetError(f"hf dataset {where} has no column '{wanted}' (columns: {_columns_text(features)}); "
                               "fix --param label_column")
        if wanted == image_column or _kind(features[wanted]) not in ("classlabel", "int", "str"):
            raise DatasetError(f"hf dataset {where}: column '{wanted}' holds {_kind(features[wanted])} values; a "
                               "label column holds a ClassLabel, integers or strings")
        return wanted
    class_labels = [name for name, f in features.items() if _kind(f) == "classlabel"]
    if class_labels:
        return next((name for name in class_labels if name.lower() in LABEL_NAMES), class_labels[0])
    named = [name for name, f in features.items()
             if name.lower() in LABEL_NAMES and name != image_column and _kind(f) in ("int", "str")]
    if not named:
        raise DatasetError(f"hf dataset {where} has no label column (no ClassLabel feature, and no integer or "
                           f"string column named {'/'.join(LABEL_NAMES)}; columns: {_columns_text(features)}); "
                           "name one with --param label_column=NAME")
    return named[0]


def _raw_labels(split: Any, column: str) -> list:
    """A split's label values without decoding any image (None where missing)."""
    return split.select_columns([column]).with_format("arrow")[column].to_pylist()


def encode_labels(raw: dict[str, list], feature: Any) -> tuple[dict[str, np.ndarray], list[str]]:
    """Integer labels per split (-1 where missing) and the class names, shared by every split."""
    if _kind(feature) == "classlabel":
        names = [str(n) for n in feature.names]
        return {k: np.asarray([-1 if v is None else int(v) for v in values], dtype=np.int64)
                for k, values in raw.items()}, names
    present = sorted({v for values in raw.values() for v in values if v is not None})
    index = {v: i for i, v in enumerate(present)}
    return {k: np.asarray([index.get(v, -1) for v in values], dtype=np.int64) for k, values in raw.items()}, \
        [str(v) for v in present]


class HFSplit:
    """Rows of one datasets split, images decoded only when indexed."""

    def __init__(self, table: Any, column: str, rows: np.ndarray, labels: np.ndarray):
        self.table = table  # the split, reduced to its image column
        self.column = column
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._headers = None  # the same rows with images left undecoded, for their sizes

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        row = int(self.rows[index])
        img = self.table[row][self.column]
        if img is None:
            raise ValueError(f"row {row} has no image")
        img.load()  # decode now, so a broken image raises here and is skipped and counted
        return to_rgb(img), int(self.labels[index])

    def image_hw(self, index: int) -> tuple[int, int]:
        """Height and width from the image header, without decoding the pixels."""
        import datasets

        if self._headers is None:
            self._headers = self.table.cast_column(self.column, datasets.Image(decode=False))
        raw = self._headers[int(self.rows[index])][self.column]
        with Image.open(io.BytesIO(raw["bytes"]) if raw.get("bytes") else raw["path"]) as img:
            return img.height, img.width


@dataclass
class Resolved:
    source: Source
    splits: dict  # name -> datasets.Dataset, as opened
    train: str  # split names
    test: str | None  # None: the train split is split here
    image_column: str
    label_column: str


class HFDataset:
    api_version = 1
    description = ("Hugging Face datasets: a Hub id (cached for offline use), a save_to_disk folder, parquet/arrow "
                   "files or an image folder")
    unavailable = UNAVAILABLE
    variant_param = "path"  # hf:user/name
    params = {
        "path": Param("str", None, "Hub id (user/name[:config][@revision]) or a local save_to_disk folder, "
                                   "parquet/arrow file or folder of data files or class-folder images", required=True),
        "config": Param("str", None, "Hub configuration (subset) name"),
        "revision": Param("str", None, "Hub branch, tag or commit"),
        "train_split": Param("str", None, "split to train on [default: train, or the only split]"),
        "test_split": Param("str", None, "split to test on [default: test, else validation]; none: train is split "
                                         "here with test_size"),
        "image_column": Param("str", None, "column of images [default: the Image feature]"),
        "label_column": Param("str", None, "column of labels [default: the ClassLabel, else label/labels/...]"),
        "cache_dir": Param("str", None, "datasets cache folder [default: HF_DATASETS_CACHE]"),
        **C.split_params(),
    }

    def __init__(self, path: str | None = None, config: str | None = None, revision: str | None = None,
                 train_split: str | None = None, test_split: str | None = None, image_column: str | None = None,
                 label_column: str | None = None, cache_dir: str | None = None, test_size: float = 0.25,
                 split_seed: int = 0):
        self.path, self.config, self.revision = path, config, revision
        self.train_split, self.test_split = train_split, test_split
        self.image_column, self.label_column = image_column, label_column
        self.cache_dir = str(Path(cache_dir).expanduser()) if cache_dir else None
        self.test_size, self.split_seed = test_size, split_seed
        self.source = locate(path, config, revision)  # a missing path fails here, before anything is read
        self._resolved: Resolved | None = None
        self._fingerprint: str | None = None

    def resolve(self) -> Resolved:
        """Open the dataset once and choose its splits and columns."""
        if self._resolved is None:
            splits = open_splits(self.source, self.cache_dir)
            train, test = self._choose_splits(splits)
            where = self.source.describe()
            features = splits[train].features
            image = pick_image_column(features, self.image_column, where)
            label = pick_label_column(features, self.label_column, image, where)
            if test is not None:
                missing = [c for c in (image, label) if c not in splits[test].features]
                if missing:
                    raise DatasetError(f"hf dataset {where}: split '{test}' lacks column(s) {', '.join(missing)} "
                                       f"that '{train}' has; choose another with --param test_split=NAME")
            self._resolved = Resolved(self.source, splits, train, test, image, label)
        return self._resolved

    def _choose_splits(self, splits: dict) -> tuple[str, str | None]:
        where, names = self.source.describe(), ", ".join(splits)
        train = self.train_split or "train"
        if train not in splits:
            if self.train_split is None and len(splits) == 1:
                train = next(iter(splits))
            else:
                raise DatasetError(f"hf dataset {where} has no split '{train}' (splits: {names}); choose one with "
                                   "--param train_split=NAME")
        if self.test_split is not None:
            if self.test_split.lower() == "none":
                return train, None
            if self.test_split not in splits or self.test_split == train:
                raise DatasetError(f"hf dataset {where}: test_split '{self.test_split}' is not a split other than "
                                   f"'{train}' (splits: {names})")
            return train, self.test_split
        return train, next((s for s in TEST_SPLITS if s in splits and s != train), None)

    def check(self) -> None:
        """Before a run is recorded (``toptune.runner.preflight``): the data is there, with an image column, a
        label column and 2 classes or more. A local dataset opens memory-mapped; a Hub dataset not cached yet is
        downloaded here, once, into the datasets cache the run then reads."""
        self.labelled(self.resolve())

    def labelled(self, r: Resolved) -> tuple[dict[str, np.ndarray], list[str], dict[str, int]]:
        """Labels per split (-1: none), class names and unlabelled counts; raises for data a run cannot use."""
        where = self.source.describe()
        names = [r.train] + ([r.test] if r.test else [])
        raw = {name: _raw_labels(r.splits[name], r.label_column) for name in names}
        labels, classes = encode_labels(raw, r.splits[r.train].features[r.label_column])
        unlabelled = {name: int((labels[name] < 0).sum()) for name in names}
        for name in names:
            if unlabelled[name] == len(labels[name]):
                raise DatasetError(f"hf dataset {where}: split '{name}' has no labels in column '{r.label_column}'"
                                   + ("; choose a labelled test split with --param test_split=NAME, or none to "
                                      "split train" if name == r.test else ""))
        train = labels[r.train][labels[r.train] >= 0]
        self._check_classes(train, classes, r.label_column)
        if r.test is None:
            self._check_splittable(train, classes)
        return labels, classes, unlabelled

    def load(self) -> DatasetSplits:
        r = self.resolve()
        labels, classes, unlabelled = self.labelled(r)
        train_rows = np.flatnonzero(labels[r.train] >= 0)
        if r.test is not None:
            test_rows = np.flatnonzero(labels[r.test] >= 0)
            train = self._split(r, r.train, train_rows, labels[r.train][train_rows])
            test = self._split(r, r.test, test_rows, labels[r.test][test_rows])
            layout = f"{r.train}/{r.test}"
        else:
            pool = labels[r.train][train_rows]
            tr, te = C.stratified_split(pool, self.test_size, self.split_seed)
            train = self._split(r, r.train, train_rows[tr], pool[tr])
            test = self._split(r, r.train, train_rows[te], pool[te])
            layout = "split"
        info = {"source": self.source.kind, "hf_path": self.source.where, "layout": layout,
                "image_column": r.image_column, "label_column": r.label_column,
                "mean_image_size": C.mean_size(len(train), train.image_hw),
                **C.split_info(train.labels, test.labels, classes)}
        info.update({k: v for k, v in (("config", self.source.config), ("revision", self.source.revision)) if v})
        if any(unlabelled.values()):
            info["unlabelled_rows"] = {name: n for name, n in unlabelled.items() if n}
        return DatasetSplits(train=train, test=test, classes=classes, info=info)

    @staticmethod
    def _split(r: Resolved, name: str, rows: np.ndarray, labels: np.ndarray) -> HFSplit:
        import datasets

        table = r.splits[name].select_columns([r.image_column])
        feature = table.features[r.image_column]
        if not isinstance(feature, datasets.Image) or not feature.decode:  # file paths, or undecoded images
            table = table.cast_column(r.image_column, datasets.Image())
        return HFSplit(table, r.image_column, rows, labels)

    def _check_classes(self, labels: np.ndarray, classes: list[str], column: str) -> None:
        present = np.unique(labels)
        if len(present) < 2:
            only = f" ('{classes[present[0]]}')" if len(present) == 1 and present[0] < len(classes) else ""
            raise DatasetError(f"hf dataset {self.source.describe()}: label column '{column}' has only "
                               f"{len(present)} class{only}; a classifier needs at least 2")
        if present.max() >= len(classes):
            raise DatasetError(f"hf dataset {self.source.describe()}: label column '{column}' holds {present.max()} "
                               f"but its ClassLabel names only {len(classes)} classes")

    def _check_splittable(self, labels: np.ndarray, classes: list[str]) -> None:
        counts = np.bincount(labels, minlength=len(classes))
        single = [classes[i] for i in np.flatnonzero(counts == 1)]
        if single:
            raise DatasetError(f"hf dataset {self.source.describe()} has no test split and class '{single[0]}' has "
                               "only 1 image; the stratified split needs at least 2 per class (or pass "
                               "--param test_split=NAME)")

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            r = self.resolve()
            names = [r.train] + ([r.test] if r.test else [])
            own = [getattr(r.splits[name], "_fingerprint", None) for name in names]
            split = None if r.test else [self.test_size, self.split_seed, C.SPLIT_ALGORITHM]
            self._fingerprint = C.digest("hf", self.source.kind, self.source.where, self.source.config,
                                         self.source.revision, self._files(r, names), own, names,
                                         r.image_column, r.label_column, split)
        return self._fingerprint

    def _files(self, r: Resolved, names: list[str]) -> list:
        """(path, size, mtime) of every file the data comes from: the local source, or the cached Hub files."""
        if self.source.local:
            root = Path(self.source.where)
            paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                         and not any(part.startswith(".") for part in
                                                                     p.relative_to(root).parts))
        else:
            paths = sorted({Path(f["filename"]) for name in names for f in r.splits[name].cache_files})
        out = []
        for path in paths:
            stat = path.stat()
            out.append([str(path), stat.st_size, stat.st_mtime_ns])
        return out
