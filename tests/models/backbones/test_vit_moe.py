"""ViT-MoE backbone: timm-style feature_info and features_only output, MoE placement, task routing."""

import pytest
import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed
from timm.models._features import FeatureInfo

from perception_mtl.models.backbones import ViTMoE
from perception_mtl.models.moe import MoEFeedForward, TaskConditionedRouter, moe_layers


def _vit(**kwargs):
    torch.manual_seed(0)
    args = dict(
        img_size=32,
        patch_size=8,
        embed_dim=24,
        depth=6,
        num_heads=2,
        moe_cfg=dict(num_experts=4, top_k=2),
        tasks=("seg", "depth"),
    )
    args.update(kwargs)
    return ViTMoE(**args)


def test_feature_info_describes_the_multi_scale_output():
    vit = _vit().eval()
    assert isinstance(vit.feature_info, FeatureInfo)
    assert vit.out_indices == (0, 2, 3, 5)  # default: four evenly spaced blocks, the last included
    assert vit.feature_info.reduction() == [2, 4, 8, 16] and vit.feature_info.channels() == [24] * 4
    feats = vit(torch.randn(2, 3, 32, 48), task="seg")
    assert [tuple(f.shape) for f in feats] == [(2, 24, 16, 24), (2, 24, 8, 12), (2, 24, 4, 6), (2, 24, 2, 3)]
    tokens = vit.forward_features(torch.randn(2, 3, 32, 32), task="seg")
    assert tokens.shape == (2, 16, 24)
    # The last feature map is the normalised final tokens (forward_features) as a grid.
    img = torch.randn(1, 3, 32, 32)
    last = vit.forward_intermediates(img, task="depth")[-1]
    torch.testing.assert_close(last.flatten(2).transpose(1, 2), vit.forward_features(img, task="depth"))


def test_moe_in_every_other_block_and_task_routing():
    vit = _vit().eval()
    assert vit.moe_block_indices == (1, 3, 5)
    assert [isinstance(b.ffn, MoEFeedForward) for b in vit.blocks] == [False, True] * 3
    assert vit.task_dependent
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(vit(x, task="seg")[-1], vit(x, task="depth")[-1])
    with pytest.raises(ValueError, match="needs a task"):
        vit(x)
    cond = _vit(moe_cfg=dict(num_experts=4, top_k=2, router=dict(type="TaskConditionedRouter")), moe_every=3)
    assert cond.moe_block_indices == (2, 5)
    assert all(isinstance(layer.router, TaskConditionedRouter) for _, layer in moe_layers(cond))


def test_dense_vit_has_no_moe_and_equal_active_mlp_parameters():
    dense = _vit(moe_cfg=None, mlp_ratio=2.0)
    moe = _vit(moe_mlp_ratio=1.0)  # top-2 experts of ratio 1 = one dense MLP of ratio 2
    assert not moe_layers(dense) and not dense.task_dependent
    assert dense(torch.randn(1, 3, 32, 32))[0].shape == (1, 24, 16, 16)
    mlp = sum(p.numel() for p in dense.blocks[1].ffn.parameters())
    experts = moe.blocks[1].ffn.experts
    active = 2 * sum(p[0].numel() for p in experts.parameters())
    assert active - mlp == 24  # identical weights; k output biases instead of one


def test_position_embedding_is_resampled_for_other_sizes_and_exportable_switch():
    vit = _vit(exportable=True)
    assert all(layer.dispatch == "gather" for _, layer in moe_layers(vit))
    assert vit(torch.randn(1, 3, 64, 40), task="seg")[1].shape == (1, 24, 16, 10)
    # timm's PatchEmbed (a P-strided conv) and its bicubic resampling of the 4x4 grid to 8x5.
    assert isinstance(vit.patch_embed, PatchEmbed) and vit.grid_size == (4, 4)
    img = torch.randn(1, 3, 64, 40)
    tokens, hw = vit._embed(img)
    grid = vit.pos_embed.reshape(1, 4, 4, 24).permute(0, 3, 1, 2)
    pos = F.interpolate(grid, size=(8, 5), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)
    patches = F.conv2d(img, vit.patch_embed.proj.weight, vit.patch_embed.proj.bias, stride=8)
    assert hw == (8, 5)
    torch.testing.assert_close(tokens, patches.flatten(2).transpose(1, 2) + pos)
    with pytest.raises(AssertionError, match="divisible by patch size"):
        vit(torch.randn(1, 3, 36, 32), task="seg")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(img_size=30), "multiple of patch_size"),
        (dict(out_indices=(3, 1)), "out_indices"),
        (dict(out_indices=(1, 6)), "out_indices"),
        (dict(out_indices=(1, 2), feature_scales=(1.0,)), "one entry per"),
        (dict(out_indices=(1, 2), feature_scales=(1.0, 3.0)), "feature_scales"),
        (dict(out_indices=(1, 2), feature_scales=(0.5, 1.0)), "non-increasing"),
        (dict(moe_every=0), "moe_every"),
    ],
)
def test_bad_settings_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _vit(**kwargs)
