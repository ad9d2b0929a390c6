"""Feature modes: the full-network embedding's arithmetic, layer extraction, cache keys, describe."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.support.research import PLAIN, POOLED_DIM, STAGE_DIMS, STAGED, TINY, StagedNet, registered
from toptune.cli import app
from toptune.errors import ParamError
from toptune.features.cache import FeatureCache, cache_key
from toptune.features.layers import LayerExtractor, spatial_mean
from toptune.features.modes import FNE_HIGH, FNE_LOW, discretise, full_network_embedding, standardise
from toptune.runner import execute
from toptune.spec import RunSpec


@pytest.fixture(autouse=True)
def backbones():
    with registered():
        yield


def _maps(values) -> torch.Tensor:
    """One image per row of ``values``: channel c is a 1×2 map [v - d, v + d] whose mean is exactly v.

    d = 2^-20 keeps both entries exact in float32 for every |v| used here, and their sum is 2v exactly,
    so pooling introduces no rounding that could move a value across a threshold.
    """
    v = torch.as_tensor(np.asarray(values, dtype=np.float32))[:, :, None, None]
    d = torch.tensor([[-(2.0**-20), 2.0**-20]])
    return v + d


def test_fne_discretises_exactly_at_the_thresholds():
    # Two training images averaging -1 and +1 per channel: mean 0 and std 1, so z equals the activation.
    low, high = np.float32(FNE_LOW), np.float32(FNE_HIGH)
    probe = [np.nextafter(low, np.float32(-1)), low, 0.0, high, np.nextafter(high, np.float32(1))]
    train = spatial_mean(_maps([[-1.0] * 5, [1.0] * 5])).numpy()
    test = spatial_mean(_maps([probe])).numpy()
    assert test.tolist() == [list(map(float, probe))]  # pooling the hand-made maps is exact
    fne_train, fne_test = full_network_embedding(train, test)
    assert fne_test.tolist() == [[-1.0, 0.0, 0.0, 0.0, 1.0]]
    assert fne_train.tolist() == [[-1.0] * 5, [1.0] * 5]
    assert discretise(np.array([[-0.3, -0.2, 0.1, 0.2]], dtype=np.float64)).tolist() == [[-1, 0, 0, 1]]


def test_standardisation_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (50, 4)).astype(np.float32)
    test = rng.normal(10.0, 5.0, (20, 4)).astype(np.float32)
    z_train, z_test = standardise(train, test)
    expected = (test - train.mean(0, dtype=np.float64)) / train.std(0, dtype=np.float64)
    np.testing.assert_allclose(z_test, expected, rtol=1e-5)
    assert abs(z_test.mean()) > 1  # test was not centred on its own statistics
    z_train_again, _ = standardise(train, test * 100 + 7)
    assert np.array_equal(z_train, z_train_again)  # train's features do not depend on the test split
    constant = np.ones((5, 2), dtype=np.float32)
    assert not np.any(standardise(constant, constant + 3)[1])  # a constant feature becomes 0, not inf


def test_layer_extractor_pools_the_named_outputs_and_stops_early():
    net = StagedNet().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        stem = net.stem(x)
        block0 = net.blocks[0](stem)
        every = LayerExtractor(net, ["stem", "blocks.0"], with_output=True)(x)
        only = LayerExtractor(StagedNet().eval(), ["blocks.0"], with_output=False)
        only.body.load_state_dict(net.state_dict())
        one = only(x)
    assert torch.allclose(every, torch.cat([stem.mean((2, 3)), block0.mean((2, 3)), net(x)], 1))
    assert torch.allclose(one, block0.mean((2, 3)))
    assert only.body.calls == 1  # the forward began, and stopped after blocks.0 without returning
    with pytest.raises(ParamError, match="no layer 'blocks.7'"):
        LayerExtractor(net, ["blocks.7"], with_output=False)


def test_runs_in_each_mode_record_mode_and_dimension(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    dims = {}
    for mode in ("pooled", "layer:blocks.0", "fne"):
        result = execute(RunSpec("top-tune", STAGED, "digits", "ridge", {**TINY, "feature_mode": mode}), cache=cache)
        dims[mode] = result.feature_dim
        assert result.params["run"]["feature_mode"] == mode and result.info["feature_mode"] == mode
    assert dims == {"pooled": POOLED_DIM, "layer:blocks.0": STAGE_DIMS[1], "fne": sum(STAGE_DIMS) + POOLED_DIM}
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6  # each mode caches its own two splits


def test_fne_runs_cache_activations_and_discretise_them_per_run(tmp_path):
    from toptune.features.modes import finish
    from toptune.methods.top_tune import split_features
    from toptune.progress import Progress
    from toptune.spec import resolve

    rs = resolve(RunSpec("top-tune", STAGED, "digits", "ridge", {**TINY, "feature_mode": "fne"}))
    *_, train, test = split_features(rs, FeatureCache(tmp_path), "cpu", Progress())
    assert len(np.unique(train.features)) > 3  # the cache holds raw pooled activations
    fne_train, fne_test, _ = finish(rs.params["run"], train, test)
    for fs in (fne_train, fne_test):
        assert set(np.unique(fs.features)) <= {-1.0, 0.0, 1.0}
    z_train, _ = standardise(train.features, test.features)
    assert np.array_equal(fne_train.features, discretise(z_train))


def test_float32_pooled_cache_keys_are_unchanged_and_other_modes_and_precisions_differ(tmp_path):
    from toptune import registry
    from toptune.features.source import FeatureSource
    from toptune.spec import resolve

    keys = {}
    for mode, precision in (("pooled", "fp32"), ("fne", "fp32"), ("layer:stem", "fp32"), ("pooled", "auto")):
        rs = resolve(RunSpec("top-tune", STAGED, "digits", "ridge",
                             {**TINY, "feature_mode": mode, "precision": precision}))
        dataset = registry.create("dataset", "digits", **rs.params["dataset"])
        backbone = registry.create("backbone", STAGED, **rs.params["backbone"])
        feats = FeatureSource(rs, backbone, dataset, None, "cpu", None)
        keys[mode, precision] = feats.key("train", None)
        if (mode, precision) == ("pooled", "fp32"):  # the formula of caches written before feature modes (float32)
            before = cache_key(backbone=STAGED, backbone_params=rs.params["backbone"],
                               weights=backbone.weights_digest(), dataset="digits", data=dataset.fingerprint(),
                               split="train", subset=None, pre=feats.pre, mode="pooled")
            assert keys[mode, precision] == before
    assert len(set(keys.values())) == 4  # other modes, and a reduced precision, are other features


def test_a_backbone_without_feature_layers_works_pooled_and_explains_other_modes():
    assert execute(RunSpec("top-tune", PLAIN, "digits", "ridge", {**TINY, "cache": False})).feature_dim == POOLED_DIM
    with pytest.raises(ParamError, match="does not name its layers.*only feature_mode=pooled"):
        execute(RunSpec("top-tune", PLAIN, "digits", "ridge", {**TINY, "cache": False, "feature_mode": "fne"}))
    with pytest.raises(ParamError, match="feature_mode must be pooled, fne or layer:<name>"):
        execute(RunSpec("top-tune", STAGED, "digits", "ridge", {**TINY, "feature_mode": "layer:"}))


def test_describe_lists_stages_blocks_and_their_sizes():
    res = CliRunner().invoke(app, ["backbones", "describe", STAGED, "--image-size", "16"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    fne_dim = sum(STAGE_DIMS) + POOLED_DIM
    assert f"input 16×16 px · pooled features: {POOLED_DIM} · fne features: {fne_dim}" in res.output
    assert "layer:stem" in res.output and "layer:blocks.1" in res.output and "8×8×8" in res.output
    assert "layer:stem.0" in res.output  # a block inside a stage
    res = CliRunner().invoke(app, ["backbones", "describe", PLAIN], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "does not name its layers" in res.output


def test_timm_stages_include_those_feature_info_skips():
    import timm

    from toptune.plugins.backbones.timm_backbone import stage_modules

    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    assert [f["module"] for f in model.feature_info] == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    assert stage_modules(model) == [f"blocks.{i}" for i in range(7)]
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert stage_modules(resnet) == ["act1", "layer1", "layer2", "layer3", "layer4"]
