"""bench/throughput.py and bench/gpu.py end to end at small sizes on this machine: every row is printed with
figures that parse, ratios consistent with the rows, and verdicts that follow from the figures."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def script(name: str, *args: str, timeout: int = 600) -> str:
    result = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_throughput_prints_each_row_against_the_bare_forward_and_the_ceiling(tmp_path):
    out = script("throughput.py", "--images", "24", "--image-size", "48", "--train-size", "48", "--batch", "8",
                 "--rounds", "2")
    rows = {}
    for line in out.splitlines():
        found = re.match(r"\| ([^|*]+?) \| ([\d.]+) \| ([\d.]+)× \| (\d+) % \| ([\d.]+) \|$", line)
        if found:
            rows[found[1]] = [float(v) for v in found.groups()[1:]]
    assert len(rows) == 8, out
    for group in (list(rows.items())[:4], list(rows.items())[4:]):
        (naive, first), (toptune, mine), *bare = group
        assert "naive" in naive and "toptune" in toptune and all("bare" in name for name, _ in bare)
        (ceiling, top), = [(name, row) for name, row in bare if name.endswith("(ceiling)")]
        assert first[1] == 1.0 and top[2] == 100 and top[0] == max(row[0] for _, row in bare)
        for rate, ratio, share, cold in (first, mine, *(row for _, row in bare)):
            assert rate > 0 and cold > 0
            assert abs(ratio - rate / first[0]) <= 0.02 * max(1.0, ratio)  # ratios are the rows' own
            assert abs(share - 100 * rate / top[0]) <= 1.5
    verdicts = re.findall(r"toptune ([\d.]+)× .*?\(target ≥ 1\.7×: (met|NOT met)\), (\d+) % of the ceiling "
                          r"\(target ≥ 90 %: (met|NOT met)\)", out)
    assert len(verdicts) == 2, out
    for ratio, ratio_verdict, share, share_verdict in verdicts:
        assert ratio_verdict == ("met" if float(ratio) >= 1.7 else "NOT met") or abs(float(ratio) - 1.7) < 0.006
        assert share_verdict == ("met" if int(share) >= 90 else "NOT met") or int(share) in (89, 90)
    assert re.search(r"load average [\d.]+ [\d.]+ [\d.]+ before", out)


def test_gpu_bench_runs_every_step_on_this_machine():
    out = script("gpu.py", "--small", "--skip", "sweep")
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| step")]
    steps = [line.split(" | ")[0].strip("| ") for line in table]
    assert steps == ["extraction", "fine-tuning epoch", "kernel fit", "ONNX export + predict"], out
    for line in table:
        seconds, peak = line.split(" | ")[2], line.split(" | ")[4]
        assert float(seconds) > 0 and re.fullmatch(r"[\d,]+ MB", peak), line
    assert re.search(r"CPU/cpu agreement 100\.00 %", out)  # the same model on the same device: identical
    assert re.search(r"ONNX Runtime agreement \d+\.\d\d %", out)
