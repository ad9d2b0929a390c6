"""The third-party plugin contract: metadata validation, `toptune plugins check`, failure isolation, and the
example distribution in examples/toptune-plugin-example working end to end."""

import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.plugins import write_distribution
from toptune import contract, registry
from toptune.cli import app
from toptune.errors import PluginError
from toptune.plugin_check import check_plugins
from toptune.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "toptune-plugin-example"
PRE = {"input_size": 16, "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.5] * 3, "std": [0.5] * 3}


def backbone_source(forward="x.mean(dim=(2, 3))", source="'none'", pre=PRE, api=1, module=".eval()", params="{}"):
    """A fake backbone module; each argument breaks one part of the contract when changed."""
    return f'''
import torch
from toptune.params import Param

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
    def forward(self, x):
        return {forward}

class Backbone:
    api_version = {api}
    description = "test backbone"
    params = {params}
    pretrain_source = {source}
    preprocessing = {pre!r}
    def __init__(self, **kw):
        pass
    def build(self):
        return Net(){module}
    def weights_digest(self):
        return "fixed"
'''


def classifier_source(predict="self.classes_[np.abs(X[:, :1] - self.means_[:, :1].T).argmin(1)]",
                      fit_returns="self", trained="self.means_.size"):
    return f'''
import numpy as np

class Clf:
    api_version = 1
    description = "test classifier"
    params = {{}}
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[y == c].mean(0) for c in self.classes_])
        self.n_trained_params_ = {trained}
        return {fit_returns}
    def predict(self, X):
        return {predict}
    def score(self, X, y):
        return float((self.predict(X) == y).mean())
'''


def dataset_source(load="return DatasetSplits(Split(6, 2), Split(4, 2), ['a', 'b'])"):
    return f'''
import numpy as np
from PIL import Image
from toptune.errors import DatasetError
from toptune.protocols import DatasetSplits

class Split:
    def __init__(self, n, k):
        self.labels = np.arange(n) % k
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return Image.new("RGB", (5, 4)), int(self.labels[i])

class Data:
    api_version = 1
    description = "test dataset"
    params = {{}}
    def load(self):
        {load}
    def fingerprint(self):
        return "fp"
'''


def install(site, dist, kind, plugins: dict[str, str]):
    """One fake distribution registering each ``name -> module source`` as a plugin of ``kind``."""
    group, attr = {"backbone": ("toptune.backbones", "Backbone"), "classifier": ("toptune.classifiers", "Clf"),
                   "dataset": ("toptune.datasets", "Data")}[kind]
    modules = {f"{dist.replace('-', '_')}_{i}.py": src for i, src in enumerate(plugins.values())}
    eps = {name: f"{m[:-3]}:{attr}" for name, m in zip(plugins, modules)}
    write_distribution(site, dist, {group: eps}, modules)


def results_by_name(*names):
    return {r.name: r for r in check_plugins(list(names))}


def cli(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


# --- the contract, validated at load and at creation ---------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"input_size": 0}, "'input_size' must be a positive int"),
    ({"input_size": 3.5}, "'input_size' must be a positive int"),
    ({"interpolation": "lanczos"}, "'interpolation' must be one of"),
    ({"crop_pct": 1.5}, "'crop_pct' must be in (0, 1]"),
    ({"mean": [0.5, 0.5]}, "'mean' must be 3 finite numbers"),
    ({"std": [0.5, 0.0, 0.5]}, "'std' must be positive"),
    ({"std": None}, "'std' must be 3 finite numbers"),
])
def test_preprocessing_problems_are_named(change, problem):
    assert contract.preprocessing_problem(PRE) is None
    assert problem in contract.preprocessing_problem({**PRE, **change})
    assert "lacks 'mean'" in contract.preprocessing_problem({k: v for k, v in PRE.items() if k != "mean"})


@pytest.mark.parametrize("source, problem", [
    (backbone_source(params="{'k': Param('int', 0, min=1)}"), "the default of parameter 'k' breaks its own schema"),
    (backbone_source(api=0), "api_version must be >= 1"),
    (backbone_source(api=2), "written for plugin API v2, but this toptune supports v1; upgrade toptune"),
    (backbone_source() + "Backbone.check_params = {'nope': 1}\n", "'check_params' is invalid: unknown"),
    (backbone_source() + "Backbone.variant_param = 'model'\n", "variant_param 'model' is not one of its params"),
])
def test_class_metadata_is_validated_at_load(plugin_site, source, problem):
    install(plugin_site, "toptune-meta", "backbone", {"meta": source})
    with pytest.raises(PluginError, match="from distribution 'toptune-meta'") as exc:
        registry.load("backbone", "meta")
    assert problem in str(exc.value)


def classifier_with(init: str, params: str = "{'k': Param('int', 5, min=1)}") -> str:
    """``classifier_source`` with one parameter and the given ``__init__``."""
    return ("from toptune.params import Param\n" + classifier_source()
            .replace("params = {}", f"params = {params}").replace("    def fit(", f"    {init}\n    def fit(", 1))


@pytest.mark.parametrize("init, problem", [
    ("def __init__(self, k=3): self.k = k", "parameter 'k' defaults to 5 in params but to 3 in __init__"),
    ("def __init__(self): pass", "parameter 'k' of params is not a keyword argument of __init__"),
    ("def __init__(self, *, k=5, other=1): self.k = k", None),  # keyword-only, extra arguments: fine
    ("def __init__(self, **kw): pass", None),  # takes anything: nothing to compare
])
def test_classifier_params_and_init_defaults_are_written_once(plugin_site, init, problem):
    install(plugin_site, "toptune-init", "classifier", {"init": classifier_with(init)})
    if problem is None:
        assert registry.create_classifier("init", k=2) is not None
        return
    with pytest.raises(PluginError, match="from distribution 'toptune-init'") as exc:
        registry.load("classifier", "init")
    assert problem in str(exc.value)


def test_required_methods_come_from_the_protocols():
    from toptune.protocols import required_methods

    assert required_methods("backbone") == ("build", "weights_digest")
    assert required_methods("classifier") == ("fit", "predict", "score")
    assert required_methods("dataset") == ("load", "fingerprint")


@pytest.mark.parametrize("source, problem", [
    (backbone_source(source="None"), "'pretrain_source' must be a non-empty string"),
    (backbone_source(pre={**PRE, "std": [1, 1]}), "preprocessing 'std' must be 3 finite numbers"),
])
def test_backbone_instance_metadata_is_validated_at_creation(plugin_site, source, problem):
    install(plugin_site, "toptune-meta", "backbone", {"meta": source})
    registry.load("backbone", "meta")  # the class itself is fine
    with pytest.raises(PluginError, match="backbone 'meta' from distribution 'toptune-meta'") as exc:
        registry.create_backbone("meta")
    assert problem in str(exc.value)


def test_newer_api_plugin_is_refused_by_run_with_a_clear_line(plugin_site, tmp_path):
    install(plugin_site, "toptune-future", "classifier", {"future": classifier_source().replace(
        "api_version = 1", "api_version = 2")})
    res = cli("run", "--classifier", "future", "--store", str(tmp_path / "s.duckdb"), "-q")
    assert res.exit_code == 2
    assert ("classifier 'future' from distribution 'toptune-future' does not satisfy the classifier interface: "
            "written for plugin API v2, but this toptune supports v1") in res.output
    assert Store(tmp_path / "s.duckdb").runs() == []


# --- smoke tests of plugins check ----------------------------------------------------------------------------

def test_backbone_smoke_test_catches_each_contract_break(plugin_site):
    install(plugin_site, "toptune-bb", "backbone", {
        "good": backbone_source(),
        "map": backbone_source(forward="x"),
        "wide": backbone_source(forward="x.mean(dim=(2, 3)).repeat(2, 1)"),
        "nan": backbone_source(forward="x.mean(dim=(2, 3)) / 0 * 0"),
        "training": backbone_source(forward="self.drop(x.mean(dim=(2, 3)))", module=""),
        "noeval": backbone_source(forward="self.drop(x.mean(dim=(2, 3)))", module=".train()"),
        "crash": backbone_source(forward="x.view(7, -1)"),
    })
    got = results_by_name("good", "map", "wide", "nan", "training", "noeval", "crash", "efficientnet_lite0")
    assert got["good"].status == "pass" and got["good"].details["feature_dim"] == 3
    assert got["map"].status == "fail" and "returned shape (2, 3, 16, 16)" in got["map"].reason
    assert "returned shape (4, 3)" in got["wide"].reason
    assert "NaN or infinite" in got["nan"].reason
    assert "eval mode" in got["training"].reason and "eval mode" in got["noeval"].reason
    assert got["crash"].reason.startswith("forward pass raised RuntimeError")
    assert {r.distribution for n, r in got.items() if n != "efficientnet_lite0"} == {"toptune-bb"}
    assert got["efficientnet_lite0"].status == "pass"  # the broken neighbours change nothing for it


def test_classifier_smoke_test_catches_each_contract_break(plugin_site):
    install(plugin_site, "toptune-clf", "classifier", {
        "good": classifier_source(),
        "short": classifier_source(predict="self.classes_[:1]"),
        "stray": classifier_source(predict="np.full(len(X), 7)"),
        "noself": classifier_source(fit_returns="None"),
        "nocount": classifier_source(trained="None"),
    })
    got = results_by_name("good", "short", "stray", "noself", "nocount", "ridge")
    assert got["good"].status == "pass" and got["good"].details["n_trained_params"] == 18
    assert "predict() on 6 rows returned shape (1,), expected (6,)" in got["short"].reason
    assert "labels that are not classes: [7]" in got["stray"].reason
    assert "fit() must return self" in got["noself"].reason
    assert "n_trained_params_ must be a non-negative int" in got["nocount"].reason
    assert got["ridge"].status == "pass"


def test_dataset_smoke_test_skips_missing_data_and_fails_broken_code(plugin_site):
    install(plugin_site, "toptune-data", "dataset", {
        "good": dataset_source(),
        "absent": dataset_source(load="raise DatasetError('put the files in /nowhere')"),
        "crash": dataset_source(load="raise RuntimeError('disk on fire')"),
        "labels": dataset_source(load="return DatasetSplits(Split(6, 3), Split(4, 2), ['a', 'b'])"),
        "empty": dataset_source(load="return DatasetSplits(Split(0, 2), Split(4, 2), ['a', 'b'])"),
    })
    got = results_by_name("good", "absent", "crash", "labels", "empty", "imagefolder", "digits")
    assert got["good"].status == "pass" and got["good"].details == {
        "n_train": 6, "n_test": 4, "n_classes": 2, "sample_size": [4, 5]}
    assert got["absent"].status == "skip" and got["absent"].reason == "needs data (put the files in /nowhere)"
    assert got["crash"].status == "fail" and got["crash"].reason == "load() raised RuntimeError: disk on fire"
    assert "train.labels must lie in [0, 2)" in got["labels"].reason
    assert "empty train split" in got["empty"].reason
    assert got["imagefolder"].status == "skip" and "path" in got["imagefolder"].reason
    assert got["digits"].status == "pass" and got["digits"].details["n_classes"] == 10


def test_name_clashes_fail_both_registrations_and_nothing_else(plugin_site):
    install(plugin_site, "toptune-clash", "classifier", {"ridge": classifier_source(), "twin": classifier_source()})
    install(plugin_site, "toptune-other", "classifier", {"twin": classifier_source()})
    results = check_plugins(["ridge", "twin", "kernel"], kind="classifier")
    clashing = [r for r in results if r.name in ("ridge", "twin")]
    assert len(clashing) == 4 and all(r.status == "fail" for r in clashing)
    assert {r.distribution for r in clashing} == {"toptune", "toptune-clash", "toptune-other"}
    twin = next(r for r in clashing if r.name == "twin")
    assert "'toptune-clash'" in twin.reason and "'toptune-other'" in twin.reason
    assert [r.status for r in results if r.name == "kernel"] == ["pass"]


def test_check_params_and_user_params_reach_the_plugin(plugin_site):
    # timm's check must not download: its check_params pick a random-init model
    [timm] = check_plugins("timm")
    assert timm.status == "pass" and timm.details["pretrain_source"] == "none"
    [variant] = check_plugins("timm:resnet10t")
    assert variant.name == "timm:resnet10t" and variant.status == "pass"
    [bad] = check_plugins("timm", params={"model": "no_such_net"})
    assert bad.status == "fail" and "timm has no model 'no_such_net'" in bad.reason


# --- the CLI --------------------------------------------------------------------------------------------------

def test_cli_listing_filters_by_kind_positionally_or_with_option():
    for args in (("plugins", "classifier"), ("plugins", "--kind", "classifier")):
        res = cli(*args)
        assert res.exit_code == 0 and "ridge" in res.output and "efficientnet_lite0" not in res.output
    res = cli("plugins")
    assert res.exit_code == 0 and "ridge" in res.output and "digits" in res.output
    res = cli("plugins", "--kind", "backbones")
    assert res.exit_code == 2 and "unknown plugin kind 'backbones'" in res.output


def test_cli_check_reports_and_exits_non_zero_on_failure(plugin_site):
    install(plugin_site, "toptune-bad", "backbone", {"flat": backbone_source(forward="x")})
    write_distribution(plugin_site, "toptune-boom", {"toptune.backbones": {"boom": "boom_mod:X"}},
                       {"boom_mod.py": "raise ImportError('needs libfoo')\n"})
    names = ["flat", "boom", "efficientnet_lite0"]
    proc = subprocess.run([sys.executable, "-m", "toptune.cli", "plugins", "check", *names],
                          capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("FAIL backbone flat (toptune-bad 1.0): forward pass") for ln in lines)
    assert any(ln.startswith("FAIL backbone boom (toptune-boom 1.0)") and "needs libfoo" in ln for ln in lines)
    assert "2 failed" in lines[-1]
    assert [ln for ln in lines if "efficientnet_lite0" in ln and "pass" in ln]

    ok = cli("plugins", "check", "ridge", "--json")
    assert ok.exit_code == 0
    [row] = json.loads(ok.output)
    assert row["status"] == "pass" and row["distribution"] == "toptune"
    res = cli("plugins", "check", "ridg")
    assert res.exit_code == 2 and "no plugin named 'ridg'; did you mean 'ridge'?" in res.output
    res = cli("plugins", "check", "--param", "M=5")
    assert res.exit_code == 2 and "need exactly one plugin name" in res.output
    res = cli("plugins", "check", "ridge", "--kind", "dataset")
    assert res.exit_code == 2 and "no dataset named 'ridge'" in res.output


def test_broken_plugins_do_not_stop_runs_with_working_ones(plugin_site, tmp_path):
    write_distribution(plugin_site, "toptune-boom", {"toptune.backbones": {"boom": "boom_mod:X"}},
                       {"boom_mod.py": "raise RuntimeError('boom at import')\n"})
    install(plugin_site, "toptune-clash", "classifier", {"kernel": classifier_source()})
    install(plugin_site, "toptune-good", "backbone", {"tiny": backbone_source()})
    store = tmp_path / "s.duckdb"
    res = cli("run", "--backbone", "tiny", "--classifier", "ridge", "--param", "max_train=60",
              "--param", "max_test=30", "--store", str(store), "-q")
    assert res.exit_code == 0, res.output
    [row] = Store(store).runs()
    assert row["status"] == "finished" and row["backbone"] == "tiny" and row["feature_dim"] == 3


# --- the example distribution ----------------------------------------------------------------------------------

def _example_installed() -> bool:
    try:
        md.distribution("toptune-plugin-example")
    except md.PackageNotFoundError:
        return False
    return True


needs_example = pytest.mark.skipif(
    not _example_installed(),
    reason="toptune-plugin-example is not installed (pip install ./examples/toptune-plugin-example; .ci/run does)")
EXAMPLE_PLUGINS = {"backbone": "lenet5", "classifier": "nearest-mean", "dataset": "digits-shift"}


@needs_example
def test_example_plugins_are_listed_checked_and_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "toptune.cli", "plugins"], capture_output=True, text=True,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    for kind, name in EXAMPLE_PLUGINS.items():
        [line] = [ln for ln in proc.stdout.splitlines() if f" {name} " in ln]
        assert kind in line and "toptune-plugin-example" in line and "ok" in line
        res = cli("plugins", "check", name, "--json")
        assert res.exit_code == 0, res.output
        [row] = json.loads(res.output)
        assert (row["kind"], row["status"], row["distribution"]) == (kind, "pass", "toptune-plugin-example")

    store = tmp_path / "s.duckdb"
    res = cli("run", "--backbone", "lenet5", "--classifier", "nearest-mean", "--dataset", "digits-shift",
              "--param", "strength=0.1", "--store", str(store), "-q")
    assert res.exit_code == 0, res.output
    [row] = Store(store).runs()
    assert row["status"] == "finished" and row["pretrain_source"] == "none"
    assert (row["backbone"], row["classifier"], row["dataset"]) == ("lenet5", "nearest-mean", "digits-shift")
    assert row["feature_dim"] == 120 and row["n_classes"] == 10 and row["accuracy"] > 0.5
    assert row["params"]["dataset"]["strength"] == 0.1


@needs_example
def test_example_own_test_suite_passes():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=EXAMPLE, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


# --- failure isolation outside `plugins check`: listing, creation and runs ----------------------------------

def test_metadata_that_breaks_the_checks_themselves_is_reported_not_raised(plugin_site):
    # A str parameter with a numeric minimum makes validating its default raise TypeError inside toptune.
    install(plugin_site, "toptune-odd", "backbone", {"odd": backbone_source(params="{'x': Param('str', 'a', min=1)}")})
    statuses = {s.info.name: s for s in registry.check("backbone")}
    assert statuses["odd"].status == "error" and "toptune-odd" in statuses["odd"].error
    assert "could not be checked: TypeError" in statuses["odd"].error
    assert statuses["efficientnet_lite0"].ok
    [result] = check_plugins("odd")
    assert result.status == "fail" and "could not be checked" in result.reason


def test_sys_exit_at_import_is_an_import_failure(plugin_site):
    install(plugin_site, "toptune-quits", "classifier", {"quits": "import sys\nsys.exit(3)\n"})
    [status] = [s for s in registry.check("classifier") if s.info.name == "quits"]
    assert status.status == "error" and "failed to import: SystemExit: 3" in status.error
    assert all(s.ok for s in registry.check("classifier") if s.info.name in ("kernel", "ridge"))


def test_third_party_exception_in_constructor_names_the_distribution(plugin_site):
    # The module's name starts with 'toptune' like toptune's own, but its exception is still third-party.
    source = classifier_source().replace("    params = {}\n", "    params = {}\n    def __init__(self):\n"
                                         "        raise LookupError('no licence key')\n")
    install(plugin_site, "toptune-licensed", "classifier", {"licensed": source})
    with pytest.raises(PluginError, match="from distribution 'toptune-licensed' could not be created: "
                                          "LookupError: no licence key"):
        registry.create_classifier("licensed")


def test_wrong_shape_backbone_fails_its_run_with_one_line(plugin_site, tmp_path):
    install(plugin_site, "toptune-bb", "backbone", {"map": backbone_source(forward="x")})
    store = tmp_path / "s.duckdb"
    res = cli("run", "--backbone", "map", "--classifier", "ridge", "--store", str(store), "-q",
              "--param", "max_train=40", "--param", "max_test=20")
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert ("backbone 'map' from distribution 'toptune-bb' returned shape (" in res.output
            and "must return one feature vector per image" in res.output)
    [row] = Store(store).runs()
    assert row["status"] == "failed" and "returned shape" in row["error"]


def test_plugins_listing_puts_each_status_in_its_column(plugin_site):
    install(plugin_site, "toptune-bb", "backbone", {"good": backbone_source()})
    write_distribution(plugin_site, "toptune-gone", {"toptune.datasets": {"gone": "gone_mod:X"}},
                       {"gone_mod.py": "raise RuntimeError('vanished')\n"})
    res = cli("plugins")
    assert res.exit_code == 0
    rows = [ln for ln in res.output.splitlines() if ln.startswith("│")]  # the table's own rows
    [gone] = [ln for ln in rows if " gone " in ln]
    assert "error: dataset 'gone'" in gone
    [good] = [ln for ln in rows if " good " in ln]
    assert "ok" in good and "toptune-bb" in good
    if importlib.util.find_spec("falkon") is None:
        [falkon] = [ln for ln in rows if " falkon " in ln]
        assert "falkon not installed" in falkon and "error" not in falkon
