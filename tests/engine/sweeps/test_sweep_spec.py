"""Sweep specs: files, grids, per-cell params, stable ids."""

import pytest

from toptune.errors import ParamError
from toptune.sweeps.spec import SweepSpec

TOML = '''
name = "grid"
datasets = ["digits"]
backbones = ["efficientnet_lite0"]
methods = ["top-tune", "fine-tune"]
classifiers = ["kernel", "ridge"]
seeds = 2
[params]
max_train = 100
"classifier.M" = [10, 20]
[method_params.fine-tune]
epochs = 1
'''


def test_toml_and_yaml_expand_to_the_same_grid(tmp_path):
    (tmp_path / "s.toml").write_text(TOML)
    (tmp_path / "s.yaml").write_text(
        "name: other-name\ndatasets: [digits]\nbackbones: [efficientnet_lite0]\nmethods: [top-tune, fine-tune]\n"
        "classifiers: [kernel, ridge]\nseeds: [0, 1]\nparams: {max_train: 100, classifier.M: [10, 20]}\n"
        "method_params: {fine-tune: {epochs: 1}}\n")
    a, b = SweepSpec.from_file(tmp_path / "s.toml"), SweepSpec.from_file(tmp_path / "s.yaml")
    assert a.sweep_id == b.sweep_id  # the name is a label, not part of the grid
    cells = a.cells()
    assert [c.key for c in cells] == [c.key for c in b.cells()]
    # kernel: 2 values of M × 2 seeds; ridge (no M): 2 seeds; fine-tune (no classifier, no M): 2 seeds
    shape = [(c.spec.method, c.spec.classifier, c.spec.params.get("classifier.M"), c.spec.seed) for c in cells]
    assert shape == [("top-tune", "kernel", 10, 0), ("top-tune", "kernel", 10, 1), ("top-tune", "kernel", 20, 0),
                     ("top-tune", "kernel", 20, 1), ("top-tune", "ridge", None, 0), ("top-tune", "ridge", None, 1),
                     ("fine-tune", None, None, 0), ("fine-tune", None, None, 1)]
    assert all(c.spec.params.get("epochs") == (1 if c.spec.method == "fine-tune" else None) for c in cells)
    assert len({c.key for c in cells}) == len(cells)


def test_changing_the_grid_changes_the_sweep_id():
    base = {"datasets": ["digits"], "backbones": ["efficientnet_lite0"]}
    assert SweepSpec.from_dict(base).sweep_id != SweepSpec.from_dict({**base, "seeds": 2}).sweep_id


@pytest.mark.parametrize("data, message", [
    ({"backbones": ["b"]}, "'datasets' is required"),
    ({"datasets": [], "backbones": ["b"]}, "'datasets' is empty"),
    ({"datasets": ["digits"], "backbones": ["b"], "methods": ["dream"]}, "unknown method 'dream'"),
    ({"datasets": ["digits"], "backbones": ["b"], "colour": 1}, "unknown field"),
])
def test_bad_specs(data, message):
    with pytest.raises(ParamError, match=message):
        SweepSpec.from_dict(data)


def test_a_parameter_no_cell_takes_is_an_error(tmp_path):
    spec = SweepSpec.from_dict({"datasets": ["digits"], "backbones": ["efficientnet_lite0"],
                                "classifiers": ["ridge"], "params": {"learning_rate": [1, 2]}})
    with pytest.raises(ParamError, match="learning_rate apply to no cell"):
        spec.cells()
    (tmp_path / "bad.toml").write_text("datasets = [")
    with pytest.raises(ParamError, match="cannot parse sweep spec"):
        SweepSpec.from_file(tmp_path / "bad.toml")
    with pytest.raises(ParamError, match="not found"):
        SweepSpec.from_file(tmp_path / "missing.toml")


def test_paper_preset_offline_stops_before_any_run_naming_every_missing_dataset(tmp_path, monkeypatch, no_network):
    from typer.testing import CliRunner

    from toptune.cli import app
    from toptune.sweeps.spec import PAPER_PRESET

    monkeypatch.setenv("TOPTUNE_DATA_DIR", str(tmp_path / "data"))
    store = tmp_path / "s.duckdb"
    res = CliRunner().invoke(app, ["sweep", "--preset", "paper", "--store", str(store), "-q"],
                             env={"COLUMNS": "400"})
    assert res.exit_code != 0 and "Traceback" not in res.output
    message = " ".join(res.output.split())
    assert f"{len(PAPER_PRESET['datasets'])} of {len(PAPER_PRESET['datasets'])} datasets are not available" in message
    assert all(name in message for name in PAPER_PRESET["datasets"])
    assert no_network  # each dataset really tried its download
    assert not store.exists()  # nothing was started, so nothing was written
