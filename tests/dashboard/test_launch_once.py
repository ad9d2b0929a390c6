"""Launch queues what was meant, once: forms submit only on their button, an identical job waits for a second
click, a required field is marked and asked for, and a folder that does not exist is refused before queueing."""

import pytest

from tests.support import dashboard as support
from tests.support.dashboard import field, submit, texts
from toptune import jobs
from toptune.dashboard.launch import form as lf
from toptune.errors import DatasetError
from toptune.spec import RunSpec, resolve

launch = support.launch  # fixture

MODES = ("run", "compare", "robustness", "select-study", "cluster", "sweep")


def _forms(node) -> list:
    """Every st.form block on the page, as its proto."""
    found = []
    for child in getattr(node, "children", {}).values():
        proto = getattr(child, "proto", None)
        if type(proto).__name__ == "Block" and proto.WhichOneof("type") == "form":
            found.append(proto.form)
        found += _forms(child)
    return found


def test_every_launch_form_submits_only_on_its_button(launch):
    at, _, _ = launch
    for mode in MODES:
        at.radio(key="launch_mode").set_value(mode).run()
        forms = _forms(at._tree)
        assert forms, mode
        # Enter in a text field no longer queues a job: only the form's button does.
        assert [f.enter_to_submit for f in forms] == [False] * len(forms), mode
    at.radio(key="sweep_source").set_value("spec").run()
    assert [f.enter_to_submit for f in _forms(at._tree)] == [False]


def test_an_identical_job_is_queued_again_only_after_a_second_click(launch):
    at, path, started = launch
    field(at, "params.max_train").input("40")
    submit(at)
    (first,) = jobs.list_jobs(path)
    assert "Queued job" in texts(at)

    submit(at)  # the very same run, while the first is still queued
    assert len(jobs.list_jobs(path)) == 1
    (warning,) = at.warning
    assert "identical job is already queued" in warning.value and first["id"] in warning.value
    at.button(key="launch_again").click().run()
    assert [j["payload"] for j in jobs.list_jobs(path)] == [first["payload"]] * 2
    assert "Queued job" in texts(at) and not at.warning

    at.number_input(key="launch_seed").set_value(1)  # another seed is another job: queued at once
    submit(at)
    assert len(jobs.list_jobs(path)) == 3 and not at.warning

    for job in jobs.list_jobs(path):
        jobs.cancel(path, job["id"])
    submit(at)  # its twin was cancelled: nothing to wait for
    assert len(jobs.list_jobs(path)) == 4 and not at.warning and not at.error


def test_a_duplicate_comparison_is_held_too(launch):
    at, path, _ = launch
    at.radio(key="launch_mode").set_value("compare").run()
    field(at, "shared.max_train").input("50")
    submit(at)
    submit(at)
    assert len(jobs.list_jobs(path)) == 1 and "identical job" in at.warning[0].value


def test_the_image_folders_path_is_marked_required_and_asked_for(launch, tmp_path):
    at, path, started = launch
    at.selectbox(key="launch_dataset").select("imagefolder").run()
    folder = field(at, "params.dataset.path")
    assert folder.label == "path (required)"
    assert "required" in folder.placeholder and "automatic" not in folder.placeholder
    assert "required" not in field(at, "params.max_train").label
    submit(at)
    (error,) = at.error
    assert "path (Dataset · imagefolder) is required" in error.value and jobs.list_jobs(path) == []

    field(at, "params.dataset.path").input(str(tmp_path / "no-such-folder"))
    submit(at)
    (error,) = at.error
    assert "does not exist" in error.value and "no-such-folder" in error.value
    assert jobs.list_jobs(path) == [] and started == []

    photos = tmp_path / "photos"
    photos.mkdir()
    field(at, "params.dataset.path").input(str(photos))
    submit(at)
    assert not at.error
    (job,) = jobs.list_jobs(path)
    assert job["payload"]["params"] == {"dataset.path": str(photos)}


@pytest.mark.parametrize("mode, key", [("robustness", "robustness_shared"), ("select-study", "selection_shared"),
                                       ("cluster", "cluster_shared"), ("sweep", "sweep_params")])
def test_a_study_or_sweep_on_a_missing_folder_is_refused(launch, tmp_path, mode, key):
    at, path, _ = launch
    at.radio(key="launch_mode").set_value(mode).run()
    if mode == "sweep":
        at.multiselect(key="sweep_datasets").set_value(["imagefolder"])
    else:
        prefix = {"robustness": "robustness", "select-study": "selection", "cluster": "cluster"}[mode]
        at.selectbox(key=f"{prefix}_dataset").select("imagefolder")
    at.text_area(key=key).input(f"dataset.path={tmp_path / 'gone'}")
    submit(at)
    (error,) = at.error
    assert "does not exist" in error.value and jobs.list_jobs(path) == []


def test_a_remote_dataset_id_is_not_looked_for_on_disk(monkeypatch, tmp_path):
    from toptune import registry

    hf = registry.load("dataset", "hf")
    monkeypatch.setattr(hf, "check", lambda self: pytest.fail("checking a Hub id would download it"), raising=False)
    hub = RunSpec("top-tune", "efficientnet_lite0", "hf", "ridge", {"dataset.path": "someone/photos"})
    lf.check_paths(resolve(hub))
    local = RunSpec("top-tune", "efficientnet_lite0", "imagefolder", "ridge", {"dataset.path": str(tmp_path / "x/y")})
    with pytest.raises(DatasetError, match="does not exist"):
        lf.check_paths(resolve(local))
