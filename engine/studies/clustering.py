"""Clustering studies: feature VAE vs image VAE vs k-means on features, over latent sizes and seeds.

A study is a set of ``cluster`` runs linked by one ``study_id``, planned here, run one by one through
the ordinary recording path and summarised per (pipeline, Z) as mean ± std over seeds, the way the
plankton study reports it. The dashboard reads studies through ``studies`` and plots a run's latent
codes through ``latent_projection``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParamError, StoreError
from ..methods.cluster.params import PIPELINES
from ..spec import RunSpec, resolve
from ..store.artifacts import artifact_path, read_table
from .common import Cell, Plan, Study, finished, seed_count, seeds_text
from .common import preset as resolve_preset

METHOD = "cluster"
ROW_ORDER = ("image-vae", "feature-vae", "kmeans")
ROW_NAMES = {"image-vae": "image VAE", "feature-vae": "feature VAE", "kmeans": "k-means on features"}
DEFAULT_LATENTS = (10, 30, 50, 100, 500)
METRICS = ("purity", "overlaps", "nmi", "ari", "train_time_s")

# 'gpu' keeps the method's defaults with 3 seeds. 'cpu' keeps a digits study to minutes on two cores:
# 128 px backbone inputs (extraction dominates), fewer epochs, a narrower image VAE and one seed.
PRESETS = {
    "gpu": {"feature": {}, "image": {}, "seeds": 3},
    "cpu": {"feature": {"image_size": 128, "epochs": 15}, "image": {"epochs": 10, "width": 16}, "seeds": 1},
}


def parse_latents(text: str) -> list[int]:
    """'10,30,50' -> [10, 30, 50]; each a positive integer, no repeats."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ParamError(f"--latent takes comma-separated integers like 10,30,50, got {text!r}") from None
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ParamError(f"--latent needs distinct positive integers, got {text!r}")
    return values


def _spec(pipeline: str, backbone: str, dataset: str, params: dict, seed: int) -> RunSpec:
    # An image VAE never touches the backbone, so its runs record none.
    return RunSpec(METHOD, None if pipeline == "image-vae" else backbone, dataset, None,
                   {**params, "pipeline": pipeline}, seed)


def plan(dataset: str, backbone: str, latents=DEFAULT_LATENTS, seeds: int | None = None,
         shared: dict | None = None, feature: dict | None = None, image: dict | None = None,
         pipelines=ROW_ORDER, preset: str = "auto") -> list[RunSpec]:
    """The study's specs, seed by seed: k-means once, then feature and image VAE per Z; all validated first.

    ``shared`` goes to every run, ``feature`` to the runs on backbone features (feature VAE and
    k-means), ``image`` to the image VAE.
    """
    p = resolve_preset(PRESETS, preset)
    unknown = set(pipelines) - set(PIPELINES)
    if not pipelines or unknown:
        raise ParamError(f"a study needs pipelines from {', '.join(PIPELINES)}")
    params = {"feature-vae": {**p["feature"], **(shared or {}), **(feature or {})},
              "image-vae": {**p["image"], **(shared or {}), **(image or {})}}
    params["kmeans"] = params["feature-vae"]
    specs = []
    for seed in range(seed_count(seeds, p)):
        if "kmeans" in pipelines:
            specs.append(_spec("kmeans", backbone, dataset, params["kmeans"], seed))
        for z in latents:
            specs += [_spec(pl, backbone, dataset, {**params[pl], "latent": z}, seed)
                      for pl in ("feature-vae", "image-vae") if pl in pipelines]
    for pipeline in pipelines:  # one of each kind: bad names or values fail before anything runs
        resolve(next(s for s in specs if s.params["pipeline"] == pipeline))
    return Plan(specs, preset=p["name"], seeds=seed_count(seeds, p))


def _label(spec: RunSpec) -> str:
    z = "" if spec.params["pipeline"] == "kmeans" else f" Z={spec.params['latent']}"
    return f"{spec.params['pipeline']}{z}"


class ClusterCell(Cell):
    def text(self, name: str = "purity", digits: int = 3) -> str:
        """The study's cell format: purity ± std (overlaps ± std)."""
        return f"{self.purity:.3f} ± {self.purity_std:.3f} ({self.overlaps:.1f} ± {self.overlaps_std:.1f})"


@dataclass
class ClusterStudy:
    study_id: str
    dataset: str
    backbone: str | None
    latents: list[int]
    cells: dict = field(default_factory=dict)  # (pipeline, Z or None for k-means) -> Cell
    run_ids: list[str] = field(default_factory=list)
    created_at: object = None

    @classmethod
    def from_runs(cls, rows: list[dict]) -> ClusterStudy | None:
        """Summarise a study's finished cluster runs; None when it has none yet."""
        done = [r for r in finished(rows) if r["method"] == METHOD]
        if not done:
            return None
        groups: dict = {}
        for r in done:
            pipeline = r["metrics"]["pipeline"]
            z = None if pipeline == "kmeans" else r["params"]["run"]["latent"]
            groups.setdefault((pipeline, z), []).append(r)
        latents = sorted({z for _, z in groups if z is not None})
        backbone = next((r["backbone"] for r in done if r["backbone"]), None)
        return cls(done[0]["study_id"], done[0]["dataset"], backbone, latents,
                   {key: ClusterCell.of(rs, METRICS) for key, rs in groups.items()}, [r["id"] for r in done],
                   done[0]["created_at"])

    def cell(self, pipeline: str, latent: int | None) -> Cell | None:
        """A table cell; k-means does not depend on Z, so every column shows its one result."""
        return self.cells.get((pipeline, None if pipeline == "kmeans" else latent))

    def table(self) -> list[tuple[str, list[str]]]:
        """Rows (name, cells per Z) in the study's layout: image VAE, feature VAE, k-means on features."""
        pipelines = [p for p in ROW_ORDER if any(key[0] == p for key in self.cells)]
        return [(ROW_NAMES[p], [c.text() if (c := self.cell(p, z)) else "" for z in self.latents or [None]])
                for p in pipelines]

    def points(self) -> list[dict]:
        """Flat records for plotting purity vs Z with error bars (k-means has latent None)."""
        return [{"pipeline": p, "latent": z, **c.as_dict()} for (p, z), c in sorted(
            self.cells.items(), key=lambda kv: (ROW_ORDER.index(kv[0][0]), kv[0][1] or 0))]


def describe(payload: dict) -> str:
    z = ",".join(map(str, payload.get("latents") or []))
    return f"clustering study · {payload['backbone']} · {payload['dataset']} · Z {z} · {seeds_text(payload)}"


STUDY = Study("cluster", "clustering study", plan, ClusterStudy.from_runs, _label, describe, presets=PRESETS,
              method=METHOD)



def latent_projection(store_path, run_id: str, method: str = "pca", seed: int = 0) -> dict[str, np.ndarray]:
    """A run's exported latent codes in 2-D: arrays x, y, cluster, label, sample (one entry per image).

    ``method`` is 'pca' or 'tsne' (scikit-learn). Needs the run's latent export (``--export-latents``).
    """
    if method not in ("pca", "tsne"):
        raise ParamError(f"projection method must be 'pca' or 'tsne', got {method!r}")
    path = artifact_path(store_path, run_id, "latent")
    if not path.exists():
        raise StoreError(f"run {run_id} has no exported latent codes: run it with --export-latents")
    table = read_table(path)
    codes = np.column_stack([table[c] for c in sorted((c for c in table if c.startswith("z_")),
                                                      key=lambda c: int(c[2:]))]).astype(np.float32)
    xy = _project(codes, method, seed)
    return {"x": xy[:, 0], "y": xy[:, 1], "cluster": np.asarray(table["cluster"]),
            "label": np.asarray(table["label"]), "sample": np.asarray(table["sample"])}


def _project(codes: np.ndarray, method: str, seed: int) -> np.ndarray:
    if codes.shape[1] == 1:  # nothing to project: spread the one axis along x
        return np.column_stack([codes[:, 0], np.zeros(len(codes), dtype=codes.dtype)])
    if method == "pca" or codes.shape[1] == 2:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(codes)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(codes) - 1) / 3)))
    return TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(codes)
