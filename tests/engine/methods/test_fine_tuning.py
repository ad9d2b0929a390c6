"""Fine-tuning, comparisons and the report, on a tiny in-process backbone so each run takes a second."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.support.plugins import TinyBackbone, registered
from toptune.cli import app
from toptune.errors import ParamError
from toptune.runner import execute, run
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.studies import Cell
from toptune.studies import compare as cmp

TINY = {"max_train": 120, "max_test": 60, "image_size": 16, "batch_size": 16}
FAST_FT = {**TINY, "epochs": 2, "lr": 3e-3, "warmup_epochs": 0.5}


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.block = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.num_features = 16

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        return torch.relu(self.block(x)).mean((2, 3))


@pytest.fixture(autouse=True)
def tiny_backbone():
    class Tiny(TinyBackbone):
        net, digest = TinyNet, "tiny"
        modules: list = []

        def built(self, module):
            Tiny.modules.append((module, {k: v.clone() for k, v in module.state_dict().items()}))

    with registered(**{"tiny-cnn": ("backbone", Tiny)}):
        yield Tiny


def _changed(module, before):
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_fine_tuning_changes_backbone_weights_and_top_tuning_does_not(tiny_backbone, tmp_path):
    execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, FAST_FT))
    module, before = tiny_backbone.modules[-1]
    assert {"stem.weight", "block.weight"} <= _changed(module, before)
    execute(RunSpec("top-tune", "tiny-cnn", "digits", "ridge", {**TINY, "cache": False}))
    module, before = tiny_backbone.modules[-1]
    assert _changed(module, before) == set()  # bit-identical, batch-norm statistics included


def test_partial_fine_tuning_freezes_up_to_the_named_module(tiny_backbone):
    full = execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, FAST_FT))
    part = execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, {**FAST_FT, "freeze_until": "bn"}))
    module, before = tiny_backbone.modules[-1]
    changed = _changed(module, before)
    assert "stem.weight" not in changed and "bn.weight" not in changed and "block.weight" in changed
    assert "bn.running_mean" not in changed and "bn.running_var" not in changed  # frozen statistics too
    assert part.trained_params == full.trained_params - (8 * 3 * 9 + 8 + 8 + 8)
    with pytest.raises(ParamError, match="no module 'blocks.9'"):
        execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, {**FAST_FT, "freeze_until": "blocks.9"}))


def test_same_seed_same_result_on_cpu():
    a = execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, FAST_FT, seed=3))
    b = execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, FAST_FT, seed=3))
    c = execute(RunSpec("fine-tune", "tiny-cnn", "digits", None, FAST_FT, seed=4))
    assert [e["train_loss"] for e in a.epochs] == [e["train_loss"] for e in b.epochs]
    assert np.array_equal(a.y_pred, b.y_pred)
    assert [e["train_loss"] for e in a.epochs] != [e["train_loss"] for e in c.epochs]


def test_epochs_table_and_early_stopping(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    params = {**FAST_FT, "epochs": 6, "val_fraction": 0.2, "patience": 1, "lr": 1e-6, "warmup_epochs": 0}
    run_id, result = run(RunSpec("fine-tune", "tiny-cnn", "digits", None, params), store)
    rows = store.epochs(run_id)
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)) == [e["epoch"] for e in result.epochs]
    assert all(r["train_loss"] > 0 and r["time_s"] > 0 and r["val_accuracy"] is not None for r in rows)
    assert len(rows) < 6  # at lr 1e-6 validation accuracy stalls, so patience 1 stops early
    row = store.get_run(run_id)
    assert row["status"] == "finished" and row["info"]["n_val"] == 24 and row["classifier"] is None
    head = 16 * 10 + 10
    assert row["n_train"] == 96 and row["trained_params"] == sum(p.numel() for p in TinyNet().parameters()) + head
    with pytest.raises(ParamError, match="needs a validation split"):
        run(RunSpec("fine-tune", "tiny-cnn", "digits", None, {**FAST_FT, "patience": 2}), store)


def test_energy_estimate_is_stored_and_labelled(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id, result = run(RunSpec("top-tune", "tiny-cnn", "digits", "ridge",
                                 {**TINY, "cpu_watts_per_core": 20.0, "carbon_intensity": 100.0}), store)
    row = store.get_run(run_id)
    assert row["energy_kwh"] > 0 and row["co2_g"] == pytest.approx(row["energy_kwh"] * 100.0)
    watts = row["energy_kwh"] * 3.6e6 / row["train_time_s"]
    # codecarbon scales the forced per-core power by how busy this process kept the cores, and adds RAM
    assert 0 < watts <= 20.0 * torch.get_num_threads() + 30.0
    assert row["energy_source"].startswith("estimate:") and "100 gCO2e/kWh" in row["energy_source"]


def _folder_with_bad_files(root):
    """Three classes of small photos-like PNGs, plus one file that is no image and two cut short."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.integers(0, 50, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    (root / "class0" / "notes.png").write_bytes(b"not an image at all")
    for name in ("class1/6.png", "class2/7.png"):
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[:-12])  # only the end marker is gone: every pixel still decodes
    return root


def test_fine_tuning_skips_lists_and_counts_unreadable_files_as_top_tuning_does(tmp_path):
    data = {"path": str(_folder_with_bad_files(tmp_path / "pics")), "test_size": 0.5, "batch_size": 8}
    top = execute(RunSpec("top-tune", "tiny-cnn", "imagefolder", "ridge", {**data, "cache": False}))
    fine = execute(RunSpec("fine-tune", "tiny-cnn", "imagefolder", None, {**data, "epochs": 1}))
    assert top.info["skipped_train"] + top.info["skipped_test"] == 3
    for key in ("skipped_train", "skipped_test", "skipped_files"):
        assert fine.info[key] == top.info[key], key
    assert sorted(u["file"] for u in top.info["skipped_files"]) == ["class0/notes.png", "class1/6.png", "class2/7.png"]
    assert all(u["reason"] for u in top.info["skipped_files"])
    assert (fine.n_train, fine.n_test) == (top.n_train, top.n_test)  # readable images only, both methods
    assert top.n_train + top.n_test == 25 - 3 and top.n_train + top.info["skipped_train"] == top.info["n_train"]
    # the size the images were resized to is recorded, the backbone's own when the run set none
    assert top.params["run"]["image_size"] == fine.params["run"]["image_size"] == 16


@pytest.mark.parametrize("delta, expected", [
    (0.0, "same"), (1.0, "same"), (-1.0, "same"), (1.01, "top-tuning better"), (-1.01, "fine-tuning better"),
    (-30.0, "fine-tuning better"),
])
def test_verdict_rule(delta, expected):
    assert cmp.verdict(delta) == expected


def test_compare_links_runs_and_report_aggregates(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    specs = cmp.plan("digits", "tiny-cnn", "ridge", seeds=2, shared=TINY, fine={"epochs": 1}, preset="gpu")
    assert [(s.method, s.seed) for s in specs] == [("top-tune", 0), ("fine-tune", 0), ("top-tune", 1),
                                                   ("fine-tune", 1)]
    c = cmp.compare(specs, store)
    rows = store.runs(comparison_id=c.comparison_id)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    top = [r for r in rows if r["method"] == "top-tune"]
    fine = [r for r in rows if r["method"] == "fine-tune"]
    assert c.top.accuracy == pytest.approx(np.mean([r["accuracy"] for r in top]))
    assert c.top.accuracy_std == pytest.approx(np.std([r["accuracy"] for r in top], ddof=1))
    assert c.speedup == pytest.approx(np.mean([r["train_time_s"] for r in fine]) /
                                      np.mean([r["train_time_s"] for r in top]))
    assert c.delta_points == pytest.approx(100 * (c.top.accuracy - c.fine.accuracy))
    assert {r["n_test"] for r in rows} == {60}  # same split and subset for both methods

    cmp.compare(cmp.plan("digits", "tiny-cnn", "ridge", seeds=1, shared=TINY, fine={"epochs": 1}, preset="gpu"),
                store)
    store.start_run({"method": "fine-tune", "dataset": "digits", "comparison_id": "incomplete"})
    items = cmp.comparisons(store)
    assert len(items) == 2  # the incomplete one is left out
    (backbone, overall) = cmp.aggregate(items)
    assert backbone.group == "tiny-cnn" and overall.group == "all" and overall.n == 2
    assert overall.counts == {v: sum(c.verdict == v for c in items) for v in cmp.VERDICTS}
    assert (overall.speedup_min, overall.speedup_max) == (min(c.speedup for c in items),
                                                          max(c.speedup for c in items))

    res = CliRunner().invoke(app, ["report", "--store", str(store.path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "verdicts and speed-ups" in res.output
    assert all(c.comparison_id in res.output and f"{c.speedup:.1f}×" in res.output for c in items)
    res = CliRunner().invoke(app, ["report", "--limit", "1", "--store", str(store.path)], env={"COLUMNS": "200"})
    assert "the newest 1 of 2 comparisons" in res.output and items[-1].comparison_id in res.output
    assert items[0].comparison_id not in res.output  # only listed; the aggregates still count both


def test_aggregate_counts_verdicts_and_speedups_per_backbone_and_overall():
    def comparison(backbone, top_acc, fine_acc, top_s, fine_s):
        def cell(acc, seconds):
            return Cell(1, {"accuracy": acc, "train_time_s": seconds}, {"accuracy": 0.0, "train_time_s": 0.0})

        return cmp.Comparison("c", "d", backbone, "kernel", cell(top_acc, top_s), cell(fine_acc, fine_s))

    items = [comparison("a", 0.900, 0.905, 1.0, 10.0),   # -0.5 points: same, 10x
             comparison("a", 0.800, 0.850, 2.0, 300.0),  # -5 points: fine-tuning better, 150x
             comparison("a", 0.950, 0.930, 4.0, 80.0),   # +2 points: top-tuning better, 20x
             comparison("b", 0.700, 0.690, 1.0, 30.0)]   # +1 point: same (the band is inclusive), 30x
    by = {a.group: a for a in cmp.aggregate(items)}
    assert list(by) == ["a", "b", "all"]
    assert by["a"].counts == {"same": 1, "fine-tuning better": 1, "top-tuning better": 1} and by["a"].n == 3
    assert (by["a"].speedup_min, by["a"].speedup_median, by["a"].speedup_max) == pytest.approx((10, 20, 150))
    assert by["b"].counts == {"same": 1, "fine-tuning better": 0, "top-tuning better": 0}
    assert by["all"].counts == {"same": 2, "fine-tuning better": 1, "top-tuning better": 1}
    assert by["all"].speedup_median == pytest.approx(25.0)


def test_plan_rejects_bad_input_before_running():
    with pytest.raises(ParamError, match="unknown parameter 'M'"):
        cmp.plan("digits", "tiny-cnn", shared={"M": 10}, preset="cpu")  # M is a classifier param: --top-param
    with pytest.raises(ParamError, match="unknown preset"):
        cmp.plan("digits", "tiny-cnn", preset="tpu")
    assert cmp.plan("digits", "tiny-cnn", top={"M": 10}, preset="cpu")[0].params["M"] == 10
