"""How the CLI and the dashboard hold up as the store grows: 1k, 10k and 100k runs.

    python bench/scale.py [--sizes 1000,10000,100000] [--pages runs,compare,...] [--keep DIR]

It first records a small set of real runs (a comparison with two classifiers, a robustness study, a failed
run; EfficientNet-Lite0 on digits at 64 px), then grows the store by copying them with fresh ids (each copy of
a comparison or study gets fresh link ids, so comparisons stay complete). At each size it times, in
separate processes as a user would meet them: ``toptune runs``, ``toptune report``, and each dashboard page's
time to first content in Debian's headless Chromium (its first table, chart or metric visible; for Runs and
Compare also the time until the page's script run finished, every chart sent), plus the Streamlit server's
resident memory. It prints one table, growth visible along N.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from math import nan
from pathlib import Path

import toptune  # noqa: F401  (before torch)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = ("runs", "compare", "clustering", "sweeps", "robustness", "selection", "predict", "launch", "sql", "plugins")
# What marks a page's first content: its first table, chart, metric or info box.
CONTENT = ('[data-testid="stDataFrame"], .js-plotly-plot, [data-testid="stMetric"], [data-testid="stAlert"], '
           '[data-testid="stForm"], textarea')
# Pages whose whole run (every chart drawn) is timed too, besides their first content.
DONE_TOO = ("runs", "compare")
TARGETS = {"toptune runs": 2.0, "toptune report": 3.0, "runs": 3.0, "compare": 5.0}
OTHER_PAGES_TARGET = 5.0
LINKS = ("comparison_id", "study_id")


def seed_store(path: Path) -> None:
    """The real runs every copy is made of."""
    from toptune.errors import ToptuneError
    from toptune.features.cache import FeatureCache
    from toptune.runner import run
    from toptune.spec import RunSpec
    from toptune.store import Store
    from toptune.studies import compare as cmp
    from toptune.studies import robustness as rob

    store, cache = Store(path), FeatureCache(path.parent / "features")
    tiny = {"max_train": 200, "max_test": 100, "image_size": 64}
    for classifier in ("kernel", "ridge"):
        cmp.compare(cmp.plan("digits", "efficientnet_lite0", classifier, 1, tiny, fine={"epochs": 1},
                             preset="cpu"), store, cache=cache)
    rob.STUDY.run(rob.plan("digits", "efficientnet_lite0", "awgn", [0.0, 0.1], ["ridge"], shared=tiny,
                           preset="cpu"), store, cache=cache)
    try:
        run(RunSpec("top-tune", "efficientnet_lite0", "imagefolder", "ridge",
                    {**tiny, "dataset.path": str(path.parent / "missing")}), store, cache=cache)
    except ToptuneError:
        pass  # a failed run belongs in a real store too


def grow(path: Path, target: int) -> int:
    """Copy the seed runs (fresh ids, fresh link ids per copy) until the store holds ``target`` runs."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        seed = con.execute("SELECT count(*) FROM runs WHERE id NOT LIKE 'copy-%'").fetchone()[0]
        total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        copy = con.execute("SELECT coalesce(max(CAST(split_part(id, '-', 2) AS INTEGER)), 0) FROM runs "
                           "WHERE id LIKE 'copy-%'").fetchone()[0]
        while total < target:
            batch = min((target - total) // seed + 1, max(1, total // seed))
            links = ", ".join(f"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || '-' || k END AS {c}" for c in LINKS)
            columns = [r[0] for r in con.execute("DESCRIBE runs").fetchall()]
            select = ", ".join(
                "'copy-' || k || '-' || id AS id" if c == "id" else
                f"{c} + INTERVAL (k) SECOND AS {c}" if c == "created_at" else c for c in columns
                if c not in LINKS)
            con.execute(f"""INSERT INTO runs ({", ".join(c for c in columns if c not in LINKS)}, {", ".join(LINKS)})
                SELECT {select}, {links} FROM (SELECT *, CAST(k AS VARCHAR) AS k FROM runs
                    CROSS JOIN range({copy + 1}, {copy + 1 + batch}) AS r(k) WHERE id NOT LIKE 'copy-%')""")
            copy += batch
            total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        con.execute("DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE id LIKE 'copy-%' "
                    f"ORDER BY created_at DESC LIMIT {total - target})")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()


def time_command(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toptune.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def time_pages(store: Path, pages: list[str], log: Path) -> dict:
    import psutil

    from tests.support import browser

    out = {}
    with browser.dashboard(store, log) as url, browser.chromium() as page:
        browser.open_page(page, url, "plugins")  # a first load warms the server's imports
        for name in pages:
            t0 = time.perf_counter()
            page.goto(f"{url}/{'' if name == 'runs' else name}")
            try:
                page.locator(CONTENT).filter(visible=True).first.wait_for()  # hidden tabs hold some too
                out[name] = time.perf_counter() - t0
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
                if name in DONE_TOO:
                    out[f"{name} done"] = time.perf_counter() - t0
            except Exception:  # noqa: BLE001 - one page failing must not hide the others' figures
                out[name] = float("nan")
                print(f"{name}: no content within the timeout; {browser.exceptions(page)[:1]}", flush=True)
        server = next(p for p in psutil.process_iter(["cmdline"]) if "streamlit" in " ".join(p.info["cmdline"] or []))
        out["server MB"] = server.memory_info().rss / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--keep", type=Path, help="keep the stores in this folder (reused when there)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pages = [p for p in args.pages.split(",") if p]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="toptune-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "scale.duckdb"
    if not store.exists():
        print("recording the seed runs …", flush=True)
        seed_store(store)
    rows = {}
    for n in sizes:
        grown = grow(store, n)
        found = {"toptune runs": time_command("runs", "--store", str(store)),
                 "toptune report": time_command("report", "--store", str(store))}
        found.update(time_pages(store, pages, folder / f"server-{n}.log"))
        rows[grown] = found
        print(f"{grown} runs: " + ", ".join(f"{k} {v:.1f}" for k, v in found.items()), flush=True)
    keys = list(dict.fromkeys(k for found in rows.values() for k in found))
    print("\n| runs | " + " | ".join(keys) + " |")
    print("|---:|" + "---:|" * len(keys))
    for n, found in rows.items():
        cells = (f"{found.get(k, nan):.0f}" if k == "server MB" else f"{found.get(k, nan):.1f} s" for k in keys)
        print(f"| {n:,} | " + " | ".join(cells) + " |")
    print("\ntargets at 100k: " + ", ".join(f"{k} ≤ {v:g} s" for k, v in TARGETS.items()) +
          f", other pages ≤ {OTHER_PAGES_TARGET:g} s, server < 1,024 MB")


if __name__ == "__main__":
    main()
