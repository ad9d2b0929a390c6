"""Dataset helpers: fixed subsets, metadata, the preprocessing actually used; ``to_rgb`` and ``ArraySplit`` for
plugins (images converted alike everywhere, and images held in memory)."""

from __future__ import annotations

import numpy as np

from . import registry


def to_rgb(img):
    """An RGB image; transparent areas become white rather than whatever colour hides under alpha 0."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


class ArraySplit:
    """A dataset split of images held in memory as a (n, h, w) or (n, h, w, 3) uint8 array, handed out as RGB."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images
        self.labels = np.asarray(labels).astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return Image.fromarray(self.images[index]).convert("RGB"), int(self.labels[index])


def fixed_subset(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray | None:
    """A stratified subset that depends only on the split (not the run seed), so runs share it."""
    if limit is None or limit >= len(labels):
        return None
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    n_classes = len(np.unique(labels))
    stratify = labels if n_classes <= limit <= len(labels) - n_classes else None
    keep, _ = train_test_split(idx, train_size=limit, stratify=stratify, random_state=seed)
    return np.sort(keep)


def holdout(labels: np.ndarray, indices: np.ndarray, fraction: float, seed: int = 0):
    """Split ``indices`` into (kept, held out) with a stratified ``fraction`` held out."""
    from sklearn.model_selection import train_test_split

    sub = labels[indices]
    n_held = max(int(round(fraction * len(indices))), len(np.unique(sub)))
    stratify = sub if np.bincount(sub).max() > 1 and n_held <= len(indices) - len(np.unique(sub)) else None
    kept, held = train_test_split(indices, test_size=n_held, stratify=stratify, random_state=seed)
    return np.sort(kept), np.sort(held)


# Unreadable files listed by name in a run's info (the counts, skipped_train and skipped_test, stay whole).
SHOWN_UNREADABLE = 50


def sample_name(split, index: int) -> str:
    """How a user finds a sample of a split: its file (relative to the dataset's folder) where the split has
    files, else its position."""
    paths = getattr(split, "paths", None)
    if paths is not None and 0 <= int(index) < len(paths):
        return str(paths[int(index)])
    return f"sample {int(index)}"


def unreadable(skipped: dict) -> dict:
    """A run's info about images that could not be read: ``skipped_<split>`` counts, and ``skipped_files``, the
    first ``SHOWN_UNREADABLE`` as {split, file, reason}. ``skipped`` maps a split's name to (split, [(index,
    reason)]); top-tuning and fine-tuning report alike through this."""
    info, listed = {}, []
    for name, (split, bad) in skipped.items():
        info[f"skipped_{name}"] = len(bad)
        listed += [{"split": name, "file": sample_name(split, i), "reason": str(why)} for i, why in bad]
    if listed:
        info["skipped_files"] = listed[:SHOWN_UNREADABLE]
    return info


def unreadable_note(name: str, split, bad: list) -> str:
    """One line for the progress output: how many of a split's images were skipped, and the first one."""
    index, why = bad[0]
    return (f"{name}: skipped {len(bad)} unreadable image(s), e.g. {sample_name(split, index)}: {why} "
            "(the run's info lists them)")


def dataset_info(splits) -> dict:
    """A dataset's metadata: #train, #test, #classes, class names, mean image size and the plugin's extras."""
    info = {"n_train": len(splits.train), "n_test": len(splits.test), "n_classes": len(splits.classes),
            **splits.info, "classes": list(map(str, splits.classes))}
    info.setdefault("mean_image_size", None)
    return info


def describe_dataset(name: str, params: dict | None = None) -> dict:
    """Load a dataset (no feature extraction) and return its metadata."""
    values = registry.resolve_params("dataset", name, params or {})
    return dataset_info(registry.create("dataset", name, **values).load())


def dataset_label(name: str, params: dict) -> tuple[str, str | None]:
    """(the label a run's data is shown and grouped by, the absolute path of a local folder or file or None).

    A dataset read from a path is named by it: a local folder or file by its own name (``photos``), a
    remote one (a Hub id) as ``plugin:id``; any other dataset by its plugin's name. Two folders with the same
    name are told apart by the store, which adds a short fingerprint of the path to the later one's label.
    Cheap: one stat, nothing is read.
    """
    from pathlib import Path

    path = params.get("path")
    if not isinstance(path, str) or not path.strip():
        return name, None
    local = Path(path).expanduser()
    if local.exists():
        where = local.resolve()
        return (where.stem if where.is_file() else where.name) or name, str(where)
    family = registry.split_name(name)[0]
    return f"{family}:{path.strip()}", None


def preprocessing(backbone, image_size: int | None) -> dict:
    """The backbone's preprocessing, with the input size overridden when a run asks for one."""
    pre = dict(backbone.preprocessing)
    if image_size:
        pre["input_size"] = int(image_size)
    return pre
