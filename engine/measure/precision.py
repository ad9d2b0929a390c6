"""The precision and memory layout a network runs in: the ``precision`` run parameter, resolved for the
run's device and checked on the network's first batch.

``auto`` is bf16 autocast in channels_last on CPUs with native bf16 dot products (AVX512-BF16 or AMX),
float32 in channels_last on other CPUs, and fp16 autocast (AMP) in channels_last on CUDA. ``fp32``,
``bf16`` and ``fp16`` ask for that precision. channels_last is used only by networks with 2-D
convolutions, the only layers it speeds up (elsewhere it would add copies and gain nothing).

A plan that breaks is detected on the first batch and falls back, leaving a note for the run's info: a
forward pass that raises is retried in the contiguous layout, then in float32; reduced-precision
outputs that are not finite, or that stray from float32's by more than ``DEVIATION`` on the first
images, are replaced by float32 ones. The decision is kept for the module, so a run's second split
(and a model's next prediction) runs as the first did without checking again.
"""

from __future__ import annotations

import weakref
from contextlib import nullcontext
from dataclasses import dataclass, replace

from ..params import Param

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_PARAM = {
    "precision": Param("str", "auto", "float precision of the network: auto = bf16 autocast on CPUs with native bf16 "
                       "(AVX512-BF16/AMX), fp16 AMP on CUDA, fp32 elsewhere; always channels_last for CNNs",
                       choices=PRECISIONS),
}
# Reduced-precision outputs further than this (relative L2 norm) from float32's on the first images fall
# back to float32. bf16 features of EfficientNet-Lite0 stray by about 2 %, fp16 ones by 0.3 %.
DEVIATION = 0.1
# Images of the first batch also run in float32 to measure that deviation.
PROBE_IMAGES = 2

_decided: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {plan: checked Compute}


def native_bf16() -> bool:
    """Whether this CPU has native bf16 dot products (AVX512-BF16 or AMX) that oneDNN uses."""
    import torch

    try:  # torch's private CPU feature table: without it, no bf16 by default
        features = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.backends.mkldnn.is_available() and (features.get("avx512_bf16") or features.get("amx_bf16")))


def has_conv2d(module) -> bool:
    import torch

    return any(isinstance(m, torch.nn.Conv2d) for m in module.modules())


@dataclass(frozen=True)
class Compute:
    """How a network runs: autocast precision ('fp32' = none) and layout on ``device``, with notes on fallbacks."""

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    notes: tuple[str, ...] = ()

    @property
    def device_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    @property
    def reduced(self) -> bool:
        return self.precision != "fp32"

    def autocast(self):
        import torch

        if not self.reduced:
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)

    def place(self, module):
        """``module`` on the device in this layout (moved in place, as ``Module.to`` does)."""
        import torch

        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return module.to(self.device).to(memory_format=layout)

    def inputs(self, x):
        """A batch on the device in this layout (an asynchronous copy from pinned memory on CUDA)."""
        import torch

        x = x.to(self.device, non_blocking=True)
        if x.dim() != 4:
            return x
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def scaler(self):
        """A gradient scaler for fp16 training (bf16 and float32 need none)."""
        import torch

        return torch.amp.GradScaler(self.device_type) if self.precision == "fp16" else None

    def record(self) -> dict:
        """What ran, for a run's info and a saved model's manifest."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    def info(self) -> dict:
        return {**self.record(), **({"precision_notes": list(self.notes)} if self.notes else {})}

    def candidates(self) -> list[Compute]:
        """This plan, then its fallbacks: the contiguous layout, then float32 (in each layout)."""
        plans = [(self.precision, self.channels_last), (self.precision, False), ("fp32", self.channels_last),
                 ("fp32", False)]
        unique = list(dict.fromkeys(plans))
        return [replace(self, precision=p, channels_last=cl) for p, cl in unique]

    def noted(self, note: str) -> Compute:
        return replace(self, notes=(*self.notes, note))

    def safest(self) -> Compute:
        """float32 in the contiguous layout: what every network ran in before plans existed."""
        return replace(self, precision="fp32", channels_last=False, notes=())

    def fell_back(self, plan: Compute, reasons: list[str]) -> Compute:
        """This plan, noting why it runs instead of ``plan``."""
        return self.noted(f"planned {plan.describe()}, ran {self.describe()}: " + "; ".join(reasons))

    def describe(self) -> str:
        return f"{self.precision}{' channels_last' if self.channels_last else ''}"


def resolve(requested: str, device: str, module=None) -> Compute:
    """The plan for ``requested`` precision on ``device`` (channels_last only for ``module``s with 2-D convolutions)."""
    import torch

    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    cuda = str(device).startswith("cuda")
    layout = module is None or has_conv2d(module)
    notes = []
    precision = requested
    if requested == "auto":
        precision = "fp16" if cuda else ("bf16" if native_bf16() else "fp32")
    elif requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        precision = "fp16"
        notes.append("this GPU has no bf16 support: running fp16 AMP instead of bf16")
    elif requested == "bf16" and not cuda and not native_bf16():
        notes.append("this CPU has no native bf16 dot products (AVX512-BF16 or AMX): bf16 is emulated and "
                     "slower than fp32 here")
    return Compute(str(device), precision, layout, tuple(notes))


def from_record(record: dict | None, device: str, module=None) -> Compute:
    """The plan a saved run recorded, on ``device``; ``None`` (a model saved before precision was recorded)
    means what extraction ran then: float32 contiguous on CPU, fp16 AMP in channels_last on CUDA."""
    cuda = str(device).startswith("cuda")
    if not record:
        return Compute(str(device), "fp16" if cuda else "fp32", cuda)
    plan = resolve(record["precision"], device, module)
    return replace(plan, channels_last=bool(record.get("channels_last", plan.channels_last)))


def error_line(exc: BaseException) -> str:
    """An exception as one short line for a fallback note."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}"


def _deviation(out, ref) -> float | None:
    """Relative L2 distance of ``out``'s first rows from the float32 ``ref`` (None: nothing to compare)."""
    import torch

    if not (isinstance(out, torch.Tensor) and isinstance(ref, torch.Tensor)) or not torch.isfinite(ref).all():
        return None
    rows = out[: len(ref)].float()
    if rows.shape != ref.shape:
        return None
    scale = float(ref.float().norm())
    return float((rows - ref.float()).norm()) / scale if scale > 0 else None


def checked_forward(module, plan: Compute, x):
    """(the Compute that ran, its output) of ``module`` on the first batch ``x`` (on any device, in any layout).

    Runs the plan and its fallbacks (``Compute.candidates``) until one works; a reduced precision whose
    output is not finite or strays from float32's by more than ``DEVIATION`` gives way to float32. The
    caller holds the grad mode (inference for extraction, no_grad for a training network's check).
    """
    import torch

    key = (plan.device, plan.precision, plan.channels_last)
    known = _decided.get(module, {}).get(key)
    if known is not None:
        return known, run_batch(module, known, x)
    failures, first_error = [], None
    for candidate in plan.candidates():
        try:
            out = run_batch(module, candidate, x)
        except Exception as exc:  # noqa: BLE001 - any failure of a plan is a reason to try the next one
            first_error = first_error or exc
            failures.append(f"{candidate.describe()} failed ({error_line(exc)})")
            continue
        chosen = candidate
        if candidate.reduced:
            fp32 = replace(candidate, precision="fp32")
            ref = run_batch(module, fp32, x[:PROBE_IMAGES])
            deviation = _deviation(out, ref)
            finite = not isinstance(out, torch.Tensor) or bool(torch.isfinite(out.float()).all())
            if not finite or (deviation is not None and deviation > DEVIATION):
                why = "non-finite outputs" if not finite else \
                    f"outputs {100 * deviation:.0f} % away from float32's (limit {100 * DEVIATION:.0f} %)"
                failures.append(f"{candidate.precision} gave {why}")
                chosen, out = fp32, run_batch(module, fp32, x)
        if chosen != plan:
            chosen = chosen.fell_back(plan, failures)
        _decided.setdefault(module, {})[key] = chosen
        return chosen, out
    raise first_error


def run_batch(module, compute: Compute, x, place: bool = True):
    """``module`` on batch ``x`` in ``compute``'s device, layout and precision (``place=False``: the module
    is there already)."""
    if place:
        module = compute.place(module)
    with compute.autocast():
        return module(compute.inputs(x))
