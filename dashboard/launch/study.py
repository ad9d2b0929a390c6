"""The Launch page's robustness and data-selection studies: the CLI commands' options as forms.

``robustness_payload`` and ``selection_payload`` turn the answers into the arguments of
``robustness.plan`` and ``select_study.plan`` and plan them, which checks every name and value the way
``toptune robustness`` and ``toptune select-study`` do, so a bad answer is shown inline and nothing is
queued. The worker calls the same plan with the same arguments.
"""

from __future__ import annotations

import streamlit as st

from toptune import registry
from toptune.dashboard.launch.form import checked_specs, lines, param_areas, plugin_choice, submit
from toptune.params import parse_assignments
from toptune.research.data_selection import SELECT_RULES
from toptune.research.shift import SHIFT_KINDS, SHIFT_SPLITS
from toptune.spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET
from toptune.studies import compare as cmp
from toptune.studies import robustness as rob
from toptune.studies import selection as sel

PARAMS_HELP = "one key=value per line, as the CLI's --param; # starts a comment"
PRESET_HELP = "auto = cpu without a CUDA device; cpu: 128 px, 3 fine-tuning epochs at lr 1e-3, 1 seed"
SHIFTS = SHIFT_KINDS[1:]  # 'none' is level 0 of every shift


def robustness_payload(dataset: str, backbone: str, shift: str, levels: str, classifiers: list[str],
                       with_fine_tune: bool, seeds: int | None, shift_on: str, preset: str, shared: str = "",
                       top: str = "", fine: str = "") -> dict:
    """``robustness.plan``'s arguments for a 'robustness' job, validated by planning them."""
    out = {"dataset": dataset, "backbone": backbone, "shift": shift,
           "levels": rob.parse_levels(levels, shift) if levels.strip() else None,
           "classifiers": list(classifiers), "with_fine_tune": bool(with_fine_tune),
           "seeds": None if seeds is None else int(seeds), "shift_on": shift_on,
           "shared": parse_assignments(lines(shared)), "top": parse_assignments(lines(top)),
           "fine": parse_assignments(lines(fine)), "preset": preset}
    checked_specs(rob.plan(**out))  # and the data folder is there
    return out


def selection_payload(dataset: str, backbone: str, fractions: str, rules: list[str], seeds: int | None,
                      preset: str, shared: str = "") -> dict:
    """``select_study.plan``'s arguments for a 'select-study' job, validated by planning them."""
    out = {"dataset": dataset, "backbone": backbone, "fractions": sel.parse_fractions(fractions),
           "rules": list(rules), "seeds": None if seeds is None else int(seeds),
           "shared": parse_assignments(lines(shared)), "preset": preset}
    checked_specs(sel.plan(**out))  # and the data folder is there
    return out


def _common(prefix: str) -> tuple[str, str, int | None, str]:
    """Dataset, backbone, number of seeds and preset: the first row of both forms."""
    top = st.columns(4)
    dataset = plugin_choice("Dataset", "dataset", DEFAULT_DATASET, top[0], prefix)
    backbone = plugin_choice("Backbone", "backbone", DEFAULT_BACKBONE, top[1], prefix)
    seeds = top[2].number_input("seeds", min_value=1, value=None, step=1, key=f"{prefix}_seeds",
                                placeholder="the preset's", help="the study runs seeds 0..N-1")
    preset = top[3].selectbox("Preset", ["auto", *cmp.PRESETS], key=f"{prefix}_preset", help=PRESET_HELP)
    return dataset, backbone, seeds, preset


def robustness_form(path) -> None:
    with st.form("robustness_form", enter_to_submit=False):
        dataset, backbone, seeds, preset = _common("robustness")
        row = st.columns(4)
        shift = row[0].selectbox("Shift", SHIFTS, key="robustness_shift",
                                 help="awgn: pixel noise σ on [0,1] images · blur: Gaussian σ in pixels · "
                                      "embedding: offset of this norm added to the features (top-tuning only)")
        levels = row[1].text_input("Levels", "", key="robustness_levels", placeholder="the shift's defaults",
                                   help="comma-separated strengths, 0 = clean; defaults: " + " · ".join(
                                       f"{k} {','.join(f'{v:g}' for v in rob.DEFAULT_LEVELS[k])}" for k in SHIFTS))
        shift_on = row[2].selectbox("Shifted split", SHIFT_SPLITS, index=SHIFT_SPLITS.index("test"),
                                    key="robustness_shift_on")
        with_fine_tune = row[3].checkbox("also fine-tune", key="robustness_with_fine_tune",
                                         help="one fine-tuning run per level and seed (not with embedding)")
        classifiers = st.multiselect("Top-tuning classifiers", registry.list_plugins("classifier"),
                                     [DEFAULT_CLASSIFIER], key="robustness_classifiers")
        texts = param_areas("robustness", (("Parameters, every run", "shared", "max_train=400"),
                                           ("Top-tuning runs only", "top", "classifier.M=500"),
                                           ("Fine-tuning runs only", "fine", "epochs=5")))
        submitted = st.form_submit_button("Queue robustness study", type="primary", icon=":material/play_arrow:")
    if submitted:
        _submit(path, "robustness", "Robustness", lambda: robustness_payload(
            dataset, backbone, shift, levels, classifiers, with_fine_tune, seeds, shift_on, preset, *texts))


def selection_form(path) -> None:
    with st.form("selection_form", enter_to_submit=False):
        dataset, backbone, seeds, preset = _common("selection")
        row = st.columns([1, 3])
        fractions = row[0].text_input("Fractions", ",".join(f"{f:g}" for f in sel.DEFAULT_FRACTIONS),
                                      key="selection_fractions", help="subset sizes as fractions of train, "
                                                                      "comma-separated")
        rules = row[1].multiselect("Rules", list(SELECT_RULES), list(sel.DEFAULT_RULES), key="selection_rules",
                                   help="how the fine-tuning subset is chosen, from a classifier top-tuned on "
                                        "the same features")
        shared = st.text_area("Parameters, every run", key="selection_shared", help=PARAMS_HELP, height=100,
                              placeholder="epochs=8")
        submitted = st.form_submit_button("Queue selection study", type="primary", icon=":material/play_arrow:")
    if submitted:
        _submit(path, "select-study", "Selection", lambda: selection_payload(
            dataset, backbone, fractions, rules, seeds, preset, shared))


def _submit(path, kind: str, page: str, make) -> None:
    submit(path, kind, make, lambda job_id: f"Queued {kind} job `{job_id}`; the jobs below start a worker for it. "
                                            f"Its results appear on **{page}**.")
