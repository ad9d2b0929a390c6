"""The toptune dashboard: ``toptune dashboard`` or ``streamlit run dashboard/app.py -- --store PATH``.

Every page is a script under ``views/`` that reads through ``toptune.dashboard.data`` and launches
through ``toptune.jobs``; a new page is one more script and one more line in ``PAGES``.

Exposure settings come from the environment ``toptune dashboard`` sets (so a token is never on a command
line): ``TOPTUNE_DASHBOARD_TOKEN`` makes every page ask for it (``?token=…`` once, or the form, then kept
for the browser session); ``TOPTUNE_DASHBOARD_READ_ONLY=1`` leaves out Launch, so no job can be queued;
``TOPTUNE_DASHBOARD_DATA_ROOT`` confines the folders and weights files jobs may read (checked when a job is
queued and again by the worker, ``toptune.params.confine``).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from toptune.dashboard import data
from toptune.dashboard.widgets.ui import literal, read_only

# (script under views/, title, icon); the first is the landing page.
PAGES = [
    ("runs.py", "Runs", ":material/table_rows:"),
    ("run_comparison.py", "Run comparison", ":material/difference:"),
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("clustering.py", "Clustering", ":material/bubble_chart:"),
    ("sweeps.py", "Sweeps", ":material/grid_view:"),
    ("robustness.py", "Robustness", ":material/blur_on:"),
    ("selection.py", "Selection", ":material/filter_alt:"),
    ("predict.py", "Predict", ":material/image_search:"),
    ("launch.py", "Launch", ":material/rocket_launch:"),
    ("sql.py", "SQL", ":material/terminal:"),
    ("plugins.py", "Plugins", ":material/extension:"),
]


TOKEN_ENV, DATA_ROOT_ENV = "TOPTUNE_DASHBOARD_TOKEN", "TOPTUNE_DASHBOARD_DATA_ROOT"
LAUNCH = "launch.py"
HOME = "home"  # the first page's inner name: it is served at the root


def pages() -> list[tuple[str, str, str]]:
    """The pages this server shows: all of them, or all but Launch when read-only."""
    return [page for page in PAGES if not (read_only() and page[0] == LAUNCH)]


def navigation() -> st.navigation:
    shown = [st.Page(f"views/{script}", title=title, icon=icon, default=index == 0,
                     url_path=HOME if index == 0 else script.removesuffix(".py"))
             for index, (script, title, icon) in enumerate(pages())]
    # The first page lives at the root; its own name (/runs) leads there too, with the URL's query, instead of to
    # Streamlit's "Page not found".
    home = shown[0]

    def to_home() -> None:
        st.switch_page(home, query_params={key: st.query_params.get_all(key) for key in st.query_params})

    alias = st.Page(to_home, title=home.title, url_path=pages()[0][0].removesuffix(".py"), visibility="hidden")
    return st.navigation([*shown, alias])


def matches(given, token: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


def admitted() -> bool:
    """Whether this browser session may see the pages: always without a token; with one, once it was given
    (``?token=…`` in the URL, removed from it at once, or the form), for the rest of the session."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token or st.session_state.get("admitted"):
        return True
    given = st.query_params.get("token")
    if given is not None:
        del st.query_params["token"]  # out of the address bar, the history and later links
    if matches(given, token):
        st.session_state["admitted"] = True
        return True
    st.title("toptune")
    with st.form("token_form"):
        typed = st.text_input("Access token", type="password", key="token_input",
                              help="this dashboard was started with --token (or TOPTUNE_DASHBOARD_TOKEN)")
        sent = st.form_submit_button("Open", type="primary")
    if sent and matches(typed, token):
        st.session_state["admitted"] = True
        st.rerun()
    if sent or given is not None:
        st.error("Wrong access token.", icon=":material/lock:")
    return False


st.set_page_config(page_title="toptune", page_icon=":material/speed:", layout="wide")
if not admitted():
    st.stop()
page = navigation()
st.sidebar.caption(f"Store: {literal(data.store_path())}")
if read_only():
    st.sidebar.caption("Read-only: nothing can be launched from this dashboard.")
page.run()
