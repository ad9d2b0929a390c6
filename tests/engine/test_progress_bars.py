"""Progress bars say something true: a step of unknown size says it is done, a solve that converges early ends full."""

from __future__ import annotations

import torch

from toptune.progress import Progress, TqdmProgress, reporting
from toptune.solvers import conjugate_gradient


def test_a_stage_of_unknown_size_that_counted_nothing_says_done(capsys):
    bars = TqdmProgress(disable=False)
    with bars.stage("fit ridge", unit="it"):
        pass
    said = capsys.readouterr().err
    assert said.split("\r")[-1].startswith("fit ridge: done in") and "0it" not in said
    with bars.stage("extract train", 3):
        bars.advance(3)
    assert "3/3" in capsys.readouterr().err


def test_bars_off_a_terminal_stay_silent_and_do_not_fail(capsys):
    bars = TqdmProgress()  # tqdm switches itself off when stderr is not a terminal, as under pytest
    for total in (None, 3):
        with bars.stage("extract train", total):
            bars.advance(2)
            bars.set_total(3)
            bars.postfix("loss 0.1")
    assert capsys.readouterr().err == ""


class Counting(Progress):
    def __init__(self):
        self.totals, self.steps = [], 0

    def set_total(self, total):
        self.totals.append(total)

    def advance(self, n=1):
        self.steps += n


def test_a_solve_that_converges_early_completes_its_bar():
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(30, 30, generator=rng, dtype=torch.float64)
    system = a @ a.T + 30 * torch.eye(30, dtype=torch.float64)  # well conditioned: converges in few steps
    b = torch.randn(30, 2, generator=rng, dtype=torch.float64)
    progress = Counting()
    with reporting(progress):
        x, iterations = conjugate_gradient(lambda p: system @ p, b, maxiter=500, tol=1e-8)
    assert iterations < 500 and torch.allclose(system @ x, b, atol=1e-6)
    assert progress.totals == [500, iterations] and progress.steps == iterations  # full: steps == total
