"""Clustering: metrics on hand-made assignments, the VAEs, determinism, label blindness, studies, CLI."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toptune import registry
from toptune.cli import app
from toptune.errors import ParamError, StoreError
from toptune.methods.cluster import vae
from toptune.methods.cluster.metrics import contingency, overlaps, purity, scores
from toptune.params import Param
from toptune.protocols import DatasetSplits
from toptune.runner import execute, run
from toptune.spec import RunSpec, resolve
from toptune.store import Store
from toptune.store.artifacts import artifact_path, read_table, run_dir
from toptune.studies import clustering

# Few images, few epochs: every run below takes well under a second.
QUICK = {"epochs": 3, "vae_batch_size": 32, "hidden": "32", "width": 4, "vae_image_size": 8, "kmeans_init": 2,
         "batch_size": 64}


class _Split:
    def __init__(self, images, labels):
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return Image.fromarray(self.images[i]).convert("RGB"), int(self.labels[i])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: a second intra-op thread only adds synchronisation (badly so on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def tiny_plugins():
    """A fixed random-conv backbone and a 150-image digits set whose labels can be shuffled.

    The dataset's split is positional (first 100 / last 50), so shuffling labels changes nothing but labels.
    """
    from sklearn.datasets import load_digits

    class Stem(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x)).mean((2, 3))

    @registry.register_backbone("tiny-stem")
    class TinyStem:
        api_version, description, pretrain_source = 1, "one random conv layer, for tests", "none"
        params = {}
        preprocessing = {"input_size": 16, "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.5] * 3,
                         "std": [0.5] * 3}

        def build(self):
            return Stem().eval()

        def weights_digest(self):
            return "tiny-stem-0"

    bunch = load_digits()
    images = np.round(bunch.images[:150] / 16 * 255).astype(np.uint8)

    @registry.register_dataset("digits150")
    class Digits150:
        api_version, description = 1, "150 digits, positional split, optional label shuffle"
        params = {"shuffle_labels": Param("bool", False)}

        def __init__(self, shuffle_labels=False):
            self.labels = bunch.target[:150].copy()
            if shuffle_labels:
                self.labels = np.random.default_rng(1).permutation(self.labels)

        def load(self):
            return DatasetSplits(_Split(images[:100], self.labels[:100]), _Split(images[100:], self.labels[100:]),
                                 [str(d) for d in range(10)], {})

        def fingerprint(self):
            return f"digits150-{self.labels.tobytes().hex()[:32]}"

    yield
    registry.unregister("backbone", "tiny-stem")
    registry.unregister("dataset", "digits150")


def _spec(pipeline, seed=0, **params):
    return RunSpec("cluster", "tiny-stem", "digits150", None,
                   {**QUICK, "pipeline": pipeline, "latent": 3, "cache": False, **params}, seed)


# ---- metrics -----------------------------------------------------------------------------------------
def test_purity_of_three_clusters_with_majorities_5_4_5_is_two_thirds():
    clusters = [0] * 7 + [1] * 7 + [2] * 7
    labels = [0, 0, 0, 0, 0, 1, 2] + [1, 1, 1, 1, 0, 2, 2] + [2, 2, 2, 2, 2, 0, 1]
    assert purity(labels, clusters) == pytest.approx(14 / 21)
    assert overlaps(labels, clusters) == 0
    # Renaming clusters or classes changes nothing.
    assert purity([f"c{v}" for v in labels], [9 - c for c in clusters]) == pytest.approx(2 / 3)


def test_overlaps_count_classes_that_lead_no_cluster():
    clusters = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    labels = [0, 0, 0, 1, 0, 0, 2, 1, 1, 1, 3, 3]  # majorities 0, 0, 1: classes 2 and 3 are lost
    assert overlaps(labels, clusters) == 2
    assert purity(labels, clusters) == pytest.approx((3 + 2 + 3) / 12)
    assert contingency(labels, clusters).tolist() == [[3, 1, 0, 0], [2, 0, 1, 0], [0, 3, 0, 2]]


def test_a_tie_keeps_both_classes_and_perfect_clusters_score_one():
    assert overlaps([0, 0, 1, 1], [5, 5, 5, 5]) == 0
    assert overlaps([0, 0, 1, 2], [5, 5, 5, 5]) == 2
    labels = np.repeat(np.arange(4), 5)
    s = scores(labels, (labels + 1) % 4)
    assert s == {"purity": 1.0, "overlaps": 0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
    one = scores(labels[1:], np.zeros(19))  # one cluster for all: class 0 is one short, the three others tie
    assert one["purity"] == pytest.approx(5 / 19) and one["overlaps"] == 1 and one["nmi"] == pytest.approx(0.0)


# ---- the VAEs --------------------------------------------------------------------------------------
def test_feature_vae_loss_decreases_and_means_separate_the_blobs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (100, 16)), rng.normal(2, 1, (100, 16))]).astype(np.float32)
    torch.manual_seed(0)
    model = vae.FeatureVAE(16, 2, (32,))
    rows = vae.train(model, torch.from_numpy(x), epochs=30, lr=3e-3, batch_size=32, beta=1.0, seed=0, device="cpu")
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert rows[-1]["train_loss"] == pytest.approx(rows[-1]["recon"] + rows[-1]["kl"])
    mu = vae.encode_means(model, torch.from_numpy(x), "cpu")
    assert mu.shape == (200, 2)
    assert scores(np.repeat([0, 1], 100), (mu[:, np.argmax(mu.std(0))] > np.median(mu)).astype(int))["purity"] > 0.95


def test_image_vae_loss_decreases_on_small_images():
    rng = np.random.default_rng(0)
    x = np.zeros((64, 3, 8, 8), dtype=np.float32)
    x[:32, :, :4] = 1.0  # top half lit or bottom half lit
    x[32:, :, 4:] = 1.0
    x = np.clip(x + rng.uniform(0, 0.1, x.shape), 0, 1).astype(np.float32)
    torch.manual_seed(0)
    rows = vae.train(vae.ImageVAE(3, 8, 2, width=4), torch.from_numpy(x), epochs=40, lr=1e-2, batch_size=16,
                     beta=1.0, seed=0, device="cpu")
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]


# ---- cluster runs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", ["feature-vae", "image-vae"])
def test_same_seed_gives_identical_latents_and_clusters(pipeline):
    # Pinned to the CPU: the guarantee is bit-identity there, not across CUDA kernels.
    a, b = (execute(_spec(pipeline, export_latents=True, device="cpu")) for _ in range(2))
    other = execute(_spec(pipeline, seed=1, export_latents=True, device="cpu"))
    za, zb = (np.column_stack([r.artifacts["latent"][f"z_{j}"] for j in range(3)]) for r in (a, b))
    assert np.array_equal(za, zb) and np.array_equal(a.y_pred, b.y_pred) and a.metrics == b.metrics
    assert not np.array_equal(za, np.column_stack([other.artifacts["latent"][f"z_{j}"] for j in range(3)]))


@pytest.mark.parametrize("pipeline", ["feature-vae", "image-vae", "kmeans"])
def test_labels_never_reach_training(pipeline):
    true = execute(_spec(pipeline, export_latents=True))
    shuffled = execute(_spec(pipeline, export_latents=True, **{"dataset.shuffle_labels": True}))
    t, s = true.artifacts["latent"], shuffled.artifacts["latent"]
    assert not np.array_equal(t["label"], s["label"])  # the labels did change...
    latent = [c for c in t if c.startswith("z_")]
    assert all(np.array_equal(t[c], s[c]) for c in latent)  # ...the codes and clusters did not
    assert np.array_equal(true.y_pred, shuffled.y_pred)
    assert true.metrics["purity"] > shuffled.metrics["purity"]  # scoring is the only place labels enter


def test_a_cluster_run_is_recorded_with_metrics_and_no_accuracy(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id, result = run(_spec("feature-vae", export_latents=True), store)
    row = store.get_run(run_id)
    assert row["method"] == "cluster" and row["classifier"] is None and row["accuracy"] is None
    m = row["metrics"]
    assert {"purity", "overlaps", "nmi", "ari"} <= set(m) and m["latent"] == 3 and m["latent_bytes_per_image"] == 12
    assert 0.1 <= m["purity"] <= 1 and row["train_time_s"] > 0 and row["n_train"] == 150
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3]
    pred = store.query(f"SELECT y_true, y_pred FROM predictions WHERE run_id = '{run_id}'").rows
    assert purity([r[0] for r in pred], [r[1] for r in pred]) == pytest.approx(m["purity"])
    table = read_table(artifact_path(store.path, run_id, "latent"))
    assert artifact_path(store.path, run_id, "latent").parent == run_dir(store.path, run_id)
    assert len(table["sample"]) == 150 and set(table["split"]) == {"train", "test"}
    assert np.array_equal(table["cluster"], result.y_pred)


def test_cluster_params_are_checked_before_running():
    image = resolve(_spec("image-vae"))
    assert image.spec.backbone is None and "backbone" not in image.params  # pixels only
    assert resolve(_spec("feature-vae")).params["run"]["k"] is None
    with pytest.raises(ParamError, match="multiple of 8"):
        resolve(_spec("image-vae", vae_image_size=12))
    with pytest.raises(ParamError, match="hidden"):
        resolve(_spec("feature-vae", hidden="64,x"))
    with pytest.raises(ParamError, match="choose from"):
        resolve(_spec("pca-vae"))


# ---- studies, CLI, projection -----------------------------------------------------------------------
def test_a_study_links_its_runs_and_summarises_over_seeds(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    specs = clustering.plan("digits150", "tiny-stem", [2, 4], seeds=2, shared={**QUICK, "cache": False},
                            preset="gpu")
    assert len(specs) == 2 * (1 + 2 * 2)
    study = clustering.STUDY.run(specs, store)
    rows = store.runs(study_id=study.study_id)
    assert len(rows) == 10 and sorted(study.run_ids) == sorted(r["id"] for r in rows)
    assert all(r["info"]["plan"] == {"preset": "gpu", "seeds": 2} for r in rows)
    assert {r["backbone"] for r in rows if r["params"]["run"]["pipeline"] == "image-vae"} == {None}
    cell = study.cell("feature-vae", 4)
    purities = [r["metrics"]["purity"] for r in rows
                if r["params"]["run"]["pipeline"] == "feature-vae" and r["params"]["run"]["latent"] == 4]
    assert cell.n_runs == 2 and cell.purity == pytest.approx(np.mean(purities))
    assert cell.purity_std == pytest.approx(np.std(purities, ddof=1))
    assert study.cell("kmeans", 2) is study.cell("kmeans", 4)  # one k-means result spans every Z
    assert [name for name, _ in study.table()] == ["image VAE", "feature VAE", "k-means on features"]
    assert [s.study_id for s in clustering.STUDY.find(store)] == [study.study_id]


def test_cli_prints_the_study_table_and_exports_latents(tmp_path):
    store = tmp_path / "s.duckdb"
    args = ["cluster", "--dataset", "digits150", "--backbone", "tiny-stem", "--latent", "2,5", "--seeds", "1",
            "--preset", "gpu", "--export-latents", "--store", str(store), "-q"]
    for key, value in {**QUICK, "cache": False}.items():
        args += ["--param", f"{key}={value}"]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for text in ("image VAE", "feature VAE", "k-means on features", "Z=2", "Z=5", " ± ", "latent.parquet"):
        assert text in res.output
    row = next(line for line in res.output.splitlines() if "feature VAE" in line)
    assert row.count("±") == 4  # purity and overlaps, in both columns
    run_id = Store(store).runs(limit=1)[0]["id"]
    for method in ("pca", "tsne"):
        proj = clustering.latent_projection(store, run_id, method)
        assert proj["x"].shape == proj["y"].shape == proj["label"].shape == (150,)
        assert np.isfinite(proj["x"]).all()


def test_projection_without_export_says_how_to_get_one(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id, _ = run(_spec("kmeans"), store)
    with pytest.raises(StoreError, match="--export-latents"):
        clustering.latent_projection(store.path, run_id)
    with pytest.raises(StoreError, match="invalid run id"):
        run_dir(store.path, "../x")
