import numpy as np
import pytest
import torch
from PIL import Image

from toptune import registry
from toptune.errors import PluginError
from toptune.features import build_transform

skimage_data = pytest.importorskip("skimage.data")


def _top3(backbone, image: np.ndarray):
    model = backbone.build_classifier()
    x = build_transform(backbone.preprocessing)(Image.fromarray(image)).unsqueeze(0)
    with torch.inference_mode():
        probs = model(x).softmax(-1)[0]
    values, indices = probs.topk(3)
    return indices.tolist(), values.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_bundled_imagenet_weights_classify_known_images(name):
    backbone = registry.create_backbone(name)
    assert backbone.pretrain_source == "imagenet-1k"
    cat, cat_p = _top3(backbone, skimage_data.chelsea())
    coffee, coffee_p = _top3(backbone, skimage_data.coffee())
    assert cat[0] == 285, (cat, cat_p)  # Egyptian cat
    assert set(cat) <= {285, 281, 282, 283, 287}  # the runners-up are cats too (tabby, tiger cat...)
    assert coffee[0] == 967, (coffee, coffee_p)  # espresso
    if name == "efficientnet_lite0":
        assert cat_p[0] == pytest.approx(0.54, abs=0.03) and coffee_p[0] == pytest.approx(0.90, abs=0.03)


@pytest.mark.slow
def test_feature_extractor_is_frozen_pooled_and_deterministic():
    backbone = registry.create_backbone("efficientnet_lite0")
    module = backbone.build()
    assert not any(p.requires_grad for p in module.parameters()) and not module.training
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        a, b = module(x), module(x)
    assert a.shape == (2, 1280) and torch.equal(a, b)


@pytest.mark.slow
def test_user_weights_file_state_dict_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    ref = registry.create_backbone("efficientnet_lite0")
    state = ref.build_classifier().state_dict()
    torch.save(state, tmp_path / "w.pth")
    torch.save({"state_dict": state}, tmp_path / "nested.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        expected = ref.build()(x)
        for path in ("w.pth", "nested.pt", "w.safetensors"):
            user = registry.create_backbone("efficientnet_lite0", weights=str(tmp_path / path))
            assert user.pretrain_source == "custom"
            assert torch.allclose(user.build()(x), expected, atol=1e-5)
            assert user.weights_digest() != ref.weights_digest()


def test_bad_weights_files(tmp_path):
    with pytest.raises(PluginError, match="weights file not found"):
        registry.create_backbone("efficientnet_lite0", weights=str(tmp_path / "nope.pth")).build()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PluginError, match="cannot read weights file"):
        registry.create_backbone("efficientnet_lite0", weights=str(tmp_path / "junk.pth")).build()
    torch.save({"a.weight": torch.zeros(3)}, tmp_path / "small.pth")
    with pytest.raises(PluginError, match="do not fit this model"):
        registry.create_backbone("efficientnet_lite0", weights=str(tmp_path / "small.pth")).build()


def test_timm_backbone_any_model_by_name_offline():
    backbone = registry.create_backbone("timm:resnet18", weights="none")
    assert backbone.pretrain_source == "none"
    assert backbone.preprocessing["input_size"] == 224
    with torch.inference_mode():
        assert backbone.build()(torch.rand(1, 3, 64, 64)).shape == (1, 512)
    with pytest.raises(PluginError, match="timm has no model 'resnet1800'"):
        registry.create_backbone("timm:resnet1800")
    with pytest.raises(PluginError, match="needs a model name"):
        registry.create_backbone("timm")


def test_preprocessing_of_bundled_weights():
    pre = registry.create_backbone("efficientnet_lite2").preprocessing
    assert pre["input_size"] == 260 and pre["crop_pct"] == 1.0 and pre["interpolation"] == "bilinear"
    tensor = build_transform(pre)(Image.new("RGB", (8, 8), (255, 0, 0)))
    assert tensor.shape == (3, 260, 260)
    assert tensor[0].mean().item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)
