"""The Launch page's sweep form counts a grid instead of expanding it in the server process."""

from __future__ import annotations

import pytest

from toptune.dashboard.launch import sweep as launch_sweep
from toptune.errors import ParamError
from toptune.sweeps.spec import SweepSpec


def test_a_grid_past_the_cap_is_refused_without_being_made(monkeypatch):
    made = []
    monkeypatch.setattr(SweepSpec, "iter_cells", lambda self: made.append(self) or iter(()))
    with pytest.raises(ParamError, match="more than the cap of 10,000"):
        launch_sweep.payload(launch_sweep.from_form(["digits"], ["efficientnet_lite0"], ["top-tune"], ["ridge"],
                                                    100_000_000))
    assert made == []


def test_a_large_raised_grid_is_checked_one_cell_at_a_time_up_to_a_bound(monkeypatch):
    monkeypatch.setattr(launch_sweep, "CHECKED_CELLS", 50)
    seen = []
    real = SweepSpec.iter_cells

    def counted(self):
        for cell in real(self):
            seen.append(cell)
            yield cell

    monkeypatch.setattr(SweepSpec, "iter_cells", counted)
    spec = launch_sweep.from_form(["digits"], ["efficientnet_lite0"], ["top-tune"], ["ridge"], 20_000,
                                  "classifier.alpha=0.1,1", max_cells=40_000)
    job, count = launch_sweep.payload(spec)
    assert count == 40_000 and len(seen) == 50 and job["max_cells"] == 40_000
    bad = launch_sweep.from_form(["digits"], ["efficientnet_lite0"], ["top-tune"], ["ridge"], 20_000,
                                 "classifier.alpha=-1", max_cells=40_000)
    with pytest.raises(ParamError, match="50 of 20000 cells \\(of the first 50 checked\\) are invalid"):
        launch_sweep.payload(bad)
