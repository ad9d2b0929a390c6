"""The ``cluster`` method: a VAE on frozen features (or on pixels), then k-means on the latent means.

Pipelines: ``feature-vae`` (the study's proposal), ``image-vae`` (its baseline on raw pixels) and
``kmeans`` (k-means straight on the features, no VAE). Labels are read only by the scoring at the end,
so ``accuracy`` stays empty: a cluster run classifies nothing. Its figures go to ``metrics``.
"""

from __future__ import annotations

import time

import numpy as np

from ... import registry
from ...data import dataset_info
from ...errors import DatasetError
from ...progress import Progress
from ...results import RunResult
from ..base import COMMON_PARAMS, Method
from . import inputs as inputs_mod
from .metrics import scores
from .params import CLUSTER_PARAMS, check, hidden_sizes, settle


def _vae(x: np.ndarray, run: dict, seed: int, device: str, progress: Progress):
    """Train the pipeline's VAE on ``x``; returns (latent means, epoch rows, trained parameter count)."""
    import torch

    from . import vae

    torch.manual_seed(seed)  # the weights' initialisation, whatever ran before in this process
    if run["pipeline"] == "image-vae":
        model = vae.ImageVAE(x.shape[1], x.shape[2], run["latent"], run["width"])
    else:
        model = vae.FeatureVAE(x.shape[1], run["latent"], hidden_sizes(run["hidden"]))
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    rows = vae.train(model, data, epochs=run["epochs"], lr=run["lr"], batch_size=run["vae_batch_size"],
                     beta=run["beta"], seed=seed, device=device, progress=progress,
                     stage=f"{run['pipeline']} Z={run['latent']}")
    last = rows[-1]
    progress.note(f"{run['pipeline']} Z={run['latent']}: loss {last['train_loss']:.2f} "
                  f"(reconstruction {last['recon']:.2f}, KL {last['kl']:.2f}) after {len(rows)} epochs")
    n_params = sum(p.numel() for p in model.parameters())
    return vae.encode_means(model, data, device), rows, n_params


def _kmeans(codes: np.ndarray, k: int, run: dict, seed: int, progress: Progress) -> np.ndarray:
    from sklearn.cluster import KMeans

    with progress.stage(f"k-means k={k} on {codes.shape[1]}-d codes"):
        return KMeans(k, n_init=run["kmeans_init"], random_state=seed).fit_predict(codes).astype(np.int64)


def _inputs(rs, cache, device: str, progress: Progress):
    dataset = registry.create("dataset", rs.spec.dataset, **rs.params["dataset"])
    splits = dataset.load()
    if rs.params["run"]["pipeline"] == "image-vae":
        return splits, inputs_mod.pixels(rs, splits, progress)
    got = inputs_mod.features(rs, dataset, splits, cache, device, progress)
    got.x = inputs_mod.scale(got.x, rs.params["run"]["scaling"])
    return splits, got


def latent_table(got, codes: np.ndarray, clusters: np.ndarray) -> dict:
    """Columns of the latent export: one row per image, ``z_0 … z_{Z-1}`` the latent means."""
    table = {"sample": got.sample, "split": got.split.astype(str), "index": got.index,
             "label": got.labels, "cluster": clusters}
    table.update({f"z_{j}": codes[:, j] for j in range(codes.shape[1])})
    return table


def _metrics(labels, clusters, codes: np.ndarray, k: int, pipeline: str, epochs: list) -> dict:
    """Scores plus what a deployment cares about: the code's size per image, and how training ended."""
    out = {**scores(labels, clusters), "k": k, "pipeline": pipeline, "latent": int(codes.shape[1]),
           "latent_bytes_per_image": int(codes.shape[1] * codes.itemsize)}
    if epochs:
        out.update({f"final_{key}": float(epochs[-1][key]) for key in ("train_loss", "recon", "kl")})
    return out


def cluster(rs, cache, device: str, progress: Progress) -> RunResult:
    """Fit the pipeline without labels, cluster, then score against the labels."""
    spec, run = rs.spec, rs.params["run"]
    splits, got = _inputs(rs, cache, device, progress)
    k = run["k"] or len(splits.classes)  # the number of classes is metadata, not per-image labels
    if len(got) < k:
        raise DatasetError(f"dataset '{spec.dataset}': {len(got)} images cannot form k={k} clusters")
    t0 = time.perf_counter()
    if run["pipeline"] == "kmeans":
        codes, epochs, n_params = got.x, [], 0
    else:
        codes, epochs, n_params = _vae(got.x, run, spec.seed, device, progress)
    clusters = _kmeans(codes, k, run, spec.seed, progress)
    fit_time = time.perf_counter() - t0

    metrics = _metrics(got.labels, clusters, codes, k, run["pipeline"], epochs)
    extra = {key: value for key, value in got.info.items() if key != "pretrain_source"}
    info = {**dataset_info(splits), **extra, "clustered": "train+test"}
    return RunResult(
        accuracy=None, train_time_s=got.prepare_time_s + fit_time, extract_time_s=got.prepare_time_s,
        fit_time_s=fit_time, predict_time_s=None, trained_params=int(n_params + k * codes.shape[1]),
        n_train=len(got), n_test=len(got), n_classes=len(splits.classes), feature_dim=int(np.prod(got.x.shape[1:])),
        cache_hit=got.cache_hit, pretrain_source=got.info.get("pretrain_source"),
        params={ns: dict(values) for ns, values in rs.params.items()}, info=info, metrics=metrics,
        y_true=got.labels, y_pred=clusters, samples=got.sample,
        epochs=[{c: r[c] for c in ("epoch", "train_loss", "lr", "time_s")} for r in epochs],
        artifacts={"latent": latent_table(got, codes, clusters)} if run["export_latents"] else {},
    )


METHOD = Method("cluster", "a VAE on frozen features (or pixels), then k-means; no labels (scored against them)",
                {**COMMON_PARAMS, **CLUSTER_PARAMS}, cluster, check=check, settle=settle, trains_network=True)
