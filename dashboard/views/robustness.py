"""Robustness: test accuracy against covariate-shift strength, per method and classifier."""

import pandas as pd
import streamlit as st
from toptune.dashboard import data, research
from toptune.dashboard.ui import no_store, safely

path = data.store_path()
st.title("Robustness to covariate shift")
st.caption("How a transferred model holds up when the images drift: Gaussian pixel noise, blur, or an offset "
           "added to the features, on the training split, the test split or both.")

studies = safely(research.robustness_studies, path)
if not studies:
    if path.exists():
        st.info("No robustness study yet: `toptune robustness --dataset digits --shift awgn "
                "--levels 0,0.05,0.1,0.2 --classifiers kernel,ridge` runs one.")
    else:
        no_store(path)
    st.stop()


def label(study) -> str:
    levels = ",".join(f"{v:g}" for v in study.levels)
    return (f"{study.study_id} · {study.dataset} · {study.backbone} · {study.shift} on {study.shift_on} · "
            f"levels {levels} · {len(study.run_ids)} runs · {study.created_at:%Y-%m-%d %H:%M}")


study = research.pick_study(studies, label)
points = research.robustness_frame(study)
st.subheader(f"Accuracy vs {study.shift} strength")
st.plotly_chart(research.robustness_chart(points, study.shift), key="robustness_chart")
st.caption(f"Shifted split: **{study.shift_on}**. Strength 0 is the clean baseline. Points are the mean over "
           "seeds; bars show the standard deviation when there are several.")
levels = [f"{v:g}" for v in study.levels]
st.dataframe(pd.DataFrame([[name, *cells] for name, cells in study.table()], columns=["method", *levels]),
             hide_index=True, key="robustness_table")
with st.expander("Every figure"):
    st.dataframe(points, hide_index=True, key="robustness_points")
