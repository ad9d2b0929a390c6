"""Small display helpers shared by the pages."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from toptune.errors import ToptuneError

READ_ONLY_ENV = "TOPTUNE_DASHBOARD_READ_ONLY"


def read_only() -> bool:
    """Whether this server was started read-only (``toptune dashboard --read-only``): nothing is launched or
    changed from it (no Launch page, no renaming, tagging, archiving or deleting runs)."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def as_text(value: Any) -> str | None:
    """A cell of a table of mixed values: text (lists and dicts as JSON), or None for an empty value, which every
    table shows the same way (Streamlit's grey None), as it shows an empty number; never "null"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps(value, default=str) if isinstance(value, dict | list | tuple) else str(value)


def key_values(mapping: dict, prefix: str = "") -> pd.DataFrame:
    """A nested mapping (a run's parameters, its info) as a two-column table: ``run.epochs`` → ``3``."""
    rows = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            rows += key_values(value, f"{prefix}{key}.").to_dict("records")
        else:
            rows.append({"key": f"{prefix}{key}", "value": as_text(value)})
    return pd.DataFrame(rows, columns=["key", "value"])


def safely(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an engine function; a toptune error becomes a red line on the page and stops it there.

    Such errors are meant for users (a store from a newer toptune, a store busy for a whole minute),
    so the page shows the message instead of a traceback.
    """
    try:
        return fn(*args, **kwargs)
    except ToptuneError as exc:
        st.error(literal(exc))
        st.stop()


def literal(text) -> str:
    """Markdown that shows ``text`` exactly as it is (one line): a code span, so users' words, paths and error
    messages are never read as Markdown, links, icons (:material/…:) or colours (:red[…])."""
    line = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", line)), default=0) + 1)
    return f"{fence} {line} {fence}"


# Badge colours by name, as st.badge and Markdown's :colour-badge[] take them, and as CSS for tables.
CSS_COLOURS = {"blue": "#1c83e1", "green": "#21c354", "red": "#ff4b4b", "orange": "#ffa421", "gray": "#a3a8b8"}


def badge_column(label: str, colours: dict[str, str]) -> st.column_config.Column:
    """A table column of one coloured label per row (its cells are one-item lists)."""
    return st.column_config.MultiselectColumn(label, options=list(colours),
                                              color=[CSS_COLOURS[c] for c in colours.values()])


def no_store(path) -> None:
    st.info(f"No store at {literal(path)} yet. Runs started from the **Launch** page, `toptune run` or "
            "`toptune compare` with this store create it.")


def nothing_yet(path, hint: str) -> None:
    """The page has nothing to show: say what would fill it (or that there is no store yet), and stop."""
    st.info(hint) if Path(path).exists() else no_store(path)
    st.stop()


def pick_study(index) -> str:
    """A study chosen in a select box, newest first (``index``: one row per study, as ``data.study_index``
    gives); the URL's ``study`` picks it, and keeps the choice, even when it is older than the list."""
    labels = {row["study_id"]: f"{row['study_id']} · {row['dataset']} · {row['backbone'] or 'pixels'} · "
                               f"{row['runs']} runs · {row['created_at']:%Y-%m-%d %H:%M}"
              for row in index.to_dict("records")}
    wanted = st.query_params.get("study")
    if wanted and wanted not in labels:
        labels = {wanted: wanted, **labels}
    study_id = st.selectbox("Study", list(labels), format_func=labels.get, key="study_choice",
                            index=list(labels).index(wanted) if wanted in labels else 0)
    st.query_params["study"] = study_id
    return study_id
