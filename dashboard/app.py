"""The toptune dashboard: ``toptune dashboard`` or ``streamlit run dashboard/app.py -- --store PATH``.

Every page is a script under ``views/`` that reads through ``toptune.dashboard.data`` and launches
through ``toptune.jobs``; a new page is one more script and one more line in ``PAGES``.
"""

from __future__ import annotations

import streamlit as st

from toptune.dashboard import data

# (script under views/, title, icon); the first is the landing page.
PAGES = [
    ("runs.py", "Runs", ":material/table_rows:"),
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


def navigation() -> st.navigation:
    pages = [st.Page(f"views/{script}", title=title, icon=icon, url_path=script.removesuffix(".py"),
                     default=index == 0)
             for index, (script, title, icon) in enumerate(PAGES)]
    return st.navigation(pages)


st.set_page_config(page_title="toptune", page_icon=":material/speed:", layout="wide")
page = navigation()
st.sidebar.caption(f"Store: `{data.store_path()}`")
page.run()
