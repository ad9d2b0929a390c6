"""Precision plans: what ``auto`` resolves to, and the fallbacks a network that breaks a plan gets, with notes."""

import numpy as np
import pytest
import torch

from toptune.measure import device as devices
from toptune.measure import precision
from toptune.measure.precision import Compute, checked_forward, from_record, resolve


class Conv(torch.nn.Module):
    """A small CNN returning one feature row per image; subclasses break one plan or another."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.calls = 0

    def features(self, x):
        return torch.relu(self.conv(x))

    def forward(self, x):
        self.calls += 1
        return self.features(x).mean((2, 3))


class Flattens(Conv):
    """``view`` needs a contiguous tensor, so channels_last breaks it (common in hand-written models)."""

    def forward(self, x):
        self.calls += 1
        y = self.features(x)
        return y.view(len(y), -1)[:, :16]


class NumpyInside(Conv):
    """Hands its activations through numpy, which has no bf16: reduced precision raises."""

    def forward(self, x):
        y = self.features(x).mean((2, 3))
        return torch.from_numpy(y.numpy().copy())


class Cancels(Conv):
    """Adds and removes a large offset: exact in float32, all signal lost in bf16's 8-bit mantissa."""

    def forward(self, x):
        return (self.features(x).mean((2, 3)) + 4096.0) * 1.0 - 4096.0


class Overflows(Conv):
    """Activations beyond fp16's range (65,504) become inf under fp16 autocast."""

    def forward(self, x):
        return self.conv(x * 1e5).mean((2, 3))


@pytest.fixture
def batch():
    return torch.rand(6, 3, 12, 12)


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():  # as the callers run checks: extraction in inference mode, fine-tuning without grad
        yield


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    plan = resolve("auto", "cpu", Conv())
    assert (plan.precision, plan.channels_last, plan.notes) == (expected, True, ())
    assert resolve("auto", "cuda").precision == "fp16"  # AMP on CUDA, as before (resolving needs no GPU)


def test_channels_last_only_for_networks_with_2d_convolutions():
    assert resolve("fp32", "cpu", Conv()).channels_last
    assert not resolve("fp32", "cpu", torch.nn.Sequential(torch.nn.Linear(4, 2))).channels_last


def test_emulated_bf16_is_honoured_with_a_note(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    plan = resolve("bf16", "cpu", Conv())
    assert plan.precision == "bf16" and "emulated" in plan.notes[0]


def test_a_plan_that_works_runs_as_planned(batch):
    module = Conv()
    plan = Compute("cpu", "bf16", True)
    ran, out = checked_forward(module, plan, batch)
    assert ran == plan and out.dtype == torch.bfloat16 and out.shape == (6, 8)
    assert module.conv.weight.is_contiguous(memory_format=torch.channels_last)
    reference = Conv()(batch)
    assert torch.allclose(out.float(), reference, rtol=0.05, atol=0.02)


def test_channels_last_that_breaks_falls_back_to_the_contiguous_layout(batch):
    module = Flattens()
    ran, out = checked_forward(module, Compute("cpu", "fp32", True), batch)
    assert (ran.precision, ran.channels_last) == ("fp32", False)
    assert "planned fp32 channels_last, ran fp32" in ran.notes[0] and "RuntimeError" in ran.notes[0]
    assert torch.equal(out, Flattens()(batch))
    calls = module.calls
    again, _ = checked_forward(module, Compute("cpu", "fp32", True), batch)  # decided once per module
    assert again == ran and module.calls == calls + 1


def test_bf16_that_raises_falls_back_to_float32(batch):
    ran, out = checked_forward(NumpyInside(), Compute("cpu", "bf16", True), batch)
    assert ran.precision == "fp32" and ran.channels_last  # the layout was not the problem
    assert "bf16 channels_last failed (TypeError" in ran.notes[0]
    assert out.dtype == torch.float32


def test_bf16_outputs_far_from_float32_fall_back(batch):
    ran, out = checked_forward(Cancels(), Compute("cpu", "bf16", True), batch)
    assert ran.precision == "fp32" and "away from float32's (limit 10 %)" in ran.notes[0]
    assert torch.allclose(out, Cancels().features(batch).mean((2, 3)), atol=1e-3)


def test_fp16_overflow_falls_back_to_float32(batch):
    ran, out = checked_forward(Overflows(), Compute("cpu", "fp16", False), batch)
    assert ran.precision == "fp32" and "non-finite outputs" in ran.notes[0]
    assert torch.isfinite(out).all()


def test_saved_records_replay_and_old_models_keep_their_precision():
    assert from_record({"precision": "bf16", "channels_last": False}, "cpu", Conv()) == Compute("cpu", "bf16", False)
    assert from_record(None, "cpu") == Compute("cpu", "fp32", False)  # what extraction ran before plans
    assert from_record(None, "cuda") == Compute("cuda", "fp16", True)


@pytest.mark.parametrize("requested, device, cores, batches, expected", [
    (3, "cpu", 2, 10, 3),  # asked for: as asked
    (None, "cpu", 2, 10, 0),  # a small CPU: workers would take cores from the network
    (None, "cpu", 16, 10, 2),
    (None, "cpu", 64, 10, 4),
    (None, "cuda", 16, 100, 8),  # a GPU: decode on every core beside the main process, at most 8
    (None, "cuda", 4, 100, 3),
    (None, "cuda", 16, 3, 2),  # never more workers than batches after the first
])
def test_loader_workers(monkeypatch, requested, device, cores, batches, expected):
    monkeypatch.setattr(devices, "cpu_cores", lambda: cores)
    assert devices.loader_workers(requested, device, batches) == expected


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16"):
        resolve("fp64", "cpu")
    assert np.isclose(precision.DEVIATION, 0.1)
