"""Registry case of the task-routed MoE BEV decoder."""

import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def moe_bev_decoder_cfg(in_channels: int = 8, tasks=("det", "map"), **extra) -> dict:
    """A two-stage SECOND + SECONDFPN decoder with 4 experts (top 2) after each stage."""
    return dict(
        type="MoEBEVDecoder",
        backbone=dict(type="mmdet3d.SECOND", in_channels=in_channels, out_channels=[8, 16], layer_nums=[1, 1],
                      layer_strides=[1, 2]),
        neck=dict(type="mmdet3d.SECONDFPN", in_channels=[8, 16], out_channels=[8, 8], upsample_strides=[1, 2]),
        tasks=tasks,
        num_experts=4,
        top_k=2,
        **extra,
    )  # fmt: skip


def check_moe_bev_decoder(decoder):
    torch.manual_seed(0)
    decoder.train()
    x = torch.randn(2, 8, 12, 12, requires_grad=True)
    total = 0
    for task in ("det", "map"):
        out = decoder(x, task)
        assert out.shape == (2, 16, 12, 12)
        total = total + out.square().mean()
    aux = sum(m.aux_loss for m in decoder.moes.values())
    (total + aux).backward()
    dead = [n for n, p in decoder.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    # With 4 experts, 2 per cell and 288 cells per stage, every expert of every stage is routed.
    assert not dead, f"parameters without gradient: {dead}"


CASES = {"MoEBEVDecoder": RegistryCase(MODELS, moe_bev_decoder_cfg(), check_moe_bev_decoder)}
