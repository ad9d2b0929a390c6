"""The study's dataset catalogue: every entry reachable as it says, presence read from the disk only."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from toptune import catalogue, registry
from toptune.cli import app
from toptune.sweeps.spec import PAPER_PRESET, SweepSpec


def test_entries_name_a_plugin_a_hub_id_or_a_page_with_a_layout():
    names = [e.name for e in catalogue.ENTRIES]
    assert len(names) == len(set(names)) and len(names) <= catalogue.STUDY_SIZE
    installed = set(registry.list_datasets())
    for e in catalogue.ENTRIES:
        assert e.n_classes >= 2 and (e.n_train or 0) > 0
        if e.source == catalogue.TORCHVISION:
            assert e.where in installed and e.folder
        elif e.source == catalogue.HUB:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", e.where) and e.dataset == f"hf:{e.where}"
        else:
            assert e.source == catalogue.MANUAL and e.where.startswith("https://") and "<class>" in e.layout
            assert e.dataset is None and "--dataset imagefolder --data" in e.how()


def test_the_paper_sweep_covers_every_entry_that_downloads_itself():
    assert sorted(PAPER_PRESET["datasets"]) == sorted(catalogue.sweep_datasets())
    spec = SweepSpec.from_dict(PAPER_PRESET)
    cells = spec.cells()  # every name resolves to a plugin (hf:<id> sets the hf plugin's path)
    assert {c.spec.dataset for c in cells} == set(catalogue.sweep_datasets())
    beans = registry.resolve_params("dataset", "hf:AI-Lab-Makerere/beans")
    assert beans["path"] == "AI-Lab-Makerere/beans"


def test_presence_is_read_from_the_data_folders_and_the_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    by_name = {e.name: e for e in catalogue.ENTRIES}
    assert not any(r["present"] for r in catalogue.rows())
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    assert not catalogue.present(by_name["cifar10"])  # an empty folder is not a dataset
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
    (tmp_path / "hf" / "AI-Lab-Makerere___beans" / "default").mkdir(parents=True)
    (tmp_path / "data" / "cassava" / "train").mkdir(parents=True)
    present = {r["name"] for r in catalogue.rows() if r["present"]}
    assert present == {"cifar10", "beans", "cassava"}
    assert str(tmp_path / "data" / "cassava") in by_name["cassava"].how()


def test_datasets_paper_prints_every_entry_and_json(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPTUNE_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(app, ["datasets", "--paper"], env={"COLUMNS": "240"})
    assert res.exit_code == 0, res.output
    assert f"{len(catalogue.ENTRIES)} catalogued of {catalogue.STUDY_SIZE}" in " ".join(res.output.split())
    for e in catalogue.ENTRIES:
        assert e.name in res.output
    assert "hf:AI-Lab-Makerere/beans" in res.output
    res = CliRunner().invoke(app, ["datasets", "--paper", "--json"])
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == [e.name for e in catalogue.ENTRIES]
    assert {r["present"] for r in rows} == {False}
