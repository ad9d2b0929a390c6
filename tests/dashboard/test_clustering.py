"""The Clustering page, and cluster runs on the Runs page, on studies recorded by the real engine."""

import numpy as np
import pytest

from tests.support import dashboard_studies as studies
from tests.support.dashboard import array, charts, frame_with, open_page, texts
from toptune.store import Store
from toptune.store.artifacts import artifact_path, read_table


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("clustering") / "runs.duckdb"
    with studies.plugins():
        yield path, studies.fill_studies(path)


store = studies.store  # a fixture: the recorded store, opened by the pages


def test_purity_against_z_has_error_bars_and_a_flat_k_means_line(store):
    _, made = store
    study = made["full"]
    at = open_page("clustering", {"study": study.study_id})
    assert not at.exception and not at.error
    assert at.selectbox(key="study_choice").value == study.study_id
    purity = charts(at)[0]
    lines = {t.name: t for t in purity.data if t.name}
    assert set(lines) == {"image VAE", "feature VAE", "k-means on features"}
    for name, pipeline in (("image VAE", "image-vae"), ("feature VAE", "feature-vae")):
        cells = [study.cell(pipeline, z) for z in (2, 4)]
        assert list(array(lines[name].x)) == [2, 4]
        assert array(lines[name].y) == pytest.approx([c.purity for c in cells])
        assert array(lines[name].error_y.array) == pytest.approx([c.purity_std for c in cells])
        assert all(c.n_runs == 2 for c in cells)
    kmeans = study.cell("kmeans", None)
    assert list(array(lines["k-means on features"].x)) == [2, 4]
    assert array(lines["k-means on features"].y) == pytest.approx([kmeans.purity] * 2)


def test_the_table_reads_like_the_cli(store):
    _, made = store
    study = made["full"]
    at = open_page("clustering", {"study": study.study_id})
    table = frame_with(at, "pipeline", "Z=2", "Z=4")
    assert [[name, *cells] for name, cells in study.table()] == table.values.tolist()
    assert table.iloc[1, 1] == study.cell("feature-vae", 2).text() and "±" in table.iloc[1, 1]


def test_projection_colours_the_codes_by_cluster_and_by_class_name(store):
    path, made = store
    study = made["full"]
    at = open_page("clustering", {"study": study.study_id})
    run_id = at.selectbox(key="latent_run").value
    latents = read_table(artifact_path(path, run_id, "latent"))
    _, by_cluster, by_class = charts(at)
    clusters = {t.name: len(array(t.x)) for t in by_cluster.data}
    assert clusters == {str(c): n for c, n in zip(*np.unique(latents["cluster"], return_counts=True))}
    names = [t.name for t in by_class.data]
    assert names == [studies.CLASSES[c] for c in sorted(set(latents["label"]))]  # the dataset's order, by name
    counts = {t.name: len(array(t.x)) for t in by_class.data}
    assert counts["zero"] == int((latents["label"] == 0).sum()) and sum(counts.values()) == 150

    at.radio(key="projection").set_value("tsne").run()
    assert not at.exception and not at.error
    tsne = charts(at)[1]
    assert sum(len(array(t.x)) for t in tsne.data) == 150 and "t-SNE" in tsne.layout.title.text


def test_a_study_without_exported_latents_says_how_to_get_them(store):
    _, made = store
    at = open_page("clustering", {"study": made["bare"].study_id})
    assert not at.exception and not at.error
    assert "--export-latents" in texts(at) and "k-means only" in texts(at)
    assert not charts(at)  # neither a purity curve (no Z) nor a projection
    assert frame_with(at, "pipeline", "any Z")["pipeline"].tolist() == ["k-means on features"]


def test_runs_page_shows_a_cluster_runs_scores_and_clusters_by_class(store):
    path, made = store
    run = next(r for r in Store(path).runs(study_id=made["full"].study_id) if r["metrics"]["pipeline"] == "feature-vae")
    at = open_page("runs", {"run": run["id"]})
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["purity"] == f"{run['metrics']['purity']:.4f}" and metrics["NMI"] == f"{run['metrics']['nmi']:.4f}"
    assert metrics["latent size Z"] == str(run["metrics"]["latent"]) and "accuracy" not in metrics
    table = frame_with(at, "status_badge", "purity")
    assert table.set_index("id").loc[run["id"], "purity"] == pytest.approx(run["metrics"]["purity"])
    heatmap = next(f for f in charts(at) if f.data[0].type == "heatmap")
    assert list(heatmap.data[0].y) == studies.CLASSES  # rows: true classes, by name
    assert heatmap.layout.xaxis.title.text == "cluster" and array(heatmap.data[0].z).sum() == 150
    seeds = frame_with(at, "config", "seeds")
    assert "cluster" not in set(seeds["method"])  # no accuracy to average: summarised on Clustering
