"""Fine-tuning in the run's precision: recorded with the run and its model, replayed by the model, and a
network that cannot train in the planned precision falls back to float32 with a note instead of failing."""

import time

import numpy as np
import pytest
import torch

from tests.support.plugins import tiny_backbones
from toptune import load_model, registry
from toptune.measure.precision import Compute, native_bf16
from toptune.methods.fine_tune import PrecisionRace
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store

FAST_FT = {"max_train": 60, "max_test": 30, "image_size": 16, "batch_size": 16, "epochs": 1, "lr": 3e-3,
           "warmup_epochs": 0.5}
AUTO = "bf16" if native_bf16() else "fp32"


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.num_features = 8

    def forward(self, x):
        return torch.relu(self.bn(self.stem(x))).mean((2, 3))


class NoReducedTraining(Net):
    """Predicts in any precision but refuses to train in a reduced one (as a layer without bf16 gradients)."""

    def forward(self, x):
        out = super().forward(x)
        if self.training and out.dtype != torch.float32:
            raise RuntimeError("this layer has no reduced-precision backward")
        return out


@pytest.fixture(autouse=True)
def backbones():
    with tiny_backbones(plain=Net, picky=NoReducedTraining):
        yield


def stored(store, run_id):
    rows = store.query(f"SELECT sample, y_pred FROM predictions WHERE run_id = '{run_id}' ORDER BY sample",
                       max_rows=None).rows
    return [s for s, _ in rows], [p for _, p in rows]


def test_the_run_and_its_model_share_the_precision(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id, result = run(RunSpec("fine-tune", "plain", "digits", None, FAST_FT), store)
    assert (result.info["precision"], result.info["channels_last"]) == (AUTO, True)
    model = load_model(run_id, store=store, device="cpu")
    assert model.compute == {"precision": AUTO, "channels_last": True}
    samples, predictions = stored(store, run_id)
    test = registry.create("dataset", "digits").load().test
    labels = model.predict([test[i][0] for i in samples])
    assert labels == [model.classes[p] for p in predictions]  # the run's own predictions, in its precision


@pytest.mark.skipif(AUTO == "fp32", reason="auto is already float32 on this CPU: nothing to fall back from")
def test_a_network_that_cannot_train_in_bf16_falls_back_with_a_note(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id, result = run(RunSpec("fine-tune", "picky", "digits", None, FAST_FT), store)
    assert store.get_run(run_id)["status"] == "finished"
    assert (result.info["precision"], result.info["channels_last"]) == ("fp32", False)
    (note,) = result.info["precision_notes"]
    assert note.startswith("planned bf16 channels_last, ran fp32: the first training step failed (RuntimeError: "
                           "this layer has no reduced-precision backward)")
    assert load_model(run_id, store=store, device="cpu").compute == {"precision": "fp32", "channels_last": False}
    assert np.isfinite(result.epochs[0]["train_loss"])


def _race(bf16_seconds: float, fp32_seconds: float, key: tuple = ()) -> PrecisionRace:
    race = PrecisionRace(Compute("cpu", "bf16", True), key)
    while race.winner is None:
        compute = race.next()
        race.record(compute, time.perf_counter() - (bf16_seconds if compute.precision == "bf16" else fp32_seconds))
    return race


def test_a_network_races_once_a_process_so_a_seed_repeats_its_result():
    key = ("RaceNet", 1234, 16, 64)
    first = _race(0.2, 0.3, key)  # bf16 faster
    second = _race(0.5, 0.3, key)  # timing noise says otherwise: the first decision holds
    assert first.winner.precision == second.winner.precision == "bf16"
    assert _race(0.5, 0.3, ("OtherNet", 1, 16, 64)).winner.precision == "fp32"  # another network races anew


def test_float32_when_asked():
    _, result = run(RunSpec("fine-tune", "plain", "digits", None, {**FAST_FT, "precision": "fp32"}))
    assert result.info["precision"] == "fp32" and result.params["run"]["precision"] == "fp32"


@pytest.mark.parametrize("bf16_seconds, fp32_seconds, winner", [(0.5, 0.3, "fp32"), (0.2, 0.3, "bf16")])
def test_the_race_keeps_the_faster_precision_for_training(bf16_seconds, fp32_seconds, winner):
    race = PrecisionRace(Compute("cpu", "bf16", True))
    ran = []
    while race.winner is None:
        compute = race.next()
        ran.append(compute.precision)
        race.record(compute, time.perf_counter() - (bf16_seconds if compute.precision == "bf16" else fp32_seconds))
    assert ran == ["bf16", "bf16", "fp32", "fp32", "bf16", "fp32"]
    assert (race.winner.precision, race.winner.channels_last) == (winner, True)
    assert bool(race.winner.notes) == (winner == "fp32")
    if winner == "fp32":
        assert "bf16 training steps were slower here (0.5" in race.winner.notes[0]
    assert PrecisionRace.applies(Compute("cpu", "bf16", True), 12)
    assert not PrecisionRace.applies(Compute("cpu", "bf16", True), 11)
    assert not PrecisionRace.applies(Compute("cpu", "fp32", True), 100)


@pytest.mark.skipif(AUTO == "fp32", reason="auto is already float32 on this CPU: nothing to race")
def test_a_long_enough_run_races_and_records_the_winner():
    _, result = run(RunSpec("fine-tune", "plain", "digits", None, {**FAST_FT, "max_train": 120, "epochs": 2}))
    assert result.info["precision"] in ("bf16", "fp32") and result.info["channels_last"]
    if result.info["precision"] == "fp32":
        assert "bf16 training steps were slower here" in result.info["precision_notes"][0]
    else:
        assert "precision_notes" not in result.info
