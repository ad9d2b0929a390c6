"""The launch form, generated from the registry: one field per parameter of the method and each plugin.

The fields, the values they start with and how their answers become a job are plain functions, so
they are tested without a browser; ``widget`` is the only part that draws. Only answers that differ
from what a field started with are sent: defaults stay the engine's to fill in (a plugin's seed and
device follow the run's unless set), and the stored spec shows what the user actually chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from toptune import jobs, registry
from toptune.errors import ToptuneError
from toptune.methods import METHODS
from toptune.params import Param
from toptune.spec import RunSpec, resolve
from toptune.studies import compare as cmp

AUTOMATIC = "(automatic)"


@dataclass(frozen=True)
class Field:
    target: str  # where the answer goes: "params" of a run; "shared", "top" or "fine" of a comparison
    key: str  # as RunSpec.params takes it: bare for the method's own, "classifier.M" for a plugin's
    param: Param
    start: Any  # the schema's default, or the comparison preset's value

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]


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
    bits.append("default: " + ("automatic" if param.default is None else str(param.default)))
    return ", ".join(bits)


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
    resolve(spec)
    return spec.to_dict()


def compare_payload(backbone: str, dataset: str, classifier: str, seeds: int, preset: str, given: dict) -> dict:
    """compare.plan's arguments for ``jobs.submit(..., 'compare', ...)``, validated by planning them."""
    payload = {"dataset": dataset, "backbone": backbone, "classifier": classifier, "seeds": int(seeds),
               "shared": given.get("shared", {}), "top": given.get("top", {}), "fine": given.get("fine", {}),
               "preset": preset}
    cmp.plan(**payload)
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
        return st.checkbox(f.name, value=start, key=key, help=help_text)
    if kind == "select":
        choices = list(param.choices or ("true", "false"))
        if f.start is None:
            choices = [AUTOMATIC, *choices]
        return st.selectbox(f.name, choices, index=choices.index(start), key=key, help=help_text)
    if kind == "number":
        low = None if param.min is None else int(param.min)
        high = None if param.max is None else int(param.max)
        return st.number_input(f.name, min_value=low, max_value=high, value=start, step=1, key=key, help=help_text)
    return st.text_input(f.name, value=start, key=key, help=help_text, placeholder=describe(param))


def plugin_choice(label: str, kind: str, default: str, column, prefix: str) -> str:
    """A select box of the installed plugins of ``kind``, starting at ``default``."""
    names = registry.list_plugins(kind)
    return column.selectbox(label, names, index=names.index(default) if default in names else 0,
                            key=f"{prefix}_{kind}")


def submit(path, kind: str, make, success) -> None:
    """Queue ``make()``'s payload as a job of ``kind``; a bad value is shown inline and nothing is queued."""
    try:
        job_id = jobs.submit(path, kind, make())
    except ToptuneError as exc:
        st.error(f"Not queued: {exc}", icon=":material/error:")
    else:
        st.success(success(job_id), icon=":material/check:")


PARAMS_HELP = "one key=value per line, as the CLI's --param; # starts a comment"


def param_areas(prefix: str, areas: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Text areas of key=value lines side by side, one per (label, key, placeholder)."""
    return [column.text_area(label, key=f"{prefix}_{key}", help=PARAMS_HELP, height=100, placeholder=hint)
            for column, (label, key, hint) in zip(st.columns(len(areas)), areas)]
