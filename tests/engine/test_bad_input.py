"""A corpus of bad input across the command line: each case exits non-zero with one clear line (no traceback,
no Python exception name) and leaves the store's finished runs and predictions as they were.

Cases go through ``typer.testing.CliRunner`` on the app (fast); a few through a real ``toptune`` process, as
users run it. Every case is refused before anything runs, so the corpus stays quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.plugins import TinyBackbone, registered
from tests.support.stores import contents, filled, one_line
from toptune.cli import app

# A typical message names what is wrong; these would mean a Python exception leaked through as its class.
LEAKS = ("Traceback", "FileNotFoundError", "PermissionError", "UnicodeDecodeError", "TypeError", "ValueError:",
         "KeyError", "AttributeError", "OverflowError", "Exit: 1", "IsADirectoryError", "NotADirectoryError")

# (arguments, exit code, text the one line contains). In arguments, {store} is the filled store, {dir} a folder
# holding the files below, {run} a finished run (no model saved), {failed} a failed one.
CASES = [
    # run: numbers that are not numbers, or out of range
    (["run", "-p", "lam=inf"], 2, "expected a finite number"),
    (["run", "-p", "lam=-inf"], 2, "expected a finite number"),
    (["run", "-p", "lam=nan"], 2, "expected a finite number"),
    (["run", "-p", "sigma=inf"], 2, "expected a finite number"),
    (["run", "-p", "lam=1e400"], 2, "expected a finite number"),
    (["run", "-p", "carbon_intensity=inf"], 2, "expected a finite number"),
    (["run", "-p", "M=1e400"], 2, "expected a finite integer"),
    (["run", "-p", "M=1e20"], 2, "out of range"),
    (["run", "-p", "M=99999999999999999999999"], 2, "out of range"),
    (["run", "-p", "M=2.5"], 2, "expected int or one of ['auto']"),
    (["run", "-p", "M=abc"], 2, "expected int"),
    (["run", "-p", "M=-5"], 2, "must be >= 1"),
    (["run", "-p", "maxiter=0"], 2, "must be >= 1"),
    (["run", "-p", "tol=-1"], 2, "must be >= 0"),
    (["run", "-p", "kernel=nope"], 2, "choose from"),
    (["run", "-p", "device=quantum"], 2, "choose from"),
    (["run", "-p", "standardize=maybe"], 2, "expected bool"),
    (["run", "-p", "split_seed=1e20", "--dataset", "imagefolder", "--data", "{dir}"], 2, "out of range"),
    (["run", "-p", "nosuch=1"], 2, "unknown parameter 'nosuch'"),
    (["run", "-p", "novalue"], 2, "--param expects key=value"),
    (["run", "-p", "=3"], 2, "--param expects key=value"),
    (["run", "-p", "planet.x=1"], 2, "unknown parameter namespace"),
    (["run", "--seed", "-1"], 2, "--seed"),
    (["run", "--seed", "1e20"], 2, "--seed"),
    (["run", "--seed", "99999999999"], 2, "seed must be an integer from 0 to 2147483647"),
    (["run", "--method", "nope"], 2, "nope"),
    (["run", "--backbone", "nope"], 2, "unknown backbone 'nope'"),
    (["run", "--classifier", "nope"], 2, "unknown classifier 'nope'"),
    (["run", "--dataset", "nope"], 2, "unknown dataset 'nope'"),
    (["run", "--backbone", "timm:no_such_model_xyz"], 2, "timm has no model 'no_such_model_xyz'"),
    (["run", "--weights", "{dir}/missing.pt"], 2, "weights file not found"),
    (["run", "--dataset", "imagefolder", "--data", "{dir}/missing"], 2, "does not exist"),
    (["run", "--dataset", "imagefolder", "--data", "{dir}/notes.txt"], 2, "is not a directory"),
    (["run", "--method", "fine-tune", "-p", "epochs=0"], 2, "must be >= 1"),
    (["run", "--method", "fine-tune", "-p", "epochs=1e9"], 2, "must be <= 1000"),
    (["run", "--store", "{dir}"], 2, "is a folder"),
    (["run", "--store", "{dir}/notes.txt/s.duckdb"], 2, "cannot open store"),
    (["run", "--nosuch-option"], 2, "No such option"),
    (["nosuchcommand"], 2, "No such command"),
    # compare
    (["compare", "--seeds", "0"], 2, "--seeds"),
    (["compare", "--preset", "nope"], 2, "nope"),
    (["compare", "--top-param", "lam=inf"], 2, "expected a finite number"),
    (["compare", "--fine-param", "epochs=nan"], 2, "epochs"),
    (["compare", "--backbone", "nope"], 2, "unknown backbone 'nope'"),
    # sweep
    (["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--seeds", "100000000"], 2,
     "more than the cap of 10,000"),
    (["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--seeds", "-1"], 2, "--seeds"),
    (["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--seeds", "50", "--max-cells", "10"],
     2, "more than the cap of 10"),
    (["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--max-cells", "0"], 2, "--max-cells"),
    (["sweep", "--datasets", "digits"], 2, "--backbones"),
    (["sweep", "--preset", "nope"], 2, "unknown sweep preset"),
    (["sweep", "{dir}/missing.toml"], 2, "sweep spec file not found"),
    (["sweep", "{dir}/latin1.toml"], 2, "not UTF-8"),
    (["sweep", "{dir}/broken.toml"], 2, "cannot parse"),
    (["sweep", "{dir}/negative.toml"], 2, "'seeds' must be from 1"),
    (["sweep", "{dir}/huge.toml"], 2, "more than the cap"),
    (["sweep", "{dir}/twice.toml"], 2, "lists a seed twice"),
    (["sweep", "{dir}/unknown.toml"], 2, "unknown field"),
    (["sweep", "{dir}/fraction.toml"], 2, "whole number"),
    # cluster, robustness, select-study
    (["cluster", "--latent", "abc"], 2, "--latent"),
    (["cluster", "--latent", "0,10"], 2, "--latent"),
    (["cluster", "--seeds", "0"], 2, "--seeds"),
    (["cluster", "--preset", "nope"], 2, "nope"),
    (["cluster", "--pipelines", "nope"], 2, "pipelines"),
    (["robustness", "--shift", "nope"], 2, "nope"),
    (["robustness", "--levels", "abc"], 2, "--levels"),
    (["robustness", "--levels", "inf"], 2, "--levels"),
    (["robustness", "--shift-on", "nope"], 2, "nope"),
    (["select-study", "--fractions", "2"], 2, "--fractions"),
    (["select-study", "--fractions", "nan"], 2, "--fractions"),
    (["select-study", "--rules", "nope"], 2, "nope"),
    # predict and export
    (["predict", "nope", "{dir}/notes.txt"], 2, "no run with id nope"),
    (["predict", "{failed}", "{dir}/notes.txt"], 2, "only a finished run has a model"),
    (["predict", "{run}", "{dir}/notes.txt"], 2, "saved no model"),
    (["predict", "{run}", "{dir}/notes.txt", "--format", "xml"], 2, "--format"),
    (["predict", "{run}", "{dir}/notes.txt", "--top-k", "0"], 2, "--top-k"),
    (["export", "nope", "-o", "{dir}/m.onnx"], 2, "no run with id nope"),
    (["export", "{run}", "-o", "{dir}/missing/m.onnx"], 2, "does not exist"),
    # plugins
    (["plugins", "check", "nope"], 2, "nope"),
    (["plugins", "--kind", "nope"], 2, "nope"),
    (["backbones", "describe", "nope"], 2, "unknown backbone 'nope'"),
    (["datasets", "nope"], 2, "unknown dataset 'nope'"),
    (["datasets", "imagefolder", "--data", "{dir}/missing"], 2, "does not exist"),
    # sql and the store
    (["sql", "DELETE FROM runs"], 2, "only read-only queries"),
    (["sql", "SELECT * FROM '{store}'"], 2, "not allowed in the sandbox"),
    (["sql", "SELECT 1", "--timeout", "-1"], 2, "timeout"),
    (["sql", "SELECT 1", "--timeout", "nan"], 2, "timeout"),
    (["sql", "SELECT 1", "--max-rows", "-1"], 2, "row limit"),
    (["sql", "SELECT 1", "--format", "xml"], 2, "--format"),
    (["runs", "--status", "bogus"], 2, "unknown status 'bogus'"),
    (["runs", "--limit", "0"], 2, "--limit"),
    (["runs", "--store", "{dir}/new/s.duckdb"], 2, "no store at"),
    (["report", "--store", "{dir}/new/s.duckdb"], 2, "no store at"),
    (["sql", "SELECT 1", "--store", "{dir}/new/s.duckdb"], 2, "no store at"),
    (["runs", "--store", "{dir}/notes.txt"], 2, "cannot open store"),
    (["dashboard", "--token", "short"], 2, "--token must be at least"),
    (["dashboard", "--data-root", "{dir}/missing"], 2, "is not a folder"),
    (["dashboard", "--port", "0"], 2, "--port"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The filled store, a folder of awkward files, and the ids of a finished and a failed run."""
    folder = tmp_path_factory.mktemp("bad-input")
    store = filled(folder / "store.duckdb")
    (folder / "notes.txt").write_text("not an image, not a store\n")
    (folder / "latin1.toml").write_bytes("name = \"caf\xe9\"\n".encode("latin-1"))
    (folder / "broken.toml").write_text("datasets = [\n")
    (folder / "negative.toml").write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseeds = -3\n')
    (folder / "huge.toml").write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseeds = 5\n'
                                      '[params]\n"classifier.M" = [' + ", ".join(map(str, range(1, 2002))) + "]\n")
    (folder / "twice.toml").write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseeds = [1, 1]\n')
    (folder / "unknown.toml").write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseedz = 1\n')
    (folder / "fraction.toml").write_text('datasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\nseeds = 2.5\n')
    rows = store.runs()
    ids = {"run": next(r["id"] for r in rows if r["status"] == "finished"),
           "failed": next(r["id"] for r in rows if r["status"] == "failed")}
    return {"store": store.path, "dir": folder, **ids}


def fill(args: list[str], world: dict) -> list[str]:
    values = {key: str(value) for key, value in world.items()}
    return [arg.format(**values) for arg in args]


def with_store(args: list[str], world: dict) -> list[str]:
    """Every command that takes --store gets the filled one, unless the case names its own."""
    if "--store" in args or args[0] in ("plugins", "backbones", "datasets", "nosuchcommand"):
        return args
    return [*args, "--store", str(world["store"])]


def test_the_corpus_is_large_and_covers_every_command():
    assert len(CASES) >= 60
    commands = {args[0] for args, _, _ in CASES}
    assert {"run", "compare", "sweep", "cluster", "robustness", "select-study", "predict", "export", "plugins",
            "sql", "runs"} <= commands


@pytest.mark.parametrize("args, code, text", CASES, ids=[" ".join(a)[:60] for a, _, _ in CASES])
def test_bad_input_is_one_clear_line_and_changes_nothing(world, args, code, text, monkeypatch):
    monkeypatch.chdir(world["dir"])
    before = contents(world["store"])
    res = CliRunner().invoke(app, with_store(fill(args, world), world), env={"COLUMNS": "400"})
    assert res.exit_code == code, res.output
    assert one_line(res.output) and res.output.startswith("error: "), res.output
    assert text in res.output, res.output
    assert not any(leak in res.output for leak in LEAKS), res.output
    assert contents(world["store"]) == before
    assert not (world["dir"] / "new").exists()  # reads create nothing


@pytest.mark.parametrize("args, text", [
    (["sql", "SELECT '[/x]' AS a, '[bold]x[/bold]' AS b"], "[bold]x[/bold]"),
    (["runs"], "[/x] [bold]not bold[/bold] [red]"),
    (["runs", "--status", "failed"], "[/x] [bold]not bold[/bold] [red]"),
])
def test_text_that_looks_like_markup_prints_literally(world, args, text):
    res = CliRunner().invoke(app, with_store(args, world), env={"COLUMNS": "400"})
    assert res.exit_code == 0 and text in res.output and "Traceback" not in res.output, res.output


@pytest.mark.parametrize("args, text", [
    (["sql", "SELECT '[/x]'"], None),
    (["run", "-p", "lam=inf"], "expected a finite number"),
    (["sweep", "--datasets", "digits", "--backbones", "efficientnet_lite0", "--seeds", "100000000"], "cap"),
    (["runs", "--store", "{dir}/new/s.duckdb"], "no store at"),
])
def test_through_a_real_process(world, args, text):
    """As users run it: a real ``toptune`` process, its exit status and its stderr."""
    env = {**os.environ, "COLUMNS": "400", "TOPTUNE_STORE": str(world["store"])}
    before = contents(world["store"])
    proc = subprocess.run([sys.executable, "-m", "toptune.cli", *fill(args, world)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(world["dir"]))
    if text is None:  # the markup crash of old: a literal answer now
        assert proc.returncode == 0 and "[/x]" in proc.stdout and not proc.stderr.strip(), proc.stderr
    else:
        assert proc.returncode == 2 and one_line(proc.stderr) and text in proc.stderr, proc.stderr
        assert not proc.stdout.strip()
    assert contents(world["store"]) == before


class _BrokenBackbone(TinyBackbone):
    description = "a backbone whose network cannot be built"
    digest = "broken"

    def build(self):
        raise RuntimeError("no network here: [red]x[/red]")


def test_a_failing_check_exits_1_without_a_stray_error_line():
    with registered(**{"broken-cnn": ("backbone", _BrokenBackbone)}):
        res = CliRunner().invoke(app, ["plugins", "check", "broken-cnn"], env={"COLUMNS": "400"})
    assert res.exit_code == 1 and "FAIL backbone broken-cnn" in res.output and "[red]x[/red]" in res.output
    assert "Exit" not in res.output and "Traceback" not in res.output and "error:" not in res.output
