import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def check_vit_moe(backbone):
    x = torch.randn(2, 3, 32, 32)
    feats = backbone(x, task="seg")
    info = backbone.feature_info
    assert [f.shape[1] for f in feats] == info.channels()
    assert [32 // f.shape[-1] for f in feats] == info.reduction() == [4, 8, 16]
    loss = sum(f.square().mean() for f in feats) + sum(f.square().mean() for f in backbone(x, task="depth"))
    loss.backward()
    grads = [n for n, p in backbone.named_parameters() if p.grad is None and "experts" not in n]
    assert not grads, f"no gradient: {grads}"


CASES = {
    "ViTMoE": RegistryCase(
        MODELS,
        dict(
            type="ViTMoE",
            img_size=32,
            patch_size=8,
            embed_dim=16,
            depth=4,
            num_heads=2,
            moe_cfg=dict(num_experts=4, top_k=2),
            tasks=("seg", "depth"),
            out_indices=(1, 2, 3),
            feature_scales=(2.0, 1.0, 0.5),
        ),
        check_vit_moe,
    ),
}
