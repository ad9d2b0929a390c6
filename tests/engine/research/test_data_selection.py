"""Data selection for fine-tuning: each rule picks what it promises, and runs record what they trained on."""

import numpy as np
import pytest

from tests.support.research import STAGED, TINY, registered
from toptune import registry
from toptune.errors import ParamError
from toptune.features.cache import FeatureCache
from toptune.methods.subset_training import choose_subset
from toptune.progress import Progress
from toptune.research.data_selection import entropy, out_of_fold_proba, pick
from toptune.runner import execute
from toptune.spec import RunSpec, resolve


@pytest.fixture(autouse=True)
def backbones():
    with registered():
        yield


def _probabilities(n=40, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(k, 0.5), size=n)


def test_entropy_matches_its_definition():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert entropy(p) == pytest.approx([0.0, np.log(2), np.log(3)])


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_entropy_high_and_low_pick_exactly_the_extreme_fraction(fraction):
    proba = _probabilities()
    h = -(proba * np.log(proba)).sum(1)
    k = round(fraction * len(proba))
    high, low = pick("entropy-high", fraction, proba), pick("entropy-low", fraction, proba)
    assert len(high) == len(low) == k
    assert set(high) == set(np.argsort(-h)[:k]) and set(low) == set(np.argsort(h)[:k])
    rest = np.setdiff1d(np.arange(len(h)), high)
    assert h[high].min() > h[rest].max()
    assert list(high) == sorted(high)


def test_error_rule_takes_the_misclassified_first_then_the_least_sure():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55], [0.7, 0.3]])
    labels = np.array([0, 0, 0, 0, 1])  # rows 1, 3 and 4 are wrong
    assert list(pick("error", 0.4, proba, labels)) == [1, 4]  # the two wrong ones with the least true-class p
    assert list(pick("error", 0.8, proba, labels)) == [1, 2, 3, 4]  # then the least sure correct one
    classes = np.array([3, 7])
    assert list(pick("error", 0.4, proba, np.array([3, 3, 3, 3, 7]), classes)) == [1, 4]


def test_random_is_a_seeded_draw_of_the_right_size():
    a, b = pick("random", 0.3, n=50, seed=1), pick("random", 0.3, n=50, seed=1)
    assert np.array_equal(a, b) and len(a) == 15 and len(set(a)) == 15
    assert not np.array_equal(a, pick("random", 0.3, n=50, seed=2))


def test_out_of_fold_probabilities_never_come_from_a_model_that_saw_the_row():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    noise = rng.normal(size=(60, 5))  # no signal at all: a model that saw a row would still be sure of it
    proba, classes = out_of_fold_proba(noise, labels)
    assert list(classes) == [0, 1, 2] and proba.shape == (60, 3)
    assert np.allclose(proba.sum(1), 1)
    assert np.mean(classes[proba.argmax(1)] == labels) < 0.6  # held-out guesses on noise stay near chance


def test_entropy_high_subset_of_a_run_is_the_highest_entropy_fraction_of_its_features(tmp_path):
    cache = FeatureCache(tmp_path)
    rs = resolve(RunSpec("fine-tune", STAGED, "digits", None, {**TINY, "select": "entropy-high", "fraction": 0.25}))
    dataset = registry.create("dataset", "digits", **rs.params["dataset"])
    backbone = registry.create("backbone", STAGED, **rs.params["backbone"])
    splits = dataset.load()
    pool = np.sort(np.random.default_rng(0).choice(len(splits.train), 80, replace=False))
    chosen, selection = choose_subset(rs, splits, backbone, dataset, pool, cache, "cpu", Progress())
    # Independently: the same pooled features through top-tuning's cache, scored out of fold.
    from toptune.features.source import FeatureSource

    features = FeatureSource(rs, backbone, dataset, cache, "cpu", Progress()).get("train", splits.train, pool)
    assert features.cache_hit  # selection shares the cache with top-tuning
    proba, _ = out_of_fold_proba(features.features, features.labels, rs.spec.seed)
    h = entropy(proba)
    assert set(chosen) == set(features.indices[np.argsort(-h)[:20]])
    assert selection.summary()["subset_size"] == 20 and selection.summary()["pool_size"] == 80


def test_a_fine_tuning_run_records_its_rule_and_subset_and_can_choose_again():
    result = execute(RunSpec("fine-tune", STAGED, "digits", None,
                             {**TINY, "epochs": 3, "select": "entropy-low", "fraction": 0.5, "select_every": 2}))
    assert result.n_train == 60 and result.params["run"]["select"] == "entropy-low"
    sel = result.info["selection"]
    assert (sel["rule"], sel["subset_size"], sel["pool_size"]) == ("entropy-low", 60, 120)
    assert sel["chosen_at_epochs"] == [1, 3]  # before epoch 1, then every 2 epochs
    assert len(result.epochs) == 3
    plain = execute(RunSpec("fine-tune", STAGED, "digits", None, {**TINY, "epochs": 1}))
    assert plain.n_train == 120 and "selection" not in plain.info


def test_select_every_needs_a_rule():
    with pytest.raises(ParamError, match="select_every needs a selection rule"):
        resolve(RunSpec("fine-tune", STAGED, "digits", None, {"select_every": 2}))
