"""The answer at a glance: verdict cards with the settings they hold for, in `compare`, `report` and finished
jobs, and a job's progress over all of its runs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.support.plugins import tiny_backbones
from tests.support.research import StagedNet
from toptune import jobs
from toptune.cli import app
from toptune.progress import Progress
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.studies import Cell
from toptune.studies import compare as cmp

FAST = {"max_train": 60, "max_test": 30, "image_size": 16, "batch_size": 16}


@pytest.fixture(autouse=True)
def tiny():
    with tiny_backbones(tiny=StagedNet):
        yield


def comparison(label, top_acc, fine_acc, top_s, fine_s, size=224, epochs=3, preset="cpu", seeds=1, minutes=0,
               backbone="efficientnet_lite0", cid="c"):
    def cell(acc, seconds):
        return Cell(seeds, {"accuracy": acc, "train_time_s": seconds}, {"accuracy": 0.0, "train_time_s": 0.0})

    return cmp.Comparison(cid, "imagefolder", backbone, "kernel", cell(top_acc, top_s), cell(fine_acc, fine_s),
                          [f"{cid}-top", f"{cid}-fine"], datetime(2025, 1, 1) + timedelta(minutes=minutes), None,
                          label, size, size, epochs, preset, seeds)


def test_a_card_says_the_verdict_with_the_settings_it_holds_for():
    (card,) = cmp.verdict_cards([comparison("photos", 0.936, 0.937, 10.0, 97.0)])
    assert card.text == ("photos · efficientnet_lite0 · 224 px: top-tune (kernel) 0.936 vs fine-tune 0.937 "
                         "(3 epochs, 1 seed, cpu preset): same, 9.7× faster")
    assert (card.dataset, card.verdict, card.image_size, card.epochs, card.preset, card.seeds) == \
        ("photos", "same", 224, 3, "cpu", 1)
    better = cmp.verdict_cards([comparison("flowers", 0.95, 0.92, 2.0, 6.4, size=128, epochs=15, preset="gpu",
                                           seeds=3)])[0]
    assert better.text.endswith("(15 epochs, 3 seeds, gpu preset): top-tuning better by 3.0 points, 3.2× faster")
    slower = cmp.verdict_cards([comparison("x", 0.5, 0.6, 14.0, 10.0)])[0]
    assert slower.answer == "fine-tuning better by 10.0 points, 1.4× slower"
    mixed = comparison("x", 0.5, 0.5, 1.0, 1.0)
    mixed.fine_image_size = 128
    assert " · top 224 px / fine 128 px: " in cmp.verdict_cards([mixed])[0].text


def test_one_card_per_dataset_and_setup_from_its_newest_comparison():
    items = [comparison("photos", 0.90, 0.95, 1.0, 10.0, minutes=0, cid="old"),
             comparison("photos", 0.94, 0.94, 1.0, 10.0, minutes=5, cid="new"),
             comparison("photos", 0.80, 0.85, 1.0, 10.0, size=128, minutes=1, cid="small"),
             comparison("digits", 0.99, 0.98, 1.0, 10.0, minutes=2, cid="digits")]
    cards = cmp.verdict_cards(items)
    assert [(c.dataset, c.comparison_id, c.comparisons) for c in cards] == \
        [("digits", "digits", 1), ("photos", "new", 2), ("photos", "small", 1)]
    by_setup = {a.group: a.n for a in cmp.aggregate(items, by="setup")}
    assert by_setup == {"efficientnet_lite0 · 224 px · 3 epochs · cpu preset": 3,
                        "efficientnet_lite0 · 128 px · 3 epochs · cpu preset": 1, "all": 4}


class Overall(Progress):
    def __init__(self):
        self.seen = []

    def overall(self, done, total):
        self.seen.append((done, total))


def test_compare_ends_with_its_card_and_report_starts_with_the_cards(tmp_path):
    store = tmp_path / "s.duckdb"
    args = ["compare", "--backbone", "tiny", "--classifier", "ridge", "--preset", "cpu", "--fine-param", "epochs=1",
            *[f"--param={k}={v}" for k, v in FAST.items()], "--store", str(store), "-q"]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    (card,) = cmp.verdict_cards(cmp.comparisons(Store(store)))
    assert (card.dataset, card.image_size, card.epochs, card.preset, card.seeds) == ("digits", 16, 1, "cpu", 1)
    said = " ".join(res.output.split())  # the card wraps at the terminal's width
    assert said.index("the answer") < said.index(card.text) and "16 px · 1 epoch, 1 seed, cpu preset" in said
    assert all(len(line) <= 100 for line in res.output.splitlines())
    res = CliRunner().invoke(app, ["report", "--store", str(store)], env={"COLUMNS": "80"})
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and said.startswith("verdicts") and said.index(card.text) < said.index("comparisons")
    assert all(len(line) <= 80 for line in res.output.splitlines())


def test_a_study_reports_its_progress_over_all_its_runs_and_a_finished_job_its_answer(tmp_path):
    store = tmp_path / "s.duckdb"
    progress = Overall()
    specs = cmp.plan("digits", "tiny", "ridge", seeds=1, shared=FAST, fine={"epochs": 1}, preset="cpu")
    cmp.compare(specs, Store(store), progress=progress)
    assert progress.seen == [(0, 2), (1, 2), (2, 2)]
    assert {r["info"]["plan"]["preset"] for r in Store(store).runs()} == {"cpu"}

    study = jobs.submit(store, "compare", {"dataset": "digits", "backbone": "tiny", "classifier": "ridge",
                                           "seeds": 1, "preset": "cpu", "shared": FAST, "fine": {"epochs": 1}})
    single = jobs.submit(store, "run", RunSpec(backbone="tiny", classifier="ridge", params=FAST).to_dict())
    assert jobs.same_jobs(store, "run", RunSpec(backbone="tiny", classifier="ridge", params=FAST).to_dict())
    assert jobs.work(store, idle_exit_s=0.3) == 2  # in this process, where the tiny backbone is registered
    assert not jobs.same_jobs(store, "run", RunSpec(backbone="tiny", classifier="ridge", params=FAST).to_dict())
    done = jobs.get_job(store, study)
    assert done["state"] == "finished" and len(done["run_ids"]) == 2
    newest = max(cmp.comparisons(Store(store)), key=lambda c: c.created_at)
    assert done["answer"] == cmp.verdict_cards([newest])[0].text
    assert done["progress"]["job"] == {"done": 2, "total": 2}
    assert done["started"] - 1 <= done["progress"]["started_at"] <= done["ended"]
    run = jobs.get_job(store, single)
    assert run["accuracy"] == Store(store).get_run(run["run_ids"][0])["accuracy"]
    assert json.loads((jobs.jobs_dir(store) / f"{single}.progress.json").read_text())["job"]["total"] == 1
