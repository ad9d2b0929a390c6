"""The Sweeps page on cells recorded through the real runner, with a queued sweep job holding the grid."""

from datetime import timedelta

import pytest

from tests.support import dashboard_studies as studies
from tests.support.dashboard import array, charts, frame_with, open_page, texts
from toptune import jobs
from toptune.dashboard.data import sweeps
from toptune.store import Store


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweeps")
    with studies.plugins():
        yield folder / "runs.duckdb", studies.fill_sweep(folder / "runs.duckdb", folder / "features")


store = studies.store  # a fixture: the recorded store, opened by the pages


def test_progress_counts_every_state_of_the_grid(store):
    _, made = store
    at = open_page("sweeps", {"sweep": made["spec"].sweep_id})
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"cells": "8", "done": "4", "finished": "3", "failed": "1", "running": "1", "queued": "3"}
    (bar,) = at.get("progress")
    assert bar.proto.value == 50 and bar.proto.text.startswith("4 of 8 cells done")
    assert made["job"] in texts(at) and "dash-grid" in texts(at)
    assert at.query_params["sweep"] == made["spec"].sweep_id


def test_the_grid_shows_accuracy_of_finished_cells_and_the_status_of_the_others(store):
    path, made = store
    at = open_page("sweeps", {"sweep": made["spec"].sweep_id})
    cells = frame_with(at, "cell_key", "status").set_index("cell_key")
    assert list(cells.index) == [c.key for c in made["cells"]]  # the whole grid, in the spec's order
    grid = charts(at)[0]
    status, score = grid.data
    rows, columns = list(score.y), list(score.x)
    assert len(rows) == 2 and len(columns) == 4 and "ridge · classifier.alpha=0.1 · seed 0" in columns

    def at_cell(trace, key, layer="z"):
        value = trace[layer] if layer != "z" else array(trace.z)
        return value[rows.index(cells.loc[key, "row"])][columns.index(cells.loc[key, "column"])]

    for run_id in made["finished"]:
        run = Store(path).get_run(run_id)
        assert at_cell(score, run["cell_key"]) == pytest.approx(run["accuracy"])
        assert at_cell(score, run["cell_key"], "text") == f"{run['accuracy']:.3f}"
    assert at_cell(status, made["failed"], "text") == "failed"
    assert {at_cell(status, key, "text") for key in made["queued"]} == {"queued"}
    error = Store(path).runs(status="failed")[0]["error"]
    assert error and error[:40] in at_cell(status, made["failed"], "customdata")  # hover: the cell's error
    assert "classifier.alpha=10.0" in at_cell(status, made["queued"][-1], "customdata")  # hover: the spec


def test_a_sweep_run_from_the_cli_shows_the_cells_it_started(store):
    _, made = store
    at = open_page("sweeps", {"sweep": made["other"].sweep_id})
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["cells"] == "1"
    assert "toptune sweep" in texts(at) and "cells started so far" in texts(at)


def test_cells_a_finished_job_never_ran_are_not_queued(store):
    path, made = store
    runs = Store(path).runs(sweep_id=made["spec"].sweep_id)
    (job,) = jobs.list_jobs(path)
    ended = [{**job, "state": "cancelled"}]
    (sweep,) = [s for s in sweeps.catalogue(runs, ended) if s.sweep_id == made["spec"].sweep_id]
    counts = sweeps.counts(sweeps.cell_frame(sweep, runs))
    assert not sweep.live and (counts["queued"], counts["not run"]) == (0, 3)


def test_a_cell_counts_its_finished_attempt_else_its_latest(store):
    path, made = store
    runs = Store(path).runs(sweep_id=made["spec"].sweep_id)
    finished = next(r for r in runs if r["id"] == made["finished"][0])
    failed = next(r for r in runs if r["status"] == "failed")
    later = timedelta(seconds=5)
    retries = [{**finished, "id": "retry-1", "status": "failed", "created_at": finished["created_at"] + later},
               {**failed, "id": "retry-2", "status": "running", "created_at": failed["created_at"] + later}]
    (sweep, *_) = [s for s in sweeps.catalogue(runs + retries, jobs.list_jobs(path))
                   if s.sweep_id == made["spec"].sweep_id]
    cells = sweeps.cell_frame(sweep, runs + retries).set_index("cell_key")
    assert cells.loc[finished["cell_key"], "run_id"] == finished["id"]  # a re-run skips a finished cell
    assert cells.loc[failed["cell_key"], ["status", "run_id"]].tolist() == ["running", "retry-2"]


def test_a_top_tuning_runs_confusion_matrix_names_its_classes(store):
    path, made = store
    run = Store(path).get_run(made["finished"][0])
    at = open_page("runs", {"run": run["id"]})
    heatmap = next(f for f in charts(at) if f.data[0].type == "heatmap")
    assert list(heatmap.data[0].x) == list(heatmap.data[0].y) == studies.CLASSES
    assert heatmap.layout.xaxis.title.text == "predicted class" and array(heatmap.data[0].z).sum() == run["n_test"]


def test_a_cells_hover_names_the_ray_node_it_ran_on(store):
    path, made = store
    runs = Store(path).runs(sweep_id=made["spec"].sweep_id)
    on_node = {"node_id": "9f3c1a2b4d5e" + "0" * 44, "node_host": "10.0.0.7"}
    placed = [{**r, **on_node} if r["id"] == made["finished"][0] else r for r in runs]
    (sweep, *_) = [s for s in sweeps.catalogue(placed, jobs.list_jobs(path)) if s.sweep_id == made["spec"].sweep_id]
    hover = sweeps.cell_frame(sweep, placed).set_index("run_id")["hover"]
    assert hover[made["finished"][0]].split("<br>")[-1] == "node: 10.0.0.7 · id 9f3c1a2b4d5e"
    assert "node:" not in hover[made["finished"][1]]  # a run outside Ray, or from before nodes were recorded
