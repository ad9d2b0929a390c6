"""The Compare page answers at a glance: a verdict card per dataset and setup with the settings it holds for,
filters by those settings, one accuracy-against-time chart per image size, and datasets told apart by label."""

import pytest

from tests.support.dashboard import array, charts, frame_with, open_page, texts, write_comparison
from toptune.dashboard.widgets.ui import literal
from toptune.store import Store
from toptune.studies import compare as cmp


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Comparisons written straight into a store: digits at 128 px (twice: the card shows the newer), two image
    folders both called "photos" at 224 px, and digits at 224 px over 15 epochs and two seeds."""
    path = tmp_path_factory.mktemp("compare-settings") / "runs.duckdb"
    store = Store(path)
    ids = {"digits-128-old": write_comparison(store, "digits", (0.90, 2.0), (0.85, 20.0), image_size=128),
           "digits-128": write_comparison(store, "digits", (0.95, 2.0), (0.90, 20.0), image_size=128),
           "photos": write_comparison(store, "photos", (0.936, 10.0), (0.937, 97.0), folder="/data/a/photos"),
           "other-photos": write_comparison(store, "photos", (0.80, 10.0), (0.85, 30.0), folder="/data/b/photos"),
           "digits-224": write_comparison(store, "digits", (0.97, 3.0), (0.98, 60.0), epochs=15, preset="gpu",
                                          seeds=2)}
    return path, ids


@pytest.fixture
def page(compared, monkeypatch):
    monkeypatch.setenv("TOPTUNE_STORE", str(compared[0]))
    return compared


def _cards(at) -> list[str]:
    return [m.value for m in at.markdown if "-badge[" in m.value and " px: " in m.value]


def test_a_verdict_card_per_dataset_and_setup_with_its_settings(page):
    path, ids = page
    at = open_page("compare")
    assert not at.exception and not at.error
    expected = cmp.verdict_cards(cmp.comparisons(Store(path)))
    assert len(expected) == 4  # the two 128 px digits comparisons share a setup: the newer one answers
    shown = _cards(at)
    assert [s.split("] ", 1)[1] for s in shown] == [literal(card.text) for card in expected]
    photos = next(card.text for card in expected if card.dataset == "photos")
    assert photos == ("photos · efficientnet_lite0 · 224 px: top-tune (ridge) 0.936 vs fine-tune 0.937 "
                      "(3 epochs, 1 seed, cpu preset): same, 9.7× faster")
    assert any(card.dataset.startswith("photos-") for card in expected)  # another folder of the same name
    newest = next(card for card in expected if card.image_size == 128)
    assert newest.comparison_id == ids["digits-128"] and "the newest of 2 comparisons" in texts(at)
    table = frame_with(at, "comparison_id", "verdict")
    assert {"image_size", "epochs", "preset", "seeds"} <= set(table.columns)
    row = table.set_index("comparison_id").loc[ids["digits-224"]]
    assert (row["image_size"], row["epochs"], row["preset"], row["seeds"]) == ("224 px", 15, "gpu", 2)


def test_runs_of_different_image_sizes_never_share_a_chart(page):
    path, _ = page
    at = open_page("compare")
    sizes = {r["id"]: r["params"]["run"]["image_size"] for r in Store(path).runs()}
    scatters = [f for f in charts(at) if f.data and f.data[0].type == "scattergl"]
    assert len(scatters) == 2  # one per image size, in tabs
    for figure, size in zip(scatters, (128, 224)):
        points = [run_id for trace in figure.data if trace.mode == "markers" for run_id in trace.hovertext]
        assert points and {sizes[p] for p in points} == {size}
    fronts = sorted(t.name for t in scatters[1].data if t.name.startswith("Pareto front"))
    assert fronts[:2] == ["Pareto front · digits", "Pareto front · photos"] and fronts[2].startswith(
        "Pareto front · photos-")  # two folders called photos: two datasets, two fronts


def test_the_settings_filter_every_part_of_the_page(page):
    path, ids = page
    at = open_page("compare")
    assert at.multiselect(key="size").options == ["128", "224"]
    assert at.multiselect(key="preset").options == ["cpu", "gpu"]
    at.multiselect(key="size").select("128").run()
    assert list(frame_with(at, "comparison_id", "verdict")["comparison_id"]) == [ids["digits-128-old"],
                                                                                 ids["digits-128"]]
    assert len(_cards(at)) == 1 and "128 px" in _cards(at)[0]
    (scatter,) = [f for f in charts(at) if f.data and f.data[0].type == "scattergl"]
    assert sum(len(array(t.x)) for t in scatter.data if t.mode == "markers") == 4  # the four runs at 128 px
    at.multiselect(key="size").set_value([]).run()
    at.multiselect(key="seeds").select("2").run()
    assert list(frame_with(at, "comparison_id", "verdict")["comparison_id"]) == [ids["digits-224"]]


def test_ablation_axes_zoom_to_the_data(page):
    at = open_page("compare", {"size": "224"})
    accuracy = next(f for f in charts(at) if f.data and f.data[0].type == "bar"
                    and f.layout.yaxis.title.text.startswith("test accuracy"))
    low, high = accuracy.layout.yaxis.range
    means = [v for t in accuracy.data for v in array(t.y)]
    assert low <= min(means) and max(means) <= high and high - low < 0.5  # not 0–1: a few points show
