"""The launch form, generated from the registry: one field per parameter of the method and each plugin.

The fields, the values they start with and how their answers become a job are plain functions, so
they are tested without a browser; ``widget`` is the only part that draws. Only answers that differ
from what a field started with are sent: defaults stay the engine's to fill in (a plugin's seed and
device follow the run's unless set), and the stored spec shows what the user actually chose.

Queueing is deliberate: forms submit only on their button (never on Enter in a field); a required field
left empty, a data folder or weights file that does not exist, or any value the CLI would refuse queues
nothing; and a job identical to one already queued or running is queued only after a second click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from toptune import jobs, registry
from toptune.dashboard.widgets.ui import literal
from toptune.errors import ParamError, ToptuneError
from toptune.methods import METHODS
from toptune.params import NOT_PATHS, PATH_NAMES, PATH_SUFFIXES, Param, to_json
from toptune.runner import preflight
from toptune.spec import ResolvedSpec, RunSpec, resolve
from toptune.studies import compare as cmp

AUTOMATIC = "(automatic)"
REQUIRED = "(required)"
# A value of this shape may name a remote dataset (a Hub id such as user/name[:config][@revision]) rather than a
# local path, so a folder of that name not existing here is no error, and nothing is downloaded to check it.
REMOTE_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+([:@][\w.-]+)*")
WAITING = ("queued", "running")
PENDING, NOTICE = "launch_duplicate", "launch_notice"  # session keys: a duplicate awaiting its confirm, a message


@dataclass(frozen=True)
class Field:
    target: str  # where the answer goes: "params" of a run; "shared", "top" or "fine" of a comparison
    key: str  # as RunSpec.params takes it: bare for the method's own, "classifier.M" for a plugin's
    param: Param
    start: Any  # the schema's default, or the comparison preset's value

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    @property
    def required(self) -> bool:
        return bool(getattr(self.param, "required", False)) and self.start is None

    @property
    def label(self) -> str:
        return f"{self.name} {REQUIRED}" if self.required else self.name


@dataclass
class Section:
    title: str
    fields: list[Field] = field(default_factory=list)
    error: str | None = None  # the plugin did not load; submitting then fails validation with it
    expanded: bool = False


def plugin_section(kind: str, name: str, target: str) -> Section:
    title = f"{kind.capitalize()} · {name}"
    try:
        schema = registry.load(kind, name).params
    except ToptuneError as exc:
        return Section(title, error=str(exc))
    return Section(title, [Field(target, f"{kind}.{key}", p, p.default) for key, p in schema.items()])


def run_sections(method: str, backbone: str, dataset: str, classifier: str | None) -> list[Section]:
    own = [Field("params", key, p, p.default) for key, p in METHODS[method].params.items()]
    sections = [Section(f"Run · {method}", own, expanded=True), plugin_section("backbone", backbone, "params"),
                plugin_section("dataset", dataset, "params")]
    if METHODS[method].uses_classifier:
        sections.append(plugin_section("classifier", classifier, "params"))
    return sections


def preset_values(preset: str) -> dict:
    """What the comparison preset sets, per target, so the form starts from the values that will run."""
    chosen = cmp.preset_settings(preset)
    return {"shared": chosen["shared"], "top": {}, "fine": chosen["fine"]}


def compare_sections(backbone: str, dataset: str, classifier: str, preset: str) -> list[Section]:
    top, fine = METHODS[cmp.TOP].params, METHODS[cmp.FINE].params
    starts = preset_values(preset)

    def fields(target, schema):
        return [Field(target, key, p, starts[target].get(key, p.default)) for key, p in schema.items()]

    both = Section("Both methods", fields("shared", {k: p for k, p in top.items() if k in fine}), expanded=True)
    top_only = Section("Top-tuning", fields("top", {k: p for k, p in top.items() if k not in fine}))
    classifier_section = plugin_section("classifier", classifier, "top")
    top_only.fields += classifier_section.fields
    top_only.error = classifier_section.error
    fine_only = Section("Fine-tuning", fields("fine", {k: p for k, p in fine.items() if k not in top}))
    return [both, plugin_section("backbone", backbone, "shared"), plugin_section("dataset", dataset, "shared"),
            top_only, fine_only]


def widget_kind(param: Param, start: Any) -> str:
    if param.choices:
        return "select"
    if param.type == "bool":
        return "checkbox" if start is not None else "select"
    if param.type == "int" and start is not None and not param.keywords:
        return "number"
    return "text"


def initial(f: Field) -> Any:
    """The value a field's widget starts with (text fields hold text; empty means automatic)."""
    kind = widget_kind(f.param, f.start)
    if kind == "text":
        return "" if f.start is None else str(f.start)
    if kind == "select" and f.start is None:
        return AUTOMATIC
    return f.start


def describe(param: Param) -> str:
    """Type, range and default, for a field's placeholder and tooltip."""
    bits = [param.type]
    if param.min is not None:
        bits.append(f"≥ {param.min:g}")
    if param.max is not None:
        bits.append(f"≤ {param.max:g}")
    if param.keywords:
        bits.append("or " + " / ".join(param.keywords))
    if getattr(param, "required", False) and param.default is None:
        bits.append("required")
    else:
        bits.append("default: " + ("automatic" if param.default is None else str(param.default)))
    return ", ".join(bits)


def require(sections: list[Section], given: dict[str, dict[str, Any]]) -> None:
    """Refuse (ParamError) when a required field was left empty, naming it and its section."""
    for section in sections:
        for f in section.fields:
            if f.required and f.key not in given.get(f.target, {}):
                raise ParamError(f"{f.name} ({section.title}) is required: fill it in")


def check_paths(rs: ResolvedSpec, checked: set | None = None) -> None:
    """Check that a run's data folder, weights file and other paths exist before it is queued, as the CLI does
    before it records a run (each plugin's own ``check()``, through ``toptune.runner.preflight``).

    A dataset path shaped like a remote id (``user/name``) that is no folder here is left to the run: checking it
    could mean a download in the dashboard's process. ``checked`` remembers the plugins checked already, so a
    study or sweep checks each distinct dataset and backbone once.
    """
    checked = set() if checked is None else checked
    key = to_json([rs.spec.backbone, rs.spec.dataset, rs.spec.classifier,
                   *(rs.params.get(k) for k in ("backbone", "dataset", "classifier"))])
    if key in checked:
        return
    checked.add(key)
    if any(_remote(k, v) for k, v in (rs.params.get("dataset") or {}).items()):
        rs = ResolvedSpec(rs.spec, {k: v for k, v in rs.params.items() if k != "dataset"})
    preflight(rs)


def checked_specs(specs: list[RunSpec]) -> list[RunSpec]:
    """``specs`` once each distinct run's paths were checked (``check_paths``); raises for the first missing."""
    checked: set = set()
    for spec in specs:
        check_paths(resolve(spec), checked)
    return specs


def _remote(key: str, value) -> bool:
    """Whether a dataset parameter names a path that is not here but may be a remote id."""
    if not (key in PATH_NAMES or key.endswith(PATH_SUFFIXES)) or not isinstance(value, str) or value in NOT_PATHS:
        return False
    return not Path(value).expanduser().exists() and REMOTE_ID.fullmatch(value.strip()) is not None


def answers(fields: list[Field], raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose widget value differs from its start, grouped by target (values as entered)."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        value = raw.get(f.key, initial(f))
        if value == initial(f) or value in ("", AUTOMATIC, None):
            continue
        out.setdefault(f.target, {})[f.key] = value.strip() if isinstance(value, str) else value
    return out


def run_payload(method: str, backbone: str, dataset: str, classifier: str | None, seed: int,
                given: dict) -> dict:
    """A validated RunSpec dict for ``jobs.submit(..., 'run', ...)``; raises ToptuneError when invalid."""
    spec = RunSpec(method, backbone, dataset, classifier if METHODS[method].uses_classifier else None,
                   given.get("params", {}), int(seed))
    check_paths(resolve(spec))
    return spec.to_dict()


def compare_payload(backbone: str, dataset: str, classifier: str, seeds: int, preset: str, given: dict) -> dict:
    """compare.plan's arguments for ``jobs.submit(..., 'compare', ...)``, validated by planning them."""
    payload = {"dataset": dataset, "backbone": backbone, "classifier": classifier, "seeds": int(seeds),
               "shared": given.get("shared", {}), "top": given.get("top", {}), "fine": given.get("fine", {}),
               "preset": preset}
    checked_specs(cmp.plan(**payload)[:2])  # every seed runs the same data and plugins
    return payload


def lines(text: str | None) -> list[str]:
    """The non-empty lines of a key=value text area, without # comments."""
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]


def widget(f: Field, key: str) -> Any:
    """Draw one field; its label is the parameter's name, its tooltip the schema's help."""
    param, start = f.param, initial(f)
    kind = widget_kind(param, f.start)
    help_text = f"{param.help} ({describe(param)})" if param.help else describe(param)
    if kind == "checkbox":
        return st.checkbox(f.label, value=start, key=key, help=help_text)
    if kind == "select":
        choices = list(param.choices or ("true", "false"))
        if f.start is None:
            choices = [AUTOMATIC, *choices]
        return st.selectbox(f.label, choices, index=choices.index(start), key=key, help=help_text)
    if kind == "number":
        low = None if param.min is None else int(param.min)
        high = None if param.max is None else int(param.max)
        return st.number_input(f.label, min_value=low, max_value=high, value=start, step=1, key=key, help=help_text)
    return st.text_input(f.label, value=start, key=key, help=help_text, placeholder=describe(param))


def plugin_choice(label: str, kind: str, default: str, column, prefix: str) -> str:
    """A select box of the installed plugins of ``kind``, starting at ``default``."""
    names = registry.list_plugins(kind)
    return column.selectbox(label, names, index=names.index(default) if default in names else 0,
                            key=f"{prefix}_{kind}")


def submit(path, kind: str, make, success) -> None:
    """Queue ``make()``'s payload as a job of ``kind``; a bad value is shown inline and nothing is queued.

    A job identical to one queued or running is held back: ``duplicate`` then asks for a second click.
    ``success(job_id)`` is the message once queued.
    """
    st.session_state.pop(PENDING, None)
    try:
        payload = make()
        same = next(iter(jobs.same_jobs(path, kind, payload)), None)
        job_id = None if same else jobs.submit(path, kind, payload)
    except ToptuneError as exc:
        st.error(f"Not queued: {literal(exc)}", icon=":material/error:")
        return
    if same:
        st.session_state[PENDING] = {"kind": kind, "payload": payload, "twin": same["id"], "success": success}
    else:
        st.success(success(job_id), icon=":material/check:")


def duplicate(path, kind: str) -> None:
    """Below a form: the job just submitted is identical to one queued or running, so it waits for a second click
    ("Queue it again"); or the message of one queued that way. Nothing shows once the twin has ended."""
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(notice, icon=":material/check:")
    held = st.session_state.get(PENDING)
    if not held or held["kind"] != kind:
        return
    twin_job = jobs.get_job(path, held["twin"])
    if twin_job is None or twin_job["state"] not in WAITING:
        st.session_state.pop(PENDING, None)
        return
    st.warning(f"Not queued: an identical job is already {twin_job['state']} (job `{held['twin']}`). Queue it "
               "again only if you want the same runs twice.", icon=":material/content_copy:")
    st.button("Queue it again", key="launch_again", icon=":material/add_to_queue:", on_click=_queue_held,
              args=(path,))


def _queue_held(path) -> None:
    held = st.session_state.pop(PENDING, None)
    if held:
        st.session_state[NOTICE] = held["success"](jobs.submit(path, held["kind"], held["payload"]))


PARAMS_HELP = "one key=value per line, as the CLI's --param; # starts a comment"


def param_areas(prefix: str, areas: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Text areas of key=value lines side by side, one per (label, key, placeholder)."""
    return [column.text_area(label, key=f"{prefix}_{key}", help=PARAMS_HELP, height=100, placeholder=hint)
            for column, (label, key, hint) in zip(st.columns(len(areas)), areas)]
