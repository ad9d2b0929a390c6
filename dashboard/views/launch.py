"""Launch: a run, a comparison, a study (clustering, robustness, data selection) or a sweep, queued to a
background worker."""

from functools import partial

import streamlit as st

from toptune import catalogue, jobs
from toptune.dashboard import data
from toptune.dashboard.launch import cluster as launch_cluster
from toptune.dashboard.launch import form as lf
from toptune.dashboard.launch import jobs_panel
from toptune.dashboard.launch import study as launch_study
from toptune.dashboard.launch import sweep as launch_sweep
from toptune.methods import METHODS
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET
from toptune.studies import STUDIES
from toptune.studies import compare as cmp

path = data.store_path()
st.title("Launch")
st.caption("Jobs run one at a time in a background worker process, never inside the dashboard; closing the "
           "page does not stop them.")


def choose(mode: str) -> dict:
    """Method (or preset) and plugins, outside the form: they decide which fields the form has."""
    cols = st.columns(4)
    picked = {"mode": mode}
    if mode == jobs.RUN:
        picked["method"] = cols[0].selectbox("Method", list(METHODS), key="launch_method")
    else:
        picked["preset"] = cols[0].selectbox("Preset", ["auto", *cmp.PRESETS], key="launch_preset",
                                             help="auto = cpu without a CUDA device; cpu: 128 px, 3 epochs at lr "
                                                  "1e-3, 1 seed")
    picked["dataset"] = lf.plugin_choice("Dataset", "dataset", DEFAULT_DATASET, cols[1], "launch")
    picked["backbone"] = lf.plugin_choice("Backbone", "backbone", DEFAULT_BACKBONE, cols[2], "launch")
    needs_classifier = mode == cmp.STUDY.name or METHODS[picked.get("method", cmp.TOP)].uses_classifier
    picked["classifier"] = (lf.plugin_choice("Classifier", "classifier", DEFAULT_CLASSIFIER, cols[3], "launch")
                            if needs_classifier else None)
    study_datasets()
    return picked


def study_datasets() -> None:
    """The top-tuning study's datasets (``toptune datasets --paper``) under the dataset picker."""
    rows = catalogue.rows()
    with st.expander(f"Datasets of the top-tuning study ({len(rows)} catalogued): what to pick, which are here"):
        st.caption("Pick the dataset named below; for hf:<id> pick hf and set its path to the id. Manual ones: "
                   "download, lay out as shown, then imagefolder with that path.")
        st.dataframe([{"name": r["name"], "dataset": r["title"], "train": r["n_train"], "test": r["n_test"],
                       "classes": r["n_classes"], "get it": r["how"], "here": r["present"]} for r in rows],
                     hide_index=True)


def sections_of(p: dict) -> tuple[list, str]:
    """The form's sections and the prefix of their widget keys."""
    if p["mode"] == jobs.RUN:
        return lf.run_sections(p["method"], p["backbone"], p["dataset"], p["classifier"]), f"p.run.{p['method']}"
    return (lf.compare_sections(p["backbone"], p["dataset"], p["classifier"], p["preset"]),
            f"p.compare.{p['preset']}")


def fields_form(p: dict, sections: list, prefix: str) -> tuple[int, dict, bool]:
    """The seed (or number of seeds) and one widget per parameter; returns them and whether submitted."""
    with st.form("launch_form", enter_to_submit=False):
        first = st.columns(3)[0]
        if p["mode"] == jobs.RUN:
            seed = first.number_input("seed", min_value=0, value=0, step=1, key="launch_seed")
        else:
            seed = first.number_input("seeds", min_value=1, value=cmp.preset_settings(p["preset"])["seeds"], step=1,
                                      key=f"launch_seeds_{p['preset']}", help="the comparison runs seeds 0..N-1")
        raw = {}
        for section in sections:
            with st.expander(section.title, expanded=section.expanded):
                if section.error:
                    st.error(section.error)
                grid = st.columns(3)
                for i, f in enumerate(section.fields):
                    with grid[i % 3]:
                        # The key names the plugin, so switching plugins never carries a value across.
                        raw[f.key] = lf.widget(f, f"{prefix}.{section.title}.{f.target}.{f.key}")
        label = "Queue run" if p["mode"] == jobs.RUN else "Queue comparison"
        submitted = st.form_submit_button(label, type="primary", icon=":material/play_arrow:")
    return seed, raw, submitted


def queue(p: dict, sections: list, seed: int, raw: dict) -> None:
    def payload() -> dict:
        given = lf.answers([f for s in sections for f in s.fields], raw)
        lf.require(sections, given)
        if p["mode"] == jobs.RUN:
            return lf.run_payload(p["method"], p["backbone"], p["dataset"], p["classifier"], seed, given)
        return lf.compare_payload(p["backbone"], p["dataset"], p["classifier"], seed, p["preset"], given)

    lf.submit(path, p["mode"], payload, lambda job_id: f"Queued job `{job_id}`; the jobs below start a worker for it.")


def run_or_compare(mode: str) -> None:
    picked = choose(mode)
    sections, prefix = sections_of(picked)
    seed, raw, submitted = fields_form(picked, sections, prefix)
    if submitted:
        queue(picked, sections, seed, raw)


# What can be launched: a run, each kind of study in the engine's table, a sweep; each with its form.
FORMS = {jobs.RUN: partial(run_or_compare, jobs.RUN), cmp.STUDY.name: partial(run_or_compare, cmp.STUDY.name),
         "robustness": partial(launch_study.robustness_form, path),
         "select-study": partial(launch_study.selection_form, path), "cluster": partial(launch_cluster.form, path),
         jobs.SWEEP: partial(launch_sweep.form, path)}
BLURBS = {jobs.RUN: "one run", cmp.STUDY.name: "a comparison (top-tuning vs fine-tuning)",
          "robustness": "a robustness study (covariate shift)", jobs.SWEEP: "a sweep (a grid on Ray)"}
MODES = {kind: BLURBS.get(kind) or f"a {STUDIES[kind].title}" for kind in jobs.kinds() if kind in FORMS}

mode = st.radio("What to launch", list(MODES), horizontal=True, key="launch_mode", format_func=MODES.get)
FORMS[mode]()
lf.duplicate(path, mode)

st.subheader("Jobs")
jobs_panel.panel(path)
