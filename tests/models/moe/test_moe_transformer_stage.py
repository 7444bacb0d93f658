"""The MoE transformer stage for BEV decoders and the transformer block it is made of."""

import pytest
import torch
from timm.layers import Attention, Mlp

from perception_mtl.models.moe import MoETransformerStage, TransformerBlock, moe_layers, routing_task
from perception_mtl.models.moe.transformer_block import _window_attention


def _stage(**kwargs):
    torch.manual_seed(0)
    args = dict(in_channels=16, depth=2, num_heads=2, moe_cfg=dict(num_experts=4, top_k=2), tasks=("det", "map"))
    args.update(kwargs)
    return MoETransformerStage(**args)


def test_stage_keeps_the_map_shape_and_routes_by_task():
    stage = _stage(window_size=4).eval()
    x = torch.randn(2, 16, 10, 7)  # not a multiple of the window: padded inside
    det, bev = stage(x, "det"), stage(x, "map")
    assert det.shape == x.shape and torch.isfinite(det).all()
    assert not torch.allclose(det, bev)
    assert [i for i, b in enumerate(stage.blocks) if b.is_moe] == [1]
    with routing_task(stage, "map"):  # decoders that do not pass a task can set one
        torch.testing.assert_close(stage(x), bev)


def test_block_uses_timms_attention_in_its_plain_matmul_form():
    """timm's Attention with fused_attn off: softmax(q k^T / sqrt(d) + mask) v, the mask added before the softmax."""
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, mlp_ratio=2.0)
    attn = block.attn
    assert isinstance(attn, Attention) and not attn.fused_attn
    assert isinstance(block.ffn, Mlp) and block.ffn.fc1.out_features == 16
    x, mask = torch.randn(3, 5, 8), torch.randn(3, 1, 5, 5)
    q, k, v = attn.qkv(x).reshape(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) / 2.0 + mask).softmax(-1)
    reference = attn.proj((weights @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(attn(x, mask), reference)
    # ViT's init (truncated normal, std 0.02, zero bias), not nn.Linear's default.
    assert attn.qkv.weight.std() < 0.03 and not attn.qkv.bias.any() and not block.ffn.fc2.bias.any()


def test_window_padding_is_masked():
    """One window covering the whole (padded) map gives exactly global attention."""
    torch.manual_seed(0)
    block = TransformerBlock(8, 2)
    x = torch.randn(2, 5 * 3, 8)
    torch.testing.assert_close(_window_attention(block.attn, x, (5, 3), 6), block.attn(x), rtol=1e-5, atol=1e-6)
    # Windows of 2: a token only sees its own window.
    y = x.clone()
    y[:, -1] += 10.0  # the last cell (row 4, col 2) lies in the bottom-right window alone
    a, b = _window_attention(block.attn, x, (5, 3), 2), _window_attention(block.attn, y, (5, 3), 2)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])


def test_stage_trains_through_every_routed_expert():
    stage = _stage().train()
    x = torch.randn(2, 16, 6, 6)
    stage(x, "det").square().mean().backward()
    ((_, layer),) = moe_layers(stage)
    assert layer.aux_loss is not None and layer.aux_loss.requires_grad
    routed = layer.stat_load.sum(0) > 0
    has_grad = (layer.experts.w1.grad != 0).flatten(1).any(1)
    assert torch.equal(has_grad, routed)
    assert stage.pos_conv.weight.grad.abs().sum() > 0


def test_dense_stage_and_bad_settings():
    stage = _stage(moe_cfg=None)
    assert not moe_layers(stage)
    assert stage(torch.randn(1, 16, 4, 4)).shape == (1, 16, 4, 4)
    with pytest.raises(ValueError, match="depth"):
        _stage(depth=0)
    with pytest.raises(ValueError, match="window_size"):
        _stage(window_size=0)
    with pytest.raises(ValueError, match="divisible"):
        _stage(num_heads=3)
