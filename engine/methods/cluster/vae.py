"""Variational autoencoders for clustering: an MLP on feature vectors, a small CNN on raw pixels.

Both encode to a diagonal Gaussian (μ, log σ²) of size Z, sample with the reparameterisation trick and
are trained on the negative ELBO: reconstruction + beta · KL(q(z|x) ‖ N(0, I)), summed over input
dimensions and averaged over the batch. Clustering later uses μ, the deterministic code. The training
loop takes inputs only, never labels.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import ParamError
from ...progress import Progress


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class _Gaussian(nn.Module):
    """Shared encode → sample → decode path; subclasses define ``body``, ``decode`` and ``recon_loss``."""

    def encode(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)

    def forward(self, x, generator: torch.Generator | None = None):
        mu, logvar = self.encode(x)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self.decode(mu + noise * torch.exp(0.5 * logvar)), mu, logvar


class FeatureVAE(_Gaussian):
    """MLP encoder (dim → hidden… → 2·Z) and its mirror image as decoder; Gaussian reconstruction."""

    def __init__(self, dim: int, latent: int, hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        self.body = _mlp([dim, *hidden])
        width = hidden[-1] if hidden else dim
        self.mu, self.logvar = nn.Linear(width, latent), nn.Linear(width, latent)
        back = [latent, *reversed(hidden)]
        self.expand = _mlp(back)
        self.out = nn.Linear(back[-1], dim)

    def decode(self, z):
        return self.out(self.expand(z))

    @staticmethod
    def recon_loss(out, x):
        # Unit-variance Gaussian likelihood, constants dropped: features are real-valued and scaled.
        return 0.5 * (out - x).pow(2).flatten(1).sum(1)


class ImageVAE(_Gaussian):
    """Three stride-2 convolutions down to size/8, a linear code, transposed convolutions back up.

    Pixels are in [0, 1] and the decoder outputs logits, so reconstruction is Bernoulli cross-entropy.
    """

    def __init__(self, channels: int, size: int, latent: int, width: int = 32):
        super().__init__()
        if size % 8:
            raise ValueError(f"image size must be a multiple of 8, got {size}")
        self.shape = (4 * width, size // 8, size // 8)
        flat = int(np.prod(self.shape))
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.ReLU(), nn.Flatten())
        self.mu, self.logvar = nn.Linear(flat, latent), nn.Linear(flat, latent)
        self.expand = nn.Linear(latent, flat)
        self.up = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
            nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(), nn.ConvTranspose2d(width, channels, 4, 2, 1))

    def decode(self, z):
        return self.up(self.expand(z).view(-1, *self.shape))

    @staticmethod
    def recon_loss(out, x):
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)


def kl_divergence(mu, logvar):
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, in closed form."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def elbo_loss(model, x, beta: float, generator=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction, KL), each the batch mean; loss = reconstruction + beta · KL."""
    out, mu, logvar = model(x, generator)
    recon, kl = model.recon_loss(out, x).mean(), kl_divergence(mu, logvar).mean()
    return recon + beta * kl, recon, kl


def train(model, data: torch.Tensor, *, epochs: int, lr: float, batch_size: int, beta: float, seed: int,
          device: str, progress: Progress | None = None, stage: str = "train VAE") -> list[dict]:
    """Fit ``model`` on ``data`` (inputs only) with Adam; returns one row per epoch for the epochs table.

    Shuffling and the reparameterisation noise come from generators seeded with ``seed``, so a run
    repeats exactly on CPU.
    """
    progress = progress or Progress()
    model.to(device).train()
    data = data.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed)
    rows = []
    with progress.stage(stage, epochs * len(data)):
        for epoch in range(1, epochs + 1):
            rows.append(_epoch(model, data, optimizer, batch_size, beta, order_gen, noise_gen, progress))
            rows[-1]["epoch"] = epoch
            rows[-1]["lr"] = lr
    return rows


def _epoch(model, data, optimizer, batch_size, beta, order_gen, noise_gen, progress) -> dict:
    t0 = time.perf_counter()
    sums = np.zeros(3)
    for idx in torch.randperm(len(data), generator=order_gen).split(batch_size):
        losses = elbo_loss(model, data[idx.to(data.device)], beta, noise_gen)
        if not torch.isfinite(losses[0]):
            raise ParamError(f"VAE training diverged (loss {losses[0].item()}): lower lr")
        optimizer.zero_grad(set_to_none=True)
        losses[0].backward()
        optimizer.step()
        sums += [v.item() * len(idx) for v in losses]
        progress.advance(len(idx))
    loss, recon, kl = (float(v) for v in sums / len(data))
    return {"train_loss": loss, "recon": recon, "kl": kl, "time_s": time.perf_counter() - t0}


def encode_means(model, data: torch.Tensor, device: str, batch_size: int = 512) -> np.ndarray:
    """μ for every row of ``data``, in order: the latent code that gets clustered and exported."""
    model.to(device).eval()
    with torch.inference_mode():
        parts = [model.encode(chunk.to(device))[0].float().cpu() for chunk in data.split(batch_size)]
    return torch.cat(parts).numpy()
