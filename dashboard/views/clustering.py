"""Clustering: a study's purity against latent size per pipeline, its table, and a run's latent codes in 2-D."""

import pandas as pd
import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets.ui import nothing_yet, pick_study, safely
from toptune.studies.clustering import ROW_ORDER

PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE"}
FIGURES_CONFIG = {c: st.column_config.NumberColumn(format="%.3f") for c in
                  ("purity", "purity_std", "overlaps", "overlaps_std", "nmi", "ari")} | {
    "train_time_s": st.column_config.NumberColumn(format="%.2f")}

path = data.store_path()
st.title("Clustering")
st.caption("Unsupervised transfer: a VAE on frozen backbone features (feature VAE) against a VAE on pixels "
           "(image VAE) and k-means on the features, scored against the labels they never saw.")


@st.cache_data(max_entries=32, show_spinner="Projecting the latent codes…")
def projection(store: str, run_id: str, method: str) -> pd.DataFrame:
    # A run's exported codes never change, and t-SNE takes seconds: worth keeping across reruns.
    return data.latent_projection(store, run_id, method)


def study_label(study) -> str:
    z = ",".join(map(str, study.latents)) or "—"
    return (f"{study.study_id} · {study.dataset} · {study.backbone or 'pixels'} · Z {z} · {len(study.run_ids)} runs · "
            f"{study.created_at:%Y-%m-%d %H:%M}")


def purity_section(study) -> None:
    st.subheader("Purity vs latent size Z")
    points = pd.DataFrame(study.points())
    if study.latents:
        st.plotly_chart(charts.purity_vs_latent(points), key="purity_chart")
    else:
        st.caption("This study ran k-means only, which has no latent size: its figures are in the table.")
    st.markdown("**purity ± std (overlaps ± std)** over seeds; overlaps = classes that are the majority of no "
                "cluster")
    names = [f"Z={z}" for z in study.latents] or ["any Z"]
    st.dataframe(pd.DataFrame([[name, *cells] for name, cells in study.table()], columns=["pipeline", *names]),
                 hide_index=True, key="study_table")
    with st.expander("Every figure (NMI, ARI, time)"):
        st.dataframe(points, hide_index=True, key="study_points", column_config=FIGURES_CONFIG)


def pipeline(run: dict) -> str:
    return (run.get("metrics") or {}).get("pipeline", "?")


def run_label(run: dict) -> str:
    m = run.get("metrics") or {}
    z = f" Z={m.get('latent')}" if pipeline(run) != "kmeans" else ""
    return f"{pipeline(run)}{z} · seed {run['seed']} · purity {m.get('purity', float('nan')):.3f} · {run['id']}"


def run_order(run: dict) -> tuple:
    """As the study's table reads: image VAE, feature VAE, k-means; then by Z and seed."""
    rank = ROW_ORDER.index(pipeline(run)) if pipeline(run) in ROW_ORDER else len(ROW_ORDER)
    return rank, (run.get("metrics") or {}).get("latent") or 0, run["seed"]


def projection_section(study) -> None:
    st.subheader("Latent codes in 2-D")
    runs = sorted((r for r in safely(data.study_runs, path, study.study_id) if r["status"] == "finished"),
                  key=run_order)
    exported = {r["id"]: data.has_latents(path, r["id"]) for r in runs}
    labels = {r["id"]: run_label(r) + ("" if exported[r["id"]] else " · no latents") for r in runs}
    # The feature VAE is the study's subject: its codes are shown first when they were exported.
    first = min(range(len(runs)), key=lambda i: (not exported[runs[i]["id"]], pipeline(runs[i]) != "feature-vae", i))
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    run_id = left.selectbox("Run", list(labels), format_func=labels.get, index=first, key="latent_run")
    method = right.radio("Projection", list(PROJECTIONS), format_func=PROJECTIONS.get, horizontal=True,
                         key="projection")
    if not exported[run_id]:
        st.info("This run did not export its latent codes. Rerun the study with `toptune cluster … "
                "--export-latents` (or tick **export latent codes** on **Launch**) to plot them.",
                icon=":material/info:")
        return
    scatter(projection(str(path), run_id, method), next(r for r in runs if r["id"] == run_id), method)


def scatter(points: pd.DataFrame, run: dict, method: str) -> None:
    names = (run.get("info") or {}).get("classes") or []
    points = points.assign(cluster=points["cluster"].astype(str), **{
        "class": [names[i] if 0 <= i < len(names) else str(i) for i in points["label"]]})
    title = f"{PROJECTIONS[method]} of {len(points)} latent codes"
    by_cluster, by_class = st.columns(2)
    by_cluster.plotly_chart(charts.latent_scatter(points, "cluster", f"{title}, by cluster"), key="by_cluster")
    by_class.plotly_chart(charts.latent_scatter(points, "class", f"{title}, by class", order=names),
                          key="by_class")


index = safely(data.study_index, path, "cluster")
if index.empty:
    nothing_yet(path, "No clustering study yet: `toptune cluster --dataset D --backbone B --export-latents`, or a "
                      "clustering study from **Launch**.")

study = safely(data.study_summary, path, "cluster", pick_study(index))
if study is None:
    st.warning("No finished run in this study yet.")
    st.stop()
st.caption(study_label(study))
purity_section(study)
projection_section(study)
