"""Launch: a run or a comparison from a form generated from the registry, queued to a background worker."""

import streamlit as st
from toptune import compare as cmp
from toptune import jobs, registry
from toptune.dashboard import data, jobs_panel
from toptune.dashboard import launch_form as lf
from toptune.errors import ToptuneError
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, FEATURE_METHODS, METHOD_PARAMS

path = data.store_path()
st.title("Launch")
st.caption("Jobs run one at a time in a background worker process, never inside the dashboard; closing the "
           "page does not stop them.")


def choice(label: str, kind: str, default: str, column) -> str:
    names = registry.list_plugins(kind)
    return column.selectbox(label, names, index=names.index(default) if default in names else 0,
                            key=f"launch_{kind}")


mode = st.radio("What to launch", [lf.RUN, lf.COMPARE], horizontal=True, key="launch_mode",
                format_func={lf.RUN: "one run", lf.COMPARE: "a comparison (top-tuning vs fine-tuning)"}.get)
cols = st.columns(4)
if mode == lf.RUN:
    method = cols[0].selectbox("Method", list(METHOD_PARAMS), key="launch_method")
else:
    preset = cols[0].selectbox("Preset", ["auto", *cmp.PRESETS], key="launch_preset",
                               help="auto = cpu without a CUDA device; cpu: 128 px, 3 epochs at lr 1e-3, 1 seed")
dataset = choice("Dataset", "dataset", DEFAULT_DATASET, cols[1])
backbone = choice("Backbone", "backbone", DEFAULT_BACKBONE, cols[2])
needs_classifier = mode == lf.COMPARE or method in FEATURE_METHODS
classifier = choice("Classifier", "classifier", DEFAULT_CLASSIFIER, cols[3]) if needs_classifier else None

if mode == lf.RUN:
    sections = lf.run_sections(method, backbone, dataset, classifier)
    prefix = f"p.{mode}.{method}"
else:
    sections = lf.compare_sections(backbone, dataset, classifier, preset)
    prefix = f"p.{mode}.{preset}"

with st.form("launch_form"):
    first = st.columns(3)[0]
    if mode == lf.RUN:
        seed = first.number_input("seed", min_value=0, value=0, step=1, key="launch_seed")
    else:
        seeds = first.number_input("seeds", min_value=1, value=cmp._preset(preset)["seeds"], step=1,
                                   key=f"launch_seeds_{preset}", help="the comparison runs seeds 0..N-1")
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
    submitted = st.form_submit_button("Queue run" if mode == lf.RUN else "Queue comparison", type="primary",
                                      icon=":material/play_arrow:")

if submitted:
    fields = [f for s in sections for f in s.fields]
    try:
        given = lf.answers(fields, raw)
        if mode == lf.RUN:
            job_id = jobs.submit(path, "run", lf.run_payload(method, backbone, dataset, classifier, seed, given))
        else:
            job_id = jobs.submit(path, "compare", lf.compare_payload(backbone, dataset, classifier, seeds, preset,
                                                                     given))
    except ToptuneError as exc:
        st.error(f"Not queued: {exc}", icon=":material/error:")
    else:
        st.success(f"Queued job `{job_id}`; the jobs below start a worker for it.", icon=":material/check:")

st.subheader("Jobs")
jobs_panel.panel(path)
