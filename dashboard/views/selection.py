"""Selection: fine-tuned accuracy per data-selection rule and subset size."""

import pandas as pd
import streamlit as st
from toptune.dashboard import data, research
from toptune.dashboard.ui import no_store, safely

path = data.store_path()
st.title("Data selection for fine-tuning")
st.caption("Which training images are worth fine-tuning on: the ones a classifier on the pre-trained features "
           "is least sure of (entropy-high), most sure of (entropy-low), or a random draw, at equal sizes.")

studies = safely(research.selection_studies, path)
if not studies:
    if path.exists():
        st.info("No selection study yet: `toptune select-study --dataset digits --fractions 0.25,0.5` runs one.")
    else:
        no_store(path)
    st.stop()


def label(study) -> str:
    fractions = ",".join(f"{f:g}" for f in study.fractions)
    return (f"{study.study_id} · {study.dataset} · {study.backbone} · fractions {fractions} · "
            f"{len(study.run_ids)} runs · {study.created_at:%Y-%m-%d %H:%M}")


study = research.pick_study(studies, label)
points = research.selection_frame(study)
st.subheader("Accuracy per rule and subset size")
st.plotly_chart(research.selection_chart(points), key="selection_chart")
st.caption("Each bar is the mean test accuracy over seeds of fine-tuning on the chosen subset; error bars show "
           "the standard deviation when there are several seeds.")
columns = [f"{f:g} ({study.subset_sizes[f]} images)" for f in study.fractions]
st.dataframe(pd.DataFrame([[rule, *cells] for rule, cells in study.table()], columns=["rule", *columns]),
             hide_index=True, key="selection_table")
with st.expander("Every figure"):
    st.dataframe(points, hide_index=True, key="selection_points")
