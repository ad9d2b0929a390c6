"""The dashboard's only writes: housekeeping of runs (name, tags, note, archive, restore, delete), each through the
store's one writer path (``Store.rename`` … ``Store.delete_runs``), which checks the ids first. A read-only
dashboard never calls these."""

from __future__ import annotations

from toptune.store import Store


def label_run(path, run: dict, name: str, tags: list[str], note: str) -> None:
    """Give ``run`` this name, exactly these tags and this note, writing only what changed."""
    store, run_id = Store(path), run["id"]
    name, note = name.strip() or None, note.strip() or None
    if name != (run.get("name") or None):
        store.rename(run_id, name)
    wanted = [t.strip() for t in tags if t.strip()]
    had = list(run.get("tags") or [])
    add, remove = [t for t in wanted if t not in had], [t for t in had if t not in wanted]
    if add or remove:
        store.tag([run_id], add=add, remove=remove)
    if note != (run.get("note") or None):
        store.annotate(run_id, note)


def archive(path, run_ids: list[str]) -> None:
    Store(path).archive(list(run_ids))


def restore(path, run_ids: list[str]) -> None:
    Store(path).restore(list(run_ids))


def delete(path, run_ids: list[str]) -> int:
    """Delete runs for good (their predictions, epochs and files too); how many were deleted."""
    return Store(path).delete_runs(list(run_ids))
