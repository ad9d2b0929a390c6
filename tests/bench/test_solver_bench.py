"""bench/solver.py end to end on a small synthetic problem: every method's row and the target verdicts."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "solver.py"


def test_solver_bench_prints_every_method_and_the_targets():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--skip-digits", "--skip-scaling", "--n", "2000", "--d", "64", "--repeat", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "n_train=2,000" in out and "d=64" in out
    for method in ("toptune kernel ", "maxiter=10", "sigma/lam=auto", "Nystroem + RidgeClassifier",
                   "LogisticRegression", "SVC (RBF"):
        row = next(line for line in out.splitlines() if method in line and re.search(r"\d\.\d{4}\s", line))
        fit_s, ratio, accuracy = (float(v) for v in row.split()[-4:-1])
        assert fit_s > 0 and ratio > 0 and 0.0 <= accuracy <= 1.0, row
    verdicts = re.findall(r"(\d+\.\d)× faster than Nystroem .*?: (met|NOT met); ([+-]\d+\.\d\d) points vs Logistic"
                          r"Regression \(≥ 0\): (met|NOT met)", out)
    assert len(verdicts) == 1, out
    speed_up, speed_verdict, lr_points, lr_verdict = verdicts[0]
    if float(speed_up) < 4.95:  # printed to one decimal
        assert speed_verdict == "NOT met"
    assert lr_verdict == ("met" if float(lr_points) >= 0 else "NOT met")
