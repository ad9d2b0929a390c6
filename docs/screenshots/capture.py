"""Regenerate docs/screenshots/compare.png and run-comparison.png from real comparisons.

    python docs/screenshots/capture.py [--keep DIR | --store PATH]

Runs `toptune compare` with the CPU preset (128 px, 3 fine-tuning epochs) on 600 training and 300 test
images, about ten minutes on two CPU cores, for a few backbones, classifiers and datasets into a fresh
store, serves it with `toptune dashboard` and photographs, in Debian's headless Chromium, the Compare page
and the run comparison of two fine-tuning runs (EfficientNet-Lite0 and -Lite1 on digits). `--keep DIR`
leaves the store there, to browse it afterwards; `--store PATH` photographs a store made earlier instead of
running anything.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import browser  # noqa: E402  (the repository root goes on sys.path first)

# Large enough that fine-tuning is trained (about 0.9 accuracy on digits), so the verdicts mean something.
SMALL = ["--preset", "cpu", "--param", "max_train=600", "--param", "max_test=300"]
# (dataset, backbone, classifier): two classifiers and two backbones on digits, and digits under a
# covariate shift when the example plugin distribution is installed.
SETUPS = [("digits", "efficientnet_lite0", "kernel"), ("digits", "efficientnet_lite0", "ridge"),
          ("digits", "efficientnet_lite1", "kernel"), ("digits-shift", "efficientnet_lite0", "kernel")]


def _has_example_plugin() -> bool:
    try:
        importlib.metadata.distribution("toptune-plugin-example")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def compare(store: Path, cache: Path) -> None:
    for dataset, backbone, classifier in SETUPS:
        if dataset == "digits-shift" and not _has_example_plugin():
            print("skipping digits-shift: pip install ./examples/toptune-plugin-example", flush=True)
            continue
        print(f"toptune compare: {dataset} · {backbone} · {classifier}", flush=True)
        subprocess.run([sys.executable, "-m", "toptune.cli", "compare", "--dataset", dataset, "--backbone", backbone,
                        "--classifier", classifier, *SMALL, "--store", str(store), "--cache-dir", str(cache),
                        "--quiet"], check=True)


def fine_tuning_runs(store: Path) -> list[str]:
    """Two fine-tuning runs on digits with different backbones, newest first: what run-comparison.png shows."""
    from toptune.store import Store

    by_backbone = {}
    for run in Store(store).runs(status="finished", method="fine-tune", dataset="digits"):
        by_backbone.setdefault(run["backbone"], run["id"])
    return sorted(by_backbone.values())[:2]


def photograph(store: Path, out: Path, log: Path) -> None:
    """The Compare page (``out``), and two fine-tuning runs side by side (run-comparison.png beside it)."""
    with browser.dashboard(store, log) as url, browser.chromium(width=1400, height=1000) as page:
        browser.open_page(page, url, "compare")
        page.locator(".js-plotly-plot").nth(2).wait_for()
        if browser.exceptions(page):
            raise SystemExit(f"the Compare page failed: {browser.exceptions(page)}")
        browser.screenshot(page, out)
        runs = fine_tuning_runs(store)
        if len(runs) < 2:
            print("skipping run-comparison.png: it needs fine-tuning runs of two backbones on digits", flush=True)
            return
        browser.open_page(page, url, "run_comparison", "?" + "&".join(f"runs={r}" for r in runs))
        page.locator(".js-plotly-plot").nth(1).wait_for()
        if browser.exceptions(page):
            raise SystemExit(f"the run comparison failed: {browser.exceptions(page)}")
        browser.screenshot(page, out.with_name("run-comparison.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder to keep the store in")
    parser.add_argument("--store", type=Path, help="an existing store to photograph, running nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            folder = args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            store = folder / "compare.duckdb"
            compare(store, Path(tmp) / "features")
        out = ROOT / "docs" / "screenshots" / "compare.png"
        photograph(store, out, Path(tmp) / "server.log")
        print(f"wrote {out} and {out.with_name('run-comparison.png')}")


if __name__ == "__main__":
    main()
