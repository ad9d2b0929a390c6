"""The Launch page's clustering study: ``toptune cluster``'s options as a form, queued as a 'cluster' job.

``payload`` turns the answers into ``clustering.plan``'s arguments and plans them, which checks every
name and value the way the CLI does, so a bad answer is shown inline and nothing is queued.
"""

from __future__ import annotations

import streamlit as st

from toptune.dashboard.launch.form import checked_specs, lines, param_areas, plugin_choice, submit
from toptune.params import parse_assignments
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_DATASET
from toptune.studies import clustering

PRESET_HELP = ("auto = cpu without a CUDA device; cpu: 128 px features, 15/10 epochs, a narrow image VAE, 1 seed; "
               "gpu: the method's defaults, 3 seeds")
PARAMS_HELP = "one key=value per line, as `toptune cluster --param`; # starts a comment"


def payload(dataset: str, backbone: str, latents: str, seeds: int | None, preset: str, pipelines: list[str],
            shared: str = "", feature: str = "", image: str = "", export_latents: bool = True) -> dict:
    """``clustering.plan``'s arguments for a 'cluster' job, validated by planning them."""
    common = parse_assignments(lines(shared))
    if export_latents:
        common["export_latents"] = True
    out = {"dataset": dataset, "backbone": backbone, "latents": clustering.parse_latents(latents),
           "seeds": None if seeds is None else int(seeds), "shared": common,
           "feature": parse_assignments(lines(feature)), "image": parse_assignments(lines(image)),
           "pipelines": list(pipelines), "preset": preset}
    checked_specs(clustering.plan(**out))  # and the data folder is there
    return out


def form(path) -> None:
    with st.form("cluster_form", enter_to_submit=False):
        top = st.columns(4)
        dataset = plugin_choice("Dataset", "dataset", DEFAULT_DATASET, top[0], "cluster")
        backbone = plugin_choice("Backbone", "backbone", DEFAULT_BACKBONE, top[1], "cluster")
        latents = top[2].text_input("Latent sizes Z", ",".join(map(str, clustering.DEFAULT_LATENTS)),
                                    key="cluster_latents", help="comma-separated, e.g. 10,30,50")
        seeds = top[3].number_input("seeds", min_value=1, value=None, step=1, key="cluster_seeds",
                                    placeholder="the preset's", help="the study runs seeds 0..N-1")
        middle = st.columns([1, 3])
        preset = middle[0].selectbox("Preset", ["auto", *clustering.PRESETS], key="cluster_preset", help=PRESET_HELP)
        pipelines = middle[1].multiselect("Pipelines", list(clustering.ROW_ORDER), list(clustering.ROW_ORDER),
                                          key="cluster_pipelines", format_func=clustering.ROW_NAMES.get)
        texts = param_areas("cluster", (("Parameters, every run", "shared", "epochs=20"),
                                        ("Feature VAE and k-means only", "feature", "hidden=256,128"),
                                        ("Image VAE only", "image", "width=16")))
        export = st.checkbox("export latent codes (for the 2-D projections on **Clustering**)", value=True,
                             key="cluster_export")
        submitted = st.form_submit_button("Queue clustering study", type="primary", icon=":material/play_arrow:")
    if submitted:
        submit(path, "cluster", lambda: payload(dataset, backbone, latents, seeds, preset, pipelines, *texts, export),
               lambda job_id: f"Queued clustering study as job `{job_id}`; the jobs below start a worker for it. "
                              "Its results appear on **Clustering**.")
