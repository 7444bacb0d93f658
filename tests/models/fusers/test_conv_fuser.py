"""ConvFuser: zero-initialised inputs start outside the fused map but still learn; config errors."""

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.models.fusers.conv_fuser import ConvFuser
from perception_mtl.registry import MODELS
from perception_mtl.testing.bev import model_cfg, random_batch


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def test_zero_init_input_is_ignored_at_start_and_gets_gradients():
    fuser = ConvFuser([3, 5], 4, zero_init_inputs=[0], init_cfg=dict(type="Kaiming", layer="Conv2d"))
    fuser.init_weights()  # the Kaiming init_cfg runs first; the camera slice must still be zero
    assert torch.all(fuser.fuse[0].weight[:, :3] == 0) and fuser.fuse[0].weight[:, 3:].abs().sum() > 0
    fuser.eval()
    lidar = torch.randn(2, 5, 6, 6)
    a = fuser([torch.randn(2, 3, 6, 6), lidar])
    b = fuser([torch.randn(2, 3, 6, 6) * 10, lidar])
    assert torch.equal(a, b)
    fuser.train()
    fuser([torch.randn(2, 3, 6, 6), lidar]).square().sum().backward()
    assert fuser.fuse[0].weight.grad[:, :3].abs().sum() > 0  # the zeroed weights learn


def test_zero_init_survives_the_model_init_and_leaves_other_weights():
    cfg = model_cfg(("camera", "lidar"), "ConvFuser")
    plain = MODELS.build(cfg)
    plain.init_weights()
    cfg["fuser"]["zero_init_inputs"] = [0]
    model = MODELS.build(cfg)
    model.init_weights()
    cam = model.fuser.in_channels[0]
    weight = model.fuser.fuse[0].weight
    assert torch.all(weight[:, :cam] == 0) and weight[:, cam:].abs().sum() > 0
    assert plain.fuser.fuse[0].weight[:, :cam].abs().sum() > 0
    losses = model(**model.data_preprocessor(random_batch(), training=True), mode="loss")
    assert all(torch.isfinite(v) for v in losses.values())


def test_zero_init_index_outside_the_inputs_names_the_key():
    with pytest.raises(ValueError, match=r"fuser.zero_init_inputs=\[2\]: indices \[2\]"):
        ConvFuser([3, 5], 4, zero_init_inputs=[2])


def test_norm_cfg_chooses_the_norm_and_batch_norm_is_the_default():
    assert isinstance(ConvFuser([3, 5], 8).fuse[1], torch.nn.BatchNorm2d)
    fuser = ConvFuser([3, 5], 8, norm_cfg=dict(type="GN", num_groups=4))
    assert isinstance(fuser.fuse[1], torch.nn.GroupNorm) and fuser.fuse[1].num_groups == 4
    # GroupNorm keeps samples independent: a sample's output does not depend on the rest of the batch.
    cam, lidar = torch.randn(2, 3, 6, 6), torch.randn(2, 5, 6, 6)
    assert torch.allclose(fuser([cam, lidar])[:1], fuser([cam[:1], lidar[:1]]), atol=1e-6)
