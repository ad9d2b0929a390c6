"""Small display helpers shared by the pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from toptune.errors import ToptuneError


def safely(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an engine function; a toptune error becomes a red line on the page and stops it there.

    Such errors are meant for users (a store from a newer toptune, a store busy for a whole minute),
    so the page shows the message instead of a traceback.
    """
    try:
        return fn(*args, **kwargs)
    except ToptuneError as exc:
        st.error(str(exc))
        st.stop()


# Badge colours by name, as st.badge and Markdown's :colour-badge[] take them, and as CSS for tables.
CSS_COLOURS = {"blue": "#1c83e1", "green": "#21c354", "red": "#ff4b4b", "orange": "#ffa421", "gray": "#a3a8b8"}


def badge_column(label: str, colours: dict[str, str]) -> st.column_config.Column:
    """A table column of one coloured label per row (its cells are one-item lists)."""
    return st.column_config.MultiselectColumn(label, options=list(colours),
                                              color=[CSS_COLOURS[c] for c in colours.values()])


def no_store(path) -> None:
    st.info(f"No store at `{path}` yet. Runs started from the **Launch** page, `toptune run` or "
            "`toptune compare` with this store create it.")


def nothing_yet(path, hint: str) -> None:
    """The page has nothing to show: say what would fill it (or that there is no store yet), and stop."""
    st.info(hint) if Path(path).exists() else no_store(path)
    st.stop()


def pick_study(studies: list, label) -> object:
    """A study chosen in a select box, newest first; the URL's ``study`` picks it, and keeps the choice."""
    labels = {s.study_id: label(s) for s in reversed(studies)}
    wanted = st.query_params.get("study")
    study_id = st.selectbox("Study", list(labels), format_func=labels.get, key="study_choice",
                            index=list(labels).index(wanted) if wanted in labels else 0)
    st.query_params["study"] = study_id
    return next(s for s in studies if s.study_id == study_id)
