"""Plugins: every installed backbone, classifier and dataset, whichever distribution registered it."""

import streamlit as st

from toptune.dashboard import data
from toptune.dashboard.widgets.ui import badge_column, literal

STATUS_COLOURS = {"ok": "green", "unavailable": "orange", "error": "red"}

st.title("Plugins")
st.caption("Registered through the `toptune.backbones`, `toptune.classifiers` and `toptune.datasets` entry "
           "points; a broken plugin is listed with its error and never affects the others. "
           "`toptune plugins check` smoke-tests them.")
plugins = data.plugins_frame()
broken = plugins[plugins["status"] == "error"]
unavailable = plugins[plugins["status"] == "unavailable"]
st.markdown(f"**{len(plugins)}** plugins from **{plugins['distribution'].nunique()}** distribution(s)" +
            (f" · :red-badge[{len(broken)} broken]" if len(broken) else " · :green-badge[none broken]") +
            (f" · :orange-badge[{len(unavailable)} need an optional install]" if len(unavailable) else ""))
for kind, group in plugins.groupby("kind", sort=False):
    st.subheader(f"{kind.capitalize()}s")
    st.dataframe(group.drop(columns=["kind", "error"]).assign(status=group["status"].map(lambda s: [s])),
                 hide_index=True, key=f"plugins_{kind}",
                 column_config={"status": badge_column("status", STATUS_COLOURS)})
for row in broken.itertuples():
    st.error(literal(f"{row.kind} {row.name} ({row.distribution} {row.version}): {row.error}"))
for row in unavailable.itertuples():
    st.warning(literal(f"{row.kind} {row.name} ({row.distribution} {row.version}): {row.error}"))
