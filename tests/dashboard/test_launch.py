"""The Launch page: a form generated from the registry, validated before anything is queued."""

import importlib.metadata
import tomllib

import pytest

from tests.support import dashboard as support
from tests.support.dashboard import field, open_page, submit, texts
from tests.support.plugins import write_distribution
from toptune import jobs, registry
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.studies import clustering
from toptune.studies import compare as cmp
from toptune.studies import robustness as rob
from toptune.studies import selection as sel
from toptune.sweeps.spec import SweepSpec

launch = support.launch  # fixture


def submit_refused(launch, message: str) -> None:
    """Submitting shows one inline error naming ``message`` and queues nothing (no worker started either)."""
    at, path, started = launch
    submit(at)
    assert not at.exception
    (error,) = at.error
    assert "Not queued" in error.value and message in error.value, error.value
    assert jobs.list_jobs(path) == [] and started == []


def test_the_form_offers_every_plugin_and_each_parameter(launch):
    at, _, _ = launch
    options = {w.label: w.options for w in at.selectbox if w.label in ("Dataset", "Backbone", "Classifier")}
    for kind, label in (("dataset", "Dataset"), ("backbone", "Backbone"), ("classifier", "Classifier")):
        assert options[label] == registry.list_plugins(kind)
    assert field(at, "params.max_train").value == "" and field(at, "params.batch_size").value == 32
    assert field(at, "params.classifier.kernel").options == ["gaussian", "laplacian", "linear"]
    assert field(at, "params.cache").value is True
    at.selectbox(key="launch_classifier").select("ridge").run()
    assert field(at, "params.classifier.alpha").value == ""  # default None: automatic
    at.selectbox(key="launch_method").select("fine-tune").run()
    assert field(at, "params.epochs").value == 15
    assert not [w for w in at.selectbox if w.label == "Classifier"]  # fine-tuning trains its own head


@pytest.mark.parametrize("suffix, value, message", [
    ("params.max_train", "1", "max_train"),
    ("params.max_test", "many", "expected int"),
    ("params.classifier.lam", "-1", "must be >= 0"),
])
def test_a_bad_parameter_shows_an_inline_error_and_queues_nothing(launch, suffix, value, message):
    at, path, started = launch
    field(at, suffix).input(value)
    submit_refused(launch, message)


def test_a_valid_run_is_queued_for_the_worker(launch):
    at, path, started = launch
    at.selectbox(key="launch_classifier").select("ridge").run()
    field(at, "params.max_train").input("40")
    field(at, "params.max_test").input("20")
    at.number_input(key="launch_seed").set_value(2)
    submit(at)
    assert not at.error and "Queued job" in texts(at)
    (job,) = jobs.list_jobs(path)
    assert job["kind"] == "run" and job["state"] == "queued"
    assert RunSpec.from_dict(job["payload"]) == RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge",
                                                        {"max_train": "40", "max_test": "20"}, 2)
    assert started == [str(path)]
    assert "queued" in texts(at) and job["id"] in texts(at)  # the jobs panel lists it


def test_a_comparison_is_queued_with_the_preset_left_to_the_engine(launch):
    at, path, _ = launch
    at.radio(key="launch_mode").set_value("compare").run()
    at.selectbox(key="launch_preset").select("cpu").run()
    at.selectbox(key="launch_classifier").select("ridge").run()
    assert field(at, "shared.image_size").value == 128 and field(at, "fine.epochs").value == 3
    field(at, "shared.max_train").input("50")
    field(at, "fine.epochs").set_value(1)
    submit(at)
    assert not at.error
    (job,) = jobs.list_jobs(path)
    assert job["kind"] == "compare"
    assert job["payload"] == {"dataset": "digits", "backbone": "efficientnet_lite0", "classifier": "ridge",
                              "seeds": 1, "shared": {"max_train": "50"}, "top": {}, "fine": {"epochs": 1},
                              "preset": "cpu"}
    fine = cmp.plan(**job["payload"])[1]
    assert fine.params == {"image_size": 128, "max_train": "50", "epochs": 1, "lr": 1e-3}


def test_cancel_from_the_jobs_panel(launch):
    at, path, _ = launch
    field(at, "params.max_train").input("40")
    submit(at)
    (job,) = jobs.list_jobs(path)
    cancel = [b for b in at.button if b.key == f"cancel-{job['id']}"]
    assert cancel, "a queued job offers Cancel"
    cancel[0].click().run()
    assert jobs.get_job(path, job["id"])["state"] == "cancelled"
    assert not [b for b in at.button if (b.key or "").startswith("cancel-")]


def test_a_third_party_plugin_appears_with_its_own_parameters(plugin_site, tmp_path, monkeypatch):
    write_distribution(plugin_site, "toptune-centroid", {"toptune.classifiers": {"centroid": "centroid_mod:Centroid"}},
                       {"centroid_mod.py": CENTROID})
    monkeypatch.setenv("TOPTUNE_STORE", str(tmp_path / "runs.duckdb"))
    at = open_page("launch")
    at.selectbox(key="launch_classifier").select("centroid").run()
    shrink = field(at, "params.classifier.shrink")
    assert shrink.value == "0.5" and "≤ 1" in shrink.placeholder
    shrink.input("3")
    submit(at)
    (error,) = at.error
    assert "classifier 'centroid'" in error.value and "shrink" in error.value
    assert jobs.list_jobs(tmp_path / "runs.duckdb") == []


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _installed("toptune-plugin-example"),
                    reason="pip install ./examples/toptune-plugin-example (CI does) to see it in the form")
def test_the_example_plugin_distribution_is_in_the_launch_form(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPTUNE_STORE", str(tmp_path / "runs.duckdb"))
    at = open_page("launch")
    options = {w.key: w.options for w in at.selectbox}
    assert "lenet5" in options["launch_backbone"] and "nearest-mean" in options["launch_classifier"]
    assert "digits-shift" in options["launch_dataset"]
    at.selectbox(key="launch_dataset").select("digits-shift").run()
    at.selectbox(key="launch_backbone").select("lenet5").run()
    at.selectbox(key="launch_classifier").select("nearest-mean").run()
    assert field(at, "params.dataset.shift").options == ["noise", "blur"]
    assert field(at, "params.backbone.activation").value == "tanh"
    assert field(at, "params.classifier.metric").options == ["euclidean", "cosine"]
    assert not at.error and not at.exception

    # Launched from the form, the job runs in the dashboard's worker code and lands in the store.
    monkeypatch.setattr(jobs, "ensure_worker", lambda p: None)
    field(at, "params.max_train").input("60")
    field(at, "params.max_test").input("30")
    submit(at)
    assert not at.error and "Queued job" in texts(at)
    assert jobs.work(tmp_path / "runs.duckdb", idle_exit_s=0.5) == 1
    (job,) = jobs.list_jobs(tmp_path / "runs.duckdb")
    assert job["state"] == "finished", job.get("error")
    [row] = Store(tmp_path / "runs.duckdb").runs()
    assert (row["backbone"], row["classifier"], row["dataset"], row["status"]) == (
        "lenet5", "nearest-mean", "digits-shift", "finished")
    assert row["n_train"] == 60 and row["accuracy"] > 0.3


CENTROID = '''
import numpy as np
from toptune.params import Param

class Centroid:
    api_version = 1
    description = "class centroids, shrunk towards the global mean"
    params = {"shrink": Param("float", 0.5, "how far to shrink", min=0.0, max=1.0)}
    def __init__(self, shrink=0.5):
        self.shrink = shrink
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[y == c].mean(0) for c in self.classes_])
        self.n_trained_params_ = int(self.means_.size)
        return self
    def predict(self, X):
        return self.classes_[((X[:, None] - self.means_[None]) ** 2).sum(-1).argmin(1)]
    def score(self, X, y):
        return float((self.predict(X) == y).mean())
'''


# ---- clustering studies and sweeps -----------------------------------------------------------------
def test_a_clustering_study_is_queued_as_plan_arguments(launch):
    at, path, started = launch
    at.radio(key="launch_mode").set_value("cluster").run()
    at.text_input(key="cluster_latents").input("2, 4")
    at.number_input(key="cluster_seeds").set_value(2)
    at.selectbox(key="cluster_preset").select("cpu")
    at.text_area(key="cluster_shared").input("# a comment\nepochs=5\n")
    at.text_area(key="cluster_image").input("width=8")
    submit(at)
    assert not at.exception and not at.error and "Queued clustering study" in texts(at)
    (job,) = jobs.list_jobs(path)
    assert job["kind"] == "cluster" and started == [str(path)]
    assert job["payload"] == {"dataset": "digits", "backbone": "efficientnet_lite0", "latents": [2, 4], "seeds": 2,
                              "shared": {"epochs": "5", "export_latents": True}, "feature": {}, "image": {"width": "8"},
                              "pipelines": ["image-vae", "feature-vae", "kmeans"], "preset": "cpu"}
    specs = clustering.plan(**job["payload"])
    assert len(specs) == 2 * (1 + 2 * 2) and {s.params["epochs"] for s in specs} == {"5"}
    assert "clustering study" in texts(at)  # the jobs panel describes it


def test_a_sweep_from_the_form_is_queued_with_its_grid(launch):
    at, path, started = launch
    at.radio(key="launch_mode").set_value("sweep").run()
    at.multiselect(key="sweep_classifiers").select("ridge")
    at.number_input(key="sweep_seeds").set_value(2)
    at.text_area(key="sweep_params").input("max_train=40\nclassifier.M=200, 800")
    submit(at)
    assert not at.exception and not at.error
    (job,) = jobs.list_jobs(path)
    spec = SweepSpec.from_dict(job["payload"])
    assert job["kind"] == "sweep" and started == [str(path)]
    assert (spec.datasets, spec.backbones, spec.methods, spec.classifiers, spec.seeds) == (
        ["digits"], ["efficientnet_lite0"], ["top-tune"], ["kernel", "ridge"], [0, 1])
    assert spec.params == {"max_train": "40", "classifier.M": ["200", "800"]}  # a comma list is a grid axis
    assert len(spec.cells()) == 2 * 2 + 2  # kernel × M × seeds, and ridge (which has no M) × seeds
    assert f"Queued sweep `{spec.sweep_id}` (6 cells)" in texts(at)
    assert "sweep · digits × efficientnet_lite0 × top-tune × kernel + ridge" in texts(at)  # the jobs panel


@pytest.mark.parametrize("params, message", [
    ("classifier.M=-5", "2 of 4 cells are invalid"),  # M only reaches the kernel cells, which it breaks
    ("nonsense=1", "apply to no cell"),
    ("max_train", "key=value"),
])
def test_a_sweep_that_could_only_fail_shows_inline_and_queues_nothing(launch, params, message):
    at, path, started = launch
    at.radio(key="launch_mode").set_value("sweep").run()
    at.number_input(key="sweep_seeds").set_value(2)
    at.multiselect(key="sweep_classifiers").select("ridge")
    at.text_area(key="sweep_params").input(params)
    submit_refused(launch, message)


def test_an_empty_axis_is_refused(launch):
    at, path, _ = launch
    at.radio(key="launch_mode").set_value("sweep").run()
    at.multiselect(key="sweep_datasets").set_value([])
    submit(at)
    (error,) = at.error
    assert "'datasets' is empty" in error.value and jobs.list_jobs(path) == []


def test_a_sweep_from_a_pasted_toml_spec(launch):
    at, path, _ = launch
    at.radio(key="launch_mode").set_value("sweep").run()
    at.radio(key="sweep_source").set_value("spec").run()
    at.text_area(key="sweep_toml").input("datasets = [")
    submit(at)
    (error,) = at.error
    assert "cannot parse the sweep spec" in error.value and jobs.list_jobs(path) == []
    toml = ('name = "pasted"\ndatasets = ["digits"]\nbackbones = ["efficientnet_lite0"]\n'
            'methods = ["top-tune", "fine-tune"]\nclassifiers = ["ridge"]\nseeds = [3]\n'
            '[params]\nmax_train = 40\n[method_params.fine-tune]\nepochs = 1\n')
    at.text_area(key="sweep_toml").input(toml)
    submit(at)
    assert not at.error
    (job,) = jobs.list_jobs(path)
    assert job["payload"] == SweepSpec.from_dict(tomllib.loads(toml)).to_dict()
    assert [c.spec.method for c in SweepSpec.from_dict(job["payload"]).cells()] == ["top-tune", "fine-tune"]


# ---- robustness and data-selection studies ----------------------------------------------------------
def test_a_robustness_study_is_queued_as_plan_arguments(launch):
    at, path, started = launch
    at.radio(key="launch_mode").set_value("robustness").run()
    at.selectbox(key="robustness_shift").select("blur")
    at.text_input(key="robustness_levels").input("0, 1.5")
    at.selectbox(key="robustness_shift_on").select("both")
    at.checkbox(key="robustness_with_fine_tune").check()
    at.multiselect(key="robustness_classifiers").select("ridge")
    at.number_input(key="robustness_seeds").set_value(2)
    at.selectbox(key="robustness_preset").select("cpu")
    at.text_area(key="robustness_shared").input("max_train=40\n# a comment")
    at.text_area(key="robustness_fine").input("epochs=1")
    submit(at)
    assert not at.exception and not at.error and "Queued robustness job" in texts(at)
    (job,) = jobs.list_jobs(path)
    assert job["kind"] == "robustness" and started == [str(path)]
    assert job["payload"] == {"dataset": "digits", "backbone": "efficientnet_lite0", "shift": "blur",
                              "levels": [0.0, 1.5], "classifiers": ["kernel", "ridge"], "with_fine_tune": True,
                              "seeds": 2, "shift_on": "both", "shared": {"max_train": "40"}, "top": {},
                              "fine": {"epochs": "1"}, "preset": "cpu"}
    specs = rob.plan(**job["payload"])
    # per seed and level: one top-tuning run per classifier and one fine-tuning run
    assert len(specs) == 2 * 2 * 3
    assert {(s.method, s.params["shift_level"]) for s in specs} >= {("fine-tune", 1.5), ("top-tune", 0.0)}
    assert "robustness study · blur 0,1.5 on both" in texts(at)  # the jobs panel describes it


@pytest.mark.parametrize("mode, answers, message", [
    ("robustness", {("text_input", "robustness_levels"): "0,2"}, "--levels needs distinct numbers in [0, 1]"),
    ("robustness", {("selectbox", "robustness_shift"): "embedding", ("checkbox", "robustness_with_fine_tune"): True},
     "fine-tuning never uses"),
    ("robustness", {("multiselect", "robustness_classifiers"): []}, "at least one classifier"),
    ("robustness", {("text_area", "robustness_top"): "classifier.M=-3"}, "M"),
    ("cluster", {("text_input", "cluster_latents"): "10,x"}, "comma-separated integers"),
    ("cluster", {("text_area", "cluster_feature"): "hidden=64,x"}, "hidden"),
    ("cluster", {("text_area", "cluster_shared"): "epochs"}, "key=value"),
    ("cluster", {("multiselect", "cluster_pipelines"): []}, "pipelines"),
    ("select-study", {("text_input", "selection_fractions"): "0.5,abc"}, "--fractions takes comma-separated numbers"),
    ("select-study", {("multiselect", "selection_rules"): []}, "--rules takes names"),
    ("select-study", {("text_area", "selection_shared"): "epochs=zero"}, "epochs"),
])
def test_a_bad_study_answer_shows_inline_and_queues_nothing(launch, mode, answers, message):
    at, path, started = launch
    at.radio(key="launch_mode").set_value(mode).run()
    for (kind, key), value in answers.items():
        element = getattr(at, kind)(key=key)
        if kind == "selectbox":
            element.select(value)
        elif kind == "checkbox":
            element.check()
        elif kind == "multiselect":
            element.set_value(value)
        else:
            element.input(value)
    submit_refused(launch, message)


def test_a_selection_study_is_queued_as_plan_arguments(launch):
    at, path, started = launch
    at.radio(key="launch_mode").set_value("select-study").run()
    at.text_input(key="selection_fractions").input("0.1,0.3")
    at.multiselect(key="selection_rules").set_value(["random", "error"])
    at.text_area(key="selection_shared").input("epochs=2")
    submit(at)
    assert not at.exception and not at.error and "Queued select-study job" in texts(at)
    (job,) = jobs.list_jobs(path)
    assert job["kind"] == "select-study" and started == [str(path)]
    assert job["payload"] == {"dataset": "digits", "backbone": "efficientnet_lite0", "fractions": [0.1, 0.3],
                              "rules": ["random", "error"], "seeds": None, "shared": {"epochs": "2"},
                              "preset": "auto"}
    specs = sel.plan(**job["payload"])
    assert [(s.params["fraction"], s.params["select"]) for s in specs] == [
        (0.1, "random"), (0.1, "error"), (0.3, "random"), (0.3, "error")]
    assert "selection study · random / error at 0.1,0.3" in texts(at)
