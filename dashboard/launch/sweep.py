"""The Launch page's sweep: a grid from a small form or a TOML/YAML spec, queued as a 'sweep' job.

The form follows ``toptune sweep``'s flags (params as key=value lines, a comma list being a grid axis,
through the engine's own ``grid_params``); a spec follows ``toptune sweep SPEC``. Either way the grid is
counted first (never expanded past its cap, ``Max cells``, in the server process), then every distinct cell
is checked like a run before anything is queued: a spec the engine would refuse, or a cell that could only
fail, is shown inline instead.
"""

from __future__ import annotations

import itertools

import streamlit as st

from toptune import registry
from toptune.dashboard.launch.form import check_paths, lines, submit
from toptune.errors import ParamError, ToptuneError
from toptune.methods import METHODS
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, RunSpec, resolve
from toptune.sweeps.spec import DEFAULT_MAX_CELLS, SweepSpec, grid_params

FORM, SPEC = "form", "spec"
SHOWN_ERRORS = 3
MAX_CELLS_FIELD = 1_000_000  # the form's own bound on the cap
CHECKED_CELLS = 10_000  # cells made and checked in the server process at most; the worker checks every one
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
              params: str = "", name: str = "", max_cells: int | None = None) -> SweepSpec:
    grid = {"datasets": list(datasets), "backbones": list(backbones), "methods": list(methods),
            "seeds": int(seeds), "params": grid_params(lines(params)), "name": name.strip()}
    if classifiers or any(METHODS[m].uses_classifier for m in methods):  # fine-tuning alone needs none
        grid["classifiers"] = list(classifiers)
    return SweepSpec.from_dict(grid, max_cells)


def payload(spec: SweepSpec) -> tuple[dict, int]:
    """The spec as a job payload and its number of cells; raises when the grid or a cell is invalid.

    The grid is counted, never expanded whole here (``SweepSpec`` refuses one past its cap): the first
    ``CHECKED_CELLS`` cells are made one at a time and each distinct run among them (seeds aside) is checked
    like a run; the worker checks every cell again as it runs it.
    """
    count = spec.check_size()
    verdicts: dict[str, str | None] = {}  # each distinct run (seed aside): None, or why it would fail
    invalid = checked = 0
    plugins: set = set()  # the plugins whose paths were checked already
    for cell in itertools.islice(spec.iter_cells(), CHECKED_CELLS):
        key, checked = _unseeded(cell.spec), checked + 1
        if key not in verdicts:
            try:
                check_paths(resolve(cell.spec), plugins)
                verdicts[key] = None
            except ToptuneError as exc:
                s = cell.spec
                verdicts[key] = f"{s.method} · {s.dataset} · {s.backbone} · {s.classifier or '—'}: {exc}"
        invalid += verdicts[key] is not None
    bad = [why for why in verdicts.values() if why]
    if bad:
        more = " …" if len(bad) > SHOWN_ERRORS else ""
        among = f" (of the first {checked:,} checked)" if checked < count else ""
        raise ParamError(f"{invalid} of {count} cells{among} are invalid and would fail: "
                         + "; ".join(bad[:SHOWN_ERRORS]) + more)
    return spec.to_dict(), count


def _unseeded(spec: RunSpec) -> str:
    return RunSpec(spec.method, spec.backbone, spec.dataset, spec.classifier, spec.params, 0).to_json()


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
    max_cells = _max_cells("sweep_max_cells_form")
    return lambda: from_form(*picked, seeds, params, name, max_cells)


def _max_cells(key: str) -> int:
    return st.number_input("Max cells", min_value=1, max_value=MAX_CELLS_FIELD, value=DEFAULT_MAX_CELLS, step=1000,
                           key=key, help="a grid of more cells is refused before it is expanded (as toptune sweep "
                                         "--max-cells); raise it for a larger sweep")


def _spec_form():
    upload = st.file_uploader("Spec file", type=["toml", "yaml", "yml"], key="sweep_file",
                              help="the file `toptune sweep SPEC` reads; replaces the text below when given")
    text = st.text_area("Or paste a TOML spec", key="sweep_toml", height=220, placeholder=EXAMPLE)
    max_cells = _max_cells("sweep_max_cells_spec")
    if upload is not None:
        fmt = "yaml" if upload.name.endswith((".yaml", ".yml")) else "toml"
        return lambda: SweepSpec.from_text(_text(upload.getvalue()), fmt, f"the spec file {upload.name}", max_cells)
    return lambda: SweepSpec.from_text(text, max_cells=max_cells)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamError("the spec file is not UTF-8 text; save it as UTF-8 TOML or YAML") from None


def form(path) -> None:
    source = st.radio("Grid from", [FORM, SPEC], horizontal=True, key="sweep_source",
                      format_func={FORM: "this form", SPEC: "a spec (TOML or YAML)"}.get)
    with st.form("sweep_form", enter_to_submit=False):
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
