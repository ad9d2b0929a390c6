import subprocess
import sys

import pytest

from tests.support.plugins import write_distribution
from toptune import registry
from toptune.errors import DuplicatePluginError, ParamError, PluginError, UnknownPluginError
from toptune.params import Param

GOOD_CLASSIFIER = '''
import numpy as np
from toptune.params import Param

class Nearest:
    api_version = 1
    description = "nearest class mean"
    params = {"shrink": Param("float", 0.0, min=0.0)}
    def __init__(self, shrink=0.0):
        self.shrink = shrink
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[y == c].mean(0) for c in self.classes_])
        return self
    def predict(self, X):
        return self.classes_[((X[:, None] - self.means_[None]) ** 2).sum(-1).argmin(1)]
    def score(self, X, y):
        return float((self.predict(X) == y).mean())
'''

BROKEN_IMPORT = "raise RuntimeError('boom at import')\n"

NO_PREDICT = '''
class Half:
    api_version = 1
    description = "missing predict"
    params = {}
    def fit(self, X, y):
        return self
    def score(self, X, y):
        return 0.0
'''

FUTURE = GOOD_CLASSIFIER.replace("api_version = 1", "api_version = 99")


def test_builtins_are_discovered_without_import():
    infos = registry.discover()
    names = {(i.kind, i.name) for i in infos}
    assert {("backbone", "efficientnet_lite0"), ("classifier", "kernel"), ("classifier", "ridge"),
            ("dataset", "digits"), ("dataset", "imagefolder"), ("dataset", "cifar10")} <= names
    assert all(i.distribution == "toptune" for i in infos if i.name in ("kernel", "digits"))
    # discovery must not import plugin modules: check in a fresh interpreter
    code = ("import sys; from toptune import registry; registry.discover(); "
            "print(any(m.startswith('toptune.plugins.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_wildcards_and_unknown_name_suggestion():
    assert registry.list_backbones("efficientnet_lite*") == ["efficientnet_lite0", "efficientnet_lite1",
                                                             "efficientnet_lite2"]
    with pytest.raises(UnknownPluginError, match=r"did you mean 'kernel'"):
        registry.load("classifier", "kernal")


def test_broken_plugins_are_isolated_and_attributed(plugin_site):
    write_distribution(plugin_site, "toptune-good", {"toptune.classifiers": {"nearest": "good_plugin:Nearest"}},
                       {"good_plugin.py": GOOD_CLASSIFIER})
    write_distribution(plugin_site, "toptune-broken", {"toptune.classifiers": {
        "explodes": "broken_plugin:Anything", "half": "half_plugin:Half", "future": "future_plugin:Nearest"}},
        {"broken_plugin.py": BROKEN_IMPORT, "half_plugin.py": NO_PREDICT, "future_plugin.py": FUTURE})
    statuses = {s.info.name: s for s in registry.check("classifier")}
    assert statuses["nearest"].ok and statuses["kernel"].ok and statuses["ridge"].ok
    assert "toptune-broken" in statuses["explodes"].error and "boom at import" in statuses["explodes"].error
    assert "missing method 'predict'" in statuses["half"].error
    assert "plugin API v99" in statuses["future"].error
    # a working third-party plugin is created through the same factory as built-ins
    import numpy as np

    clf = registry.create_classifier("nearest", shrink="0.5")
    assert clf.shrink == 0.5
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    assert clf.fit(X, np.array([0, 0, 1, 1])).score(X, np.array([0, 0, 1, 1])) == 1.0
    with pytest.raises(PluginError, match="toptune-broken"):
        registry.load("classifier", "explodes")


def test_duplicate_name_names_both_distributions(plugin_site):
    write_distribution(plugin_site, "toptune-clash", {"toptune.classifiers": {"ridge": "good_plugin:Nearest"}},
                       {"good_plugin.py": GOOD_CLASSIFIER})
    with pytest.raises(DuplicatePluginError, match=r"'toptune-clash'.*'toptune'|'toptune'.*'toptune-clash'"):
        registry.load("classifier", "ridge")
    statuses = {(s.info.name, s.info.distribution): s for s in registry.check("classifier")}
    assert not statuses[("ridge", "toptune-clash")].ok and not statuses[("ridge", "toptune")].ok
    assert statuses[("kernel", "toptune")].ok  # the clash touches nothing else


def test_cli_plugins_lists_broken_plugin_and_keeps_others(plugin_site):
    write_distribution(plugin_site, "toptune-broken", {"toptune.backbones": {"kaput": "broken_plugin:X"}},
                       {"broken_plugin.py": BROKEN_IMPORT})
    proc = subprocess.run([sys.executable, "-m", "toptune.cli", "plugins"], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "kaput" in proc.stdout and "toptune-broken" in proc.stdout and "boom at import" in proc.stdout
    ok_lines = [ln for ln in proc.stdout.splitlines() if "efficientnet_lite0" in ln]
    assert ok_lines and "ok" in ok_lines[0]


def test_in_process_registration_and_param_validation():
    @registry.register_classifier("tmp-mean")
    class Mean:
        api_version = 1
        description = "test"
        params = {"k": Param("int", 3, min=1)}

        def __init__(self, k=3):
            self.k = k

        def fit(self, X, y):
            return self

        def predict(self, X):
            return X

        def score(self, X, y):
            return 0.0

    try:
        assert "tmp-mean" in registry.list_classifiers("tmp-*")
        assert registry.create_classifier("tmp-mean", k="7").k == 7
        with pytest.raises(ParamError, match=r"'k': -5 \(must be >= 1\)"):
            registry.create_classifier("tmp-mean", k=-5)
        with pytest.raises(ParamError, match="unknown classifier 'tmp-mean' parameter 'q'"):
            registry.create_classifier("tmp-mean", q=1)
    finally:
        registry.unregister("classifier", "tmp-mean")
    with pytest.raises(PluginError, match="missing method 'fit'"):
        registry.register_classifier("bad")(type("Bad", (), {"api_version": 1, "description": "", "params": {}}))


def test_variant_names():
    with pytest.raises(UnknownPluginError, match="takes no variant"):
        registry.resolve_params("classifier", "ridge:foo")
    assert registry.resolve_params("backbone", "timm:resnet18")["model"] == "resnet18"
