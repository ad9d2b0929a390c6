"""One self-contained file per model: ONNX or TorchScript, from images to class scores.

The file holds everything between pixels and scores: the backbone's normalisation, the backbone, the
feature mode (an ``fne`` model's train statistics and thresholds), the classifier's standardisation and its
head as tensor operations (for ``kernel``: the kernel against the M centres times the coefficients).

- input ``images``: float32 [N, 3, H, W], RGB in [0, 1], at the model's input size;
- output ``scores``: float32 [N, C], one column per class, the largest is the prediction;
- ONNX metadata ``classes`` (a JSON list, one name per column) and ``input_size``.
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ModelError, ParamError
from ..features import modes
from .model import FineTunedModel, Model, TopTunedModel

FORMATS = ("onnx", "torchscript")
OPSET = 17


def _modules():
    import torch

    class Normalise(torch.nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, images):
            return (images - self.mean) / self.std

    class FullNetworkEmbedding(torch.nn.Module):
        """Standardise with the training split's statistics, then -1 / 0 / +1 (``features.modes``)."""

        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

        def forward(self, x):
            z = (x - self.mean) / self.std
            one = torch.ones_like(z)
            return torch.where(z < modes.FNE_LOW, -one, torch.where(z > modes.FNE_HIGH, one, torch.zeros_like(z)))

    class Half(torch.nn.Module):
        """float16 weights inside, float32 images in and scores out; each step gets float16 inputs (a step
        that computes in float32 for accuracy, such as spatial pooling, hands the next one float32)."""

        def __init__(self, steps):
            super().__init__()
            self.steps = steps.half()

        def forward(self, images):
            x = images
            for step in self.steps:
                x = step(x.half())
            return x.float()

    return Normalise, FullNetworkEmbedding, Half


def columns(model: Model) -> list[str]:
    """The class name of each score column of the exported file."""
    if isinstance(model, TopTunedModel):
        return [model.classes[int(c)] for c in model.classifier.classes_]
    return list(model.classes)


def scores_network(model: Model, half: bool = False):
    """The whole model as one torch module, images in [0, 1] to class scores, on the CPU."""
    import torch

    Normalise, FullNetworkEmbedding, Half = _modules()
    steps = [Normalise(model.pre["mean"], model.pre["std"])]
    if isinstance(model, FineTunedModel):
        steps.append(model.module)
    else:
        head = getattr(model.classifier, "scores_module", None)
        if not callable(head):
            raise ModelError(f"classifier '{model.manifest['classifier']['name']}' has no scores_module(), so it "
                             "cannot be written into a file; toptune predict still works")
        extractor = model.module
        if hasattr(extractor, "stop_early"):
            extractor.stop_early = False  # a traced export needs the plain forward pass
        steps.append(extractor)
        if model.mode == modes.FNE:
            steps.append(FullNetworkEmbedding(model.mode_state["mean"], model.mode_state["std"]))
        steps.append(head())
    network = torch.nn.Sequential(*steps).eval().cpu()
    for p in network.parameters():
        p.requires_grad_(False)
    return Half(network).eval() if half else network


def _check_target(path: Path) -> None:
    if not path.parent.is_dir():
        raise ParamError(f"cannot write {path}: the folder {path.parent} does not exist")


def export(model: Model, path: str | Path, fmt: str = "onnx", half: bool = False) -> Path:
    """Write ``model`` to one file at ``path``; returns it."""
    import torch

    if fmt not in FORMATS:
        raise ParamError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    path = Path(path)
    _check_target(path)
    network = scores_network(model, half)
    example = torch.rand(2, 3, model.input_size, model.input_size)
    meta = {"classes": json.dumps(columns(model)), "input_size": str(model.input_size),
            "producer": "toptune", "method": model.method, "backbone": model.manifest["backbone"]["name"]}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "onnx":
            _onnx(network, example, tmp, meta)
        else:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(network, example, check_trace=False)
                torch.jit.save(traced, str(tmp), _extra_files={f"{k}.txt": v for k, v in meta.items()})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextmanager
def _quiet():
    """TorchScript's tracer (behind both formats) announces its successor on every call; users did not ask."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        yield


def _onnx(network, example, path: Path, meta: dict) -> None:
    import torch

    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx package: pip install 'toptune[export]'") from None
    with _quiet(), torch.no_grad():
        torch.onnx.export(network, (example,), str(path), input_names=["images"], output_names=["scores"],
                          dynamic_axes={"images": {0: "N"}, "scores": {0: "N"}}, opset_version=OPSET, dynamo=False)
    graph = onnx.load(str(path))
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))


def input_batch(model: Model, images) -> np.ndarray:
    """``images`` as the exported file takes them: float32 [N, 3, H, W] in [0, 1] at the input size."""
    from torchvision import transforms as T

    from ..features.extract import build_transform
    from .images import Inputs

    resize = [t for t in build_transform(model.pre).transforms if not isinstance(t, T.Normalize)]
    to_input = T.Compose(resize)
    inputs = Inputs(images)
    return np.stack([to_input(inputs[i][0]).numpy() for i in range(len(inputs))]).astype(np.float32)


def onnx_scores(path: str | Path, batch: np.ndarray) -> np.ndarray:
    """Scores of ``batch`` from an exported ONNX file, by ONNX Runtime on the CPU."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("checking an ONNX file needs onnxruntime: pip install 'toptune[export]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"images": batch})[0]


def agreement(model: Model, path: str | Path, images, fmt: str = "onnx", half: bool = False) -> dict:
    """How the exported file's predictions on ``images`` compare with the same network in PyTorch."""
    import torch

    batch = input_batch(model, images)
    with torch.no_grad():
        reference = scores_network(model, half)(torch.from_numpy(batch)).numpy()
    if fmt == "onnx":
        scores = onnx_scores(path, batch)
    else:
        with _quiet(), torch.no_grad():
            scores = torch.jit.load(str(path))(torch.from_numpy(batch)).numpy()
    return {"images": len(batch), "agreement": float(np.mean(scores.argmax(1) == reference.argmax(1))),
            "max_score_difference": float(np.abs(scores - reference).max())}
