import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def check_two_scale_bev_backbone(backbone):
    x = torch.randn(2, 8, 16, 12, requires_grad=True)
    out = backbone(x)
    assert out.shape == (2, 6, 16, 12)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())
    # The context branch runs at half resolution with twice the output width.
    assert backbone.down(x).shape == (2, 12, 8, 6)
    # The input reaches the merge directly: with the context branch silenced (and no norm, whose
    # statistics span the map), a change in one input cell moves only the outputs within one cell of it.
    plain = MODELS.build(dict(type="TwoScaleBEVBackbone", in_channels=8, out_channels=6))
    with torch.no_grad():
        for p in plain.down.parameters():
            p.zero_()
        x = torch.randn(1, 8, 16, 12)
        y = x.clone()
        y[:, :, 5, 5] += 10.0
        changed = ((plain(y) - plain(x)).abs().sum(1)[0] > 0).nonzero().tolist()
    assert [5, 5] in changed and all(abs(r - 5) <= 1 and abs(c - 5) <= 1 for r, c in changed)


CASES = {
    "TwoScaleBEVBackbone": RegistryCase(
        MODELS,
        dict(type="TwoScaleBEVBackbone", in_channels=8, out_channels=6, norm_cfg=dict(type="GN", num_groups=2)),
        check_two_scale_bev_backbone,
    ),
}
