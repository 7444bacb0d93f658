"""Registry cases of M3Net's fuser (MAFIFuser) and per-task channel gate (TaskChannelScaling): each builds
from a small config, computes what its docstring says from its own submodules, and every parameter learns."""

import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def _all_parameters_learn(module):
    missing = [n for n, p in module.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"parameters without gradient: {missing}"


def check_mafi_fuser(fuser):
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 6, 6), torch.randn(2, 5, 6, 6)]
    fuser.train()
    out = fuser(feats)
    assert out.shape == (2, 8, 6, 6)
    with torch.no_grad():
        fused = fuser.fuse(torch.cat(feats, 1))
        att_cam = fuser.modality_attentions[0](fuser.modality_convs[0](feats[0]))
        att_lidar = fuser.modality_attentions[1](fuser.modality_convs[1](feats[1]))
        assert torch.allclose(out, fused * att_cam + fused * att_lidar, atol=1e-6)
    out.square().sum().backward()
    _all_parameters_learn(fuser)


def check_task_channel_scaling(tcs):
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 5, 5)
    outs = tcs.forward_all(feat)
    assert list(outs) == ["det", "map"] and all(o.shape == feat.shape for o in outs.values())
    gate = tcs.gate(feat, "map")
    assert gate.shape == (2, 8) and (gate - 1).abs().max() < 0.05  # starts near 1
    assert torch.allclose(outs["map"], feat * gate[:, :, None, None])
    sum(o.square().sum() for o in outs.values()).backward()
    _all_parameters_learn(tcs)


CASES = {
    "MAFIFuser": RegistryCase(MODELS, dict(type="MAFIFuser", in_channels=[3, 5], out_channels=8), check_mafi_fuser),
    "TaskChannelScaling": RegistryCase(
        MODELS,
        dict(type="TaskChannelScaling", channels=8, hidden_channels=4, tasks=("det", "map")),
        check_task_channel_scaling,
    ),
}
