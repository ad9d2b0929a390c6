"""The target datasets of the top-tuning study (Alfano et al.), where to get each, and whether it is here.

``toptune datasets --paper``, ``toptune sweep --preset paper`` and the dashboard's Launch page read this
table. Each entry says how toptune reaches the dataset: a torchvision plugin (``--dataset cifar10``), a Hub id
for the ``hf`` plugin (``--dataset hf:user/name``; ids taken from the datasets' Hub pages), or ``manual``: the
original page, and the class-folder layout ``--dataset imagefolder --data DIR`` reads once the files are
there. ``present`` checks the disk only (data folders, the datasets cache), so listing never downloads.

Counts and class numbers are those of the split each source provides (``FIGURES``); the image size is the
mean height x width where the source states it. The study's own table (32 datasets) could not be read
where this catalogue was written, so it lists the datasets the project attributes to the study so far.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

STUDY = ("Top-tuning: a study on transfer learning for an efficient alternative to fine tuning for image "
         "classification with fast kernel methods (Alfano, Pastore, Rosasco, Odone; arXiv 2209.07932)")
STUDY_SIZE = 32  # target datasets in the study
FIGURES = "the split each source provides (official train/test, or train split here by test_size)"
TORCHVISION, HUB, MANUAL = "torchvision", "hub", "manual"
DATA_DIR_ENV, DEFAULT_DATA_DIR = "TOPTUNE_DATA_DIR", "~/.cache/toptune/data"  # as the torchvision plugins


@dataclass(frozen=True)
class Entry:
    name: str  # toptune's short name
    title: str
    n_train: int | None
    n_test: int | None  # None: no official test split (split here with test_size)
    n_classes: int
    image_size: tuple[int, int] | None  # mean (height, width) where the source states it
    source: str  # TORCHVISION | HUB | MANUAL
    where: str  # the plugin name, the Hub id, or the original page
    layout: str = ""  # for MANUAL: the folder tree imagefolder expects
    folder: str = ""  # torchvision's folder under the data root; MANUAL: the suggested folder name

    @property
    def dataset(self) -> str | None:
        """What ``--dataset`` (and a sweep's ``datasets``) takes, or None for a manual download."""
        return {TORCHVISION: self.where, HUB: f"hf:{self.where}"}.get(self.source)

    def how(self) -> str:
        """One line: the command option, or where to download and how to lay the files out."""
        if self.source == MANUAL:
            return f"manual: {self.where}; then --dataset imagefolder --data {manual_dir(self)} ({self.layout})"
        return f"--dataset {self.dataset}"


ENTRIES: tuple[Entry, ...] = (
    Entry("cifar10", "CIFAR-10", 50_000, 10_000, 10, (32, 32), TORCHVISION, "cifar10", folder="cifar-10-batches-py"),
    Entry("cifar100", "CIFAR-100", 50_000, 10_000, 100, (32, 32), TORCHVISION, "cifar100", folder="cifar-100-python"),
    Entry("flowers102", "Oxford Flowers-102", 2_040, 6_149, 102, None, TORCHVISION, "flowers102", folder="flowers-102"),
    Entry("oxford_pets", "Oxford-IIIT Pet", 3_680, 3_669, 37, None, TORCHVISION, "oxford_pets",
          folder="oxford-iiit-pet"),
    Entry("dtd", "Describable Textures (partition 1)", 3_760, 1_880, 47, None, TORCHVISION, "dtd", folder="dtd"),
    Entry("eurosat", "EuroSAT (RGB)", 27_000, None, 10, (64, 64), TORCHVISION, "eurosat", folder="eurosat"),
    Entry("caltech101", "Caltech-101 (no background class)", 8_677, None, 101, None, TORCHVISION, "caltech101",
          folder="caltech101"),
    Entry("stanford_cars", "Stanford Cars", 8_144, 8_041, 196, None, TORCHVISION, "stanford_cars",
          folder="stanford_cars"),
    Entry("fgvc_aircraft", "FGVC-Aircraft (variants)", 6_667, 3_333, 100, None, TORCHVISION, "fgvc_aircraft",
          folder="fgvc-aircraft-2013b"),
    Entry("food101", "Food-101", 75_750, 25_250, 101, None, TORCHVISION, "food101", folder="food-101"),
    Entry("beans", "Beans (bean leaf diseases)", 1_034, 128, 3, None, HUB, "AI-Lab-Makerere/beans"),
    Entry("cats_vs_dogs", "Cats vs Dogs (Asirra)", 23_410, None, 2, None, HUB, "microsoft/cats_vs_dogs"),
    Entry("chest_xray", "Chest X-ray (pneumonia; Kermany et al.)", 5_216, 624, 2, None, HUB,
          "theophilusijiebor1/chest-xray"),
    Entry("cassava", "Cassava leaf diseases (iCassava 2019)", 5_656, 1_885, 5, None, MANUAL,
          "https://www.tensorflow.org/datasets/catalog/cassava",
          layout="train/<class>/*.jpg and test/<class>/*.jpg, one folder per class, e.g. cbb cbsd cgm cmd healthy",
          folder="cassava"),
)


def data_root() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def manual_dir(entry: Entry) -> Path:
    return data_root() / (entry.folder or entry.name)


def datasets_cache() -> Path:
    """The datasets library's cache folder, found as it finds it (without importing it)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "datasets"


def _cached_hub_folder(hub_id: str) -> Path:
    """Where the datasets library keeps a downloaded Hub dataset: <namespace>___<name in snake case>."""
    namespace, _, name = hub_id.rpartition("/")
    name = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)).lower()
    return datasets_cache() / (f"{namespace}___{name}" if namespace else name)


def _has_files(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def present(entry: Entry) -> bool:
    """Whether the data is on this machine: the torchvision folder, the datasets cache or the manual folder."""
    if entry.source == TORCHVISION:
        return _has_files(data_root() / entry.folder)
    if entry.source == HUB:
        return _has_files(_cached_hub_folder(entry.where))
    return _has_files(manual_dir(entry))


def rows() -> list[dict]:
    """Every entry as plain data, with ``dataset``, ``how`` and ``present``."""
    return [{**asdict(e), "image_size": list(e.image_size) if e.image_size else None, "dataset": e.dataset,
             "how": e.how(), "present": present(e)} for e in ENTRIES]


def sweep_datasets() -> list[str]:
    """The ``--dataset`` names of every entry toptune downloads itself (torchvision or the Hub)."""
    return [e.dataset for e in ENTRIES if e.dataset]
