"""The Launch page's sweep: a grid from a small form or a TOML/YAML spec, queued as a 'sweep' job.

The form follows ``toptune sweep``'s flags (params as key=value lines, a comma list being a grid axis,
through the engine's own ``grid_params``); a spec follows ``toptune sweep SPEC``. Either way the grid is
expanded and every cell checked like a run before anything is queued: a spec the engine would refuse,
or a cell that could only fail, is shown inline instead.
"""

from __future__ import annotations

import streamlit as st

from toptune import registry
from toptune.dashboard.launch.form import lines, submit
from toptune.errors import ParamError, ToptuneError
from toptune.methods import METHODS
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, resolve
from toptune.sweeps.spec import SweepSpec, grid_params

FORM, SPEC = "form", "spec"
SHOWN_ERRORS = 3
EXAMPLE = """datasets = ["digits"]
backbones = ["efficientnet_lite0"]
methods = ["top-tune"]
classifiers = ["ridge", "kernel"]
seeds = 2
[params]
max_train = 500
"classifier.M" = [200, 800]
"""


def from_form(datasets: list[str], backbones: list[str], methods: list[str], classifiers: list[str], seeds: int,
              params: str = "", name: str = "") -> SweepSpec:
    grid = {"datasets": list(datasets), "backbones": list(backbones), "methods": list(methods),
            "seeds": int(seeds), "params": grid_params(lines(params)), "name": name.strip()}
    if classifiers or any(METHODS[m].uses_classifier for m in methods):  # fine-tuning alone needs none
        grid["classifiers"] = list(classifiers)
    return SweepSpec.from_dict(grid)


def payload(spec: SweepSpec) -> tuple[dict, int]:
    """The spec as a job payload and its number of cells; raises when the grid or any cell is invalid."""
    cells = spec.cells()
    bad = []
    for cell in cells:
        try:
            resolve(cell.spec)
        except ToptuneError as exc:
            s = cell.spec
            bad.append(f"{s.method} · {s.dataset} · {s.backbone} · {s.classifier or '—'} · seed {s.seed}: {exc}")
    if bad:
        more = " …" if len(bad) > SHOWN_ERRORS else ""
        raise ParamError(f"{len(bad)} of {len(cells)} cells are invalid and would fail: "
                         + "; ".join(bad[:SHOWN_ERRORS]) + more)
    return spec.to_dict(), len(cells)


def _grid_form():
    names = {kind: registry.list_plugins(kind) for kind in ("dataset", "backbone", "classifier")}
    first = st.columns(4)
    picked = [first[i].multiselect(label, options, [d for d in defaults if d in options], key=f"sweep_{key}")
              for i, (label, key, options, defaults) in enumerate((
                  ("Datasets", "datasets", names["dataset"], [DEFAULT_DATASET]),
                  ("Backbones", "backbones", names["backbone"], [DEFAULT_BACKBONE]),
                  ("Methods", "methods", list(METHODS), ["top-tune"]),
                  ("Classifiers (top-tuning)", "classifiers", names["classifier"], [DEFAULT_CLASSIFIER])))]
    second = st.columns([1, 3])
    seeds = second[0].number_input("seeds", min_value=1, value=1, step=1, key="sweep_seeds",
                                   help="every cell runs seeds 0..N-1")
    name = second[1].text_input("Name (optional)", key="sweep_name", help="a label; the grid alone makes the id")
    params = st.text_area("Parameters", key="sweep_params", height=110,
                          placeholder="max_train=500\nclassifier.M=200,800",
                          help="one key=value per line, as `toptune sweep --param`: a comma list is a grid axis; a "
                               "parameter reaches only the cells whose method or plugins declare it")
    return lambda: from_form(*picked, seeds, params, name)


def _spec_form():
    upload = st.file_uploader("Spec file", type=["toml", "yaml", "yml"], key="sweep_file",
                              help="the file `toptune sweep SPEC` reads; replaces the text below when given")
    text = st.text_area("Or paste a TOML spec", key="sweep_toml", height=220, placeholder=EXAMPLE)
    if upload is not None:
        fmt = "yaml" if upload.name.endswith((".yaml", ".yml")) else "toml"
        return lambda: SweepSpec.from_text(upload.getvalue().decode(), fmt)
    return lambda: SweepSpec.from_text(text)


def form(path) -> None:
    source = st.radio("Grid from", [FORM, SPEC], horizontal=True, key="sweep_source",
                      format_func={FORM: "this form", SPEC: "a spec (TOML or YAML)"}.get)
    with st.form("sweep_form"):
        make = _grid_form() if source == FORM else _spec_form()
        submitted = st.form_submit_button("Queue sweep", type="primary", icon=":material/play_arrow:")
    if submitted:
        _submit(path, make)


def _submit(path, make) -> None:
    queued = {}

    def grid() -> dict:
        spec = make()
        queued["spec"], (payload_, queued["cells"]) = spec, payload(spec)
        return payload_

    submit(path, "sweep", grid, lambda job_id: f"Queued sweep `{queued['spec'].sweep_id}` ({queued['cells']} cells) "
                                               f"as job `{job_id}`; it runs on Ray in the background worker. Follow it "
                                               "on **Sweeps**.")
