"""Run parameters of the ``cluster`` method and the checks that need more than one of them.

They join the method's row of ``methods.METHODS``; nothing here imports the rest of the engine.
"""

from __future__ import annotations

from dataclasses import replace

from ...errors import ParamError
from ...params import Param

PIPELINES = ("feature-vae", "image-vae", "kmeans")
SCALINGS = ("global", "per-feature", "none")

CLUSTER_PARAMS = {
    "pipeline": Param("str", "feature-vae", "feature-vae (VAE on frozen features), image-vae (VAE on pixels) "
                      "or kmeans (k-means on the features directly)", choices=PIPELINES),
    "latent": Param("int", 10, "latent size Z of the VAE", min=1, max=8192),
    "k": Param("int", None, "number of clusters (default: the dataset's number of classes)", min=2),
    "epochs": Param("int", 30, "VAE training epochs", min=1, max=10000),
    "lr": Param("float", 1e-3, "Adam learning rate of the VAE", min=1e-8, max=1.0),
    "vae_batch_size": Param("int", 128, "VAE training mini-batch size", min=1, max=65536),
    "beta": Param("float", 1.0, "weight of the KL term in the loss (1 = the ELBO)", min=0.0),
    "hidden": Param("str", "512,256", "feature VAE: encoder hidden widths, comma-separated (decoder mirrors)"),
    "width": Param("int", 32, "image VAE: channels of the first convolution (doubled twice)", min=1, max=1024),
    "vae_image_size": Param("int", 32, "image VAE: images are resized to this square size (multiple of 8)",
                            min=8, max=512),
    "scaling": Param("str", "global", "feature scaling before the VAE and k-means: global (centre, one "
                     "overall std), per-feature (z-score each dimension) or none", choices=SCALINGS),
    "kmeans_init": Param("int", 10, "k-means restarts (the best inertia is kept)", min=1, max=1000),
    "export_latents": Param("bool", False, "write the latent codes to <store>.artifacts/<run id>/latent.parquet"),
    "cache": Param("bool", True, "reuse and store extracted features in the feature cache"),
}


def hidden_sizes(text: str) -> tuple[int, ...]:
    """Parse ``hidden`` ('512,256'; '' for none) into widths, each a positive integer."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise ParamError(f"hidden must be comma-separated integers like 512,256, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise ParamError(f"hidden widths must be >= 1, got {text!r}")
    return sizes


def check(run: dict) -> None:
    """What the schema alone cannot say: the hidden widths' syntax, an image size the VAE can halve thrice."""
    hidden_sizes(run["hidden"])
    if run["vae_image_size"] % 8:
        raise ParamError(f"vae_image_size must be a multiple of 8 (three stride-2 layers), got {run['vae_image_size']}")


def settle(spec, params: dict) -> tuple:
    """An image VAE sees pixels only, so it drops the backbone; the other pipelines need one."""
    run = params["run"]
    if run["pipeline"] == "image-vae":
        params = {ns: values for ns, values in params.items() if ns != "backbone"}
        return replace(spec, backbone=None), params
    if not spec.backbone:
        raise ParamError(f"pipeline '{run['pipeline']}' clusters backbone features: give a backbone")
    return spec, params
