"""The interfaces a plugin implements, one Protocol per kind (plugin API version 1).

A plugin is a class registered under an entry-point group (see ``registry.GROUPS``). The class carries
metadata as class attributes and is instantiated with its validated parameters as keyword arguments:

    api_version: int            the plugin API it was written for (this toptune supports ``API_VERSION``)
    description: str            one line shown by ``toptune plugins`` and the dashboard
    params: dict[str, Param]    the parameters it accepts, with types, defaults and ranges
    check_params: dict          optional: values ``toptune plugins check`` creates it with, so the smoke
                                test needs no download or file (e.g. ``{"download": False}``)
    variant_param: str          optional: the parameter a name ``family:variant`` sets

Class metadata is validated when the plugin is loaded (``registry.interface_problem``: versions, methods,
defaults within their own ranges, ``check_params`` valid); what may depend on parameters, a backbone's
``pretrain_source`` and ``preprocessing``, when an instance is created (``contract.instance_problem``).
A plugin with ``api_version`` above ``API_VERSION`` is refused with a message saying to upgrade toptune.
``toptune plugins check`` (``toptune.plugin_check``) then exercises each kind on tiny inputs.

Feature extraction and classifiers never meet except through arrays: a backbone turns images into a
``(n, d)`` float array, a classifier fits on such arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

API_VERSION = 1


@runtime_checkable
class ImageSplit(Protocol):
    """One split of a dataset: indexable images with integer labels.

    ``split[i]`` returns ``(PIL.Image.Image, int)``; it may raise for an unreadable image, which the
    feature extractor skips and counts. ``labels`` holds every label, without decoding any image.
    """

    labels: np.ndarray

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Any, int]: ...


@dataclass
class DatasetSplits:
    """What a dataset plugin's ``load()`` returns."""

    train: ImageSplit
    test: ImageSplit
    classes: Sequence[str]
    # Extra facts for the run record, e.g. {"mean_image_size": [h, w], "ignored_files": 3}.
    info: dict = field(default_factory=dict)


@runtime_checkable
class Dataset(Protocol):
    """A labelled image dataset with a fixed train/test split.

    ``load()`` raises ``toptune.errors.DatasetError`` with an actionable message when the data is missing
    or empty (``toptune plugins check`` reports that as "skipped: needs data", anything else as a failure).
    Its ``DatasetSplits`` carries the metadata: class names, and in ``info`` facts such as
    ``mean_image_size`` that are recorded with every run. ``fingerprint()`` identifies the exact data (files,
    split) for the feature cache: two calls
    that would load different images must return different fingerprints.
    """

    api_version: ClassVar[int]
    description: ClassVar[str]
    params: ClassVar[dict]

    def load(self) -> DatasetSplits: ...

    def fingerprint(self) -> str: ...


@runtime_checkable
class Backbone(Protocol):
    """A pre-trained network used as a frozen feature extractor.

    ``build()`` returns a ``torch.nn.Module`` in eval mode mapping a ``(B, 3, H, W)`` batch, prepared as
    ``preprocessing`` says, to ``(B, d)`` globally pooled features. ``preprocessing`` is a dict with
    ``input_size`` (int), ``interpolation`` ('bilinear' | 'bicubic' | 'nearest'), ``crop_pct`` (1.0 means
    resize the whole image to a square), ``mean`` and ``std`` (3 floats each). ``weights_digest()``
    identifies the weights, so features from different weights never share a cache entry.
    ``pretrain_source`` names the pre-training data, e.g. 'imagenet-1k' (or 'none' for random weights).
    Both may be class attributes or set per instance; features must be deterministic (same batch, same
    output), which eval mode and frozen weights give.

    Optional: ``feature_layers(module) -> list[str]`` names the submodules of ``module`` (what ``build()``
    returned) that end each stage, shallow to deep. It enables ``feature_mode=layer:<name>`` (any
    submodule) and ``fne`` (every stage), read by forward hooks; without it a backbone supports only
    ``pooled`` and the other modes fail with a message saying so.
    """

    api_version: ClassVar[int]
    description: ClassVar[str]
    params: ClassVar[dict]
    pretrain_source: str
    preprocessing: dict

    def build(self) -> Any: ...

    def weights_digest(self) -> str: ...


@runtime_checkable
class Classifier(Protocol):
    """A scikit-learn style classifier trained on feature arrays.

    ``__init__`` only stores its parameters; ``fit(X, y)`` returns ``self`` and sets fitted attributes
    ending in ``_`` (including ``classes_`` and ``n_trained_params_``, the number of trained scalars);
    ``predict(X)`` returns labels from ``classes_``; ``score(X, y)`` returns accuracy.
    """

    api_version: ClassVar[int]
    description: ClassVar[str]
    params: ClassVar[dict]

    def fit(self, X: Any, y: Any) -> Classifier: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def score(self, X: Any, y: Any) -> float: ...


@runtime_checkable
class SavableClassifier(Protocol):
    """Optional for a classifier (plugin API v1): its fitted state saved with the run, so the run leaves a model.

    ``state_version`` is an int bumped whenever what ``save_state`` writes changes meaning; toptune refuses
    to load a state newer than the installed plugin's. ``save_state()`` returns ``(settings, arrays)``:
    JSON-able values (class labels, chosen hyper-parameters) and named numpy arrays. Nothing else is
    stored, and nothing is ever unpickled: the classmethod ``load_state(settings, arrays)`` rebuilds a
    fitted instance from exactly those. ``scores_module()`` (optional too) returns a ``torch.nn.Module``
    mapping float32 features ``(N, d)`` to per-class scores ``(N, C)`` whose argmax is ``predict``'s
    choice; ``toptune export`` needs it to write the classifier into an ONNX or TorchScript file.

    A classifier without these still runs; its run records why no model was saved.
    """

    state_version: ClassVar[int]

    def save_state(self) -> tuple[dict, dict[str, np.ndarray]]: ...

    @classmethod
    def load_state(cls, settings: dict, arrays: dict[str, np.ndarray]) -> Classifier: ...


PROTOCOLS = {"backbone": Backbone, "classifier": Classifier, "dataset": Dataset}


def required_methods(kind: str) -> tuple[str, ...]:
    """The methods a plugin of ``kind`` must have: those its Protocol above declares."""
    return tuple(name for name, value in vars(PROTOCOLS[kind]).items()
                 if callable(value) and not name.startswith("_"))
