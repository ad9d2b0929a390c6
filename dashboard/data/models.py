"""What the Predict page and a run's detail read about models: runs that saved one, loading it, and the
test images a run got wrong."""

from __future__ import annotations

from .runs import open_store


def model_runs(path, limit: int = 500) -> list[dict]:
    """The newest finished runs that saved a model (the columns a chooser shows)."""
    from toptune.store import queries as q

    store = open_store(path)
    if store is None:
        return []
    columns = ["id", "method", "backbone", "classifier", "dataset", "dataset_label", "accuracy", "model_bytes"]
    flt = q.RunFilter(extra="status = 'finished' AND model_bytes IS NOT NULL")
    frame = q.frame(store, columns, flt, limit=limit)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def load(path, run_id: str):
    """The run's model, on the CPU (the dashboard serves a few images at a time)."""
    from toptune.models import load_model

    return load_model(run_id, store=path, device="cpu")


def misclassified(path, run: dict, limit: int = 24) -> list[dict]:
    """Test images the run got wrong: the image, its true and its predicted class names, at most ``limit``."""
    from toptune import registry

    store = open_store(path)
    rows = store.query(f"SELECT sample, y_true, y_pred FROM predictions WHERE run_id = '{run['id']}' "
                       f"AND y_true <> y_pred ORDER BY sample LIMIT {int(limit)}", max_rows=None).rows
    if not rows:
        return []
    test = registry.create("dataset", run["dataset"], **run["params"]["dataset"]).load().test
    names = (run.get("info") or {}).get("classes") or []

    def name(i):
        return names[i] if 0 <= i < len(names) else str(i)

    return [{"sample": s, "image": test[s][0], "true": name(t), "predicted": name(p)} for s, t, p in rows]
