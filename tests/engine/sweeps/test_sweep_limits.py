"""Sweeps are counted before they are expanded: a grid past its cap is refused at once, whatever its size."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from toptune.cli import app
from toptune.errors import ParamError
from toptune.sweeps.spec import DEFAULT_MAX_CELLS, SweepSpec

BASE = {"datasets": ["digits"], "backbones": ["efficientnet_lite0"]}


@pytest.mark.parametrize("extra", [
    {"seeds": 100_000_000},
    {"seeds": 2**31 - 1},
    {"seeds": 3, "params": {key: list(range(1, 101)) for key in  # 10^12 cells, on paper
                            ("classifier.M", "classifier.lam", "classifier.sigma", "classifier.maxiter",
                             "classifier.tol", "max_train")}},
    {"datasets": [f"d{i}" for i in range(200)], "backbones": [f"b{i}" for i in range(200)]},
])
def test_huge_grids_are_refused_before_anything_is_expanded(extra):
    SweepSpec.from_dict(BASE).count_cells()  # plugins imported: the time below is the counting alone
    t0 = time.monotonic()
    with pytest.raises(ParamError, match=f"more than the cap of {DEFAULT_MAX_CELLS:,}"):
        SweepSpec.from_dict({**BASE, **extra})
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("extra, message", [
    ({"seeds": -1}, "'seeds' must be from 1"), ({"seeds": 0}, "'seeds' must be from 1"),
    ({"seeds": 2.5}, "whole number"), ({"seeds": True}, "whole number"), ({"seeds": [3, 3]}, "twice"),
    ({"seeds": [-1]}, "'seeds' must be from 0"), ({"seeds": [2**40]}, "'seeds' must be from 0"),
    ({"seeds": []}, "'seeds' is empty"), ({"max_cells": 0}, "'max_cells' must be from 1"),
    ({"max_cells": "many"}, "whole number"), ({"datasets": [3]}, "must be names"), ({"params": [1]}, "table"),
])
def test_bad_counts_are_refused(extra, message):
    with pytest.raises(ParamError, match=message):
        SweepSpec.from_dict({**BASE, **extra})


@pytest.mark.parametrize("data", [
    {**BASE, "seeds": 3},
    {**BASE, "classifiers": ["kernel", "ridge"], "seeds": [0, 5], "params": {"classifier.M": [100, 200, 200]}},
    {**BASE, "methods": ["top-tune", "fine-tune"], "classifiers": ["ridge", "kernel"], "seeds": 2,
     "params": {"max_train": [100, 200]}, "method_params": {"fine-tune": {"epochs": [1, 2, 3]}}},
])
def test_the_count_is_exact(data):
    spec = SweepSpec.from_dict(data)
    assert spec.count_cells() == len(spec.cells())


def test_the_cap_can_be_raised_and_does_not_change_the_sweep(tmp_path):
    big = {**BASE, "seeds": 12}
    with pytest.raises(ParamError, match="cap of 10"):
        SweepSpec.from_dict(big, max_cells=10)
    spec = SweepSpec.from_dict({**big, "max_cells": 10}, max_cells=20)
    assert len(spec.cells()) == 12 and spec.max_cells == 20
    assert spec.sweep_id == SweepSpec.from_dict(big).sweep_id  # a cap is no part of the grid
    path = tmp_path / "grid.toml"
    path.write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseeds = 12\nmax_cells = 5\n')
    with pytest.raises(ParamError, match="cap of 5"):
        SweepSpec.from_file(path)
    assert len(SweepSpec.from_file(path, max_cells=12).cells()) == 12


def test_the_cli_refuses_past_the_cap_and_takes_max_cells(tmp_path):
    args = ["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--seeds", "30", "--dry-run",
            "--store", str(tmp_path / "s.duckdb")]
    refused = CliRunner().invoke(app, [*args, "--max-cells", "20"])
    assert refused.exit_code == 2 and "more than the cap of 20" in refused.output
    shown = CliRunner().invoke(app, [*args, "--max-cells", "30"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0 and "30 cells" in shown.output, shown.output
    assert not (tmp_path / "s.duckdb").exists()  # a dry run writes nothing
