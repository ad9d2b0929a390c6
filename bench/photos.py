"""An image folder of photos for the benches: random crops of the colour photos that ship with
scikit-image and scikit-learn, one class folder per photo, saved as JPEG files.

    python bench/photos.py OUT [--per-class 200] [--size 160]

Telling which photo a crop was cut from is easy for large crops and ambiguous for small ones of sky,
shadow or texture, so accuracies sit below 100 % and a change of a fraction of a point is visible with a
few hundred test crops. The folder depends only on its arguments (fixed seed), so two benches given the
same arguments read the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# Photos bundled with scikit-image (no download) and the two of scikit-learn; the textures are grey.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
SKIMAGE_TEXTURES = ("brick", "grass", "gravel")


def photos() -> dict[str, np.ndarray]:
    """{name: (h, w, 3) uint8} of every bundled photo (grey ones repeated over three channels)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    out.update({name: np.repeat(getattr(skimage.data, name)()[..., None], 3, axis=2) for name in SKIMAGE_TEXTURES})
    out["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for path, image in zip(sample.filenames, sample.images):
        out[Path(path).stem] = image
    return out


def make_photo_folder(root: str | Path, per_class: int = 200, size: int = 256, seed: int = 0) -> Path:
    """Write ``per_class`` crops of each photo under ``root/<photo>/``; returns ``root``.

    Each crop is a random square of 4-20 % of the photo's shorter side, possibly mirrored, resized to
    ``size`` px and saved as a quality-90 JPEG. An existing complete folder is reused as it is.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for name, image in sorted(photos().items()):
        folder = root / name
        if folder.is_dir() and len(list(folder.glob("*.jpg"))) == per_class:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        h, w = image.shape[:2]
        for i in range(per_class):
            side = int(rng.uniform(0.04, 0.2) * min(h, w))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(image[top:top + side, left:left + side])
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    root = make_photo_folder(args.out, args.per_class, args.size)
    print(f"{root}: {len(list(root.glob('*/*.jpg')))} photos in {len(list(root.iterdir()))} class folders")


if __name__ == "__main__":
    main()
