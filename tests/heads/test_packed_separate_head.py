"""PackedSeparateHead: the same maps as mmdet3d's SeparateHead, from one packed output convolution."""

import pytest
import torch
from mmdet3d.models.dense_heads.centerpoint_head import SeparateHead

from perception_mtl.heads import PackedSeparateHead

HEADS = dict(reg=(2, 1), height=(1, 1), dim=(3, 1), rot=(2, 1), vel=(2, 2), heatmap=(2, 1))


def _copy_into_packed(reference: SeparateHead, packed: PackedSeparateHead) -> None:
    with torch.no_grad():
        for name in packed.packed_names:
            packed.output_weight(name).copy_(getattr(reference, name)[-1].weight)
            packed.output_bias(name).copy_(getattr(reference, name)[-1].bias)
        for name in packed.deep.heads:
            getattr(packed.deep, name).load_state_dict(getattr(reference, name).state_dict())


@pytest.mark.parametrize("final_kernel", [1, 3])
def test_outputs_and_gradients_equal_mmdet3d_separate_head(final_kernel):
    torch.manual_seed(0)
    kwargs = dict(in_channels=16, heads=HEADS, head_conv=16, final_kernel=final_kernel)
    reference, packed = SeparateHead(**kwargs).eval(), PackedSeparateHead(**kwargs).eval()
    assert packed.packed_names == ["reg", "height", "dim", "rot", "heatmap"]  # vel has two convs
    _copy_into_packed(reference, packed)
    x = torch.randn(2, 16, 9, 11)
    x_ref, x_packed = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_packed = reference(x_ref), packed(x_packed)
    assert list(out_packed) == list(HEADS)
    weights = {name: torch.randn_like(t) for name, t in out_ref.items()}
    for name in HEADS:
        torch.testing.assert_close(out_packed[name], out_ref[name], rtol=1e-5, atol=1e-5)
    sum((out_ref[n] * w).sum() for n, w in weights.items()).backward()
    sum((out_packed[n] * w).sum() for n, w in weights.items()).backward()
    torch.testing.assert_close(x_packed.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(packed.packed.weight.grad[:2], reference.reg[-1].weight.grad)


def test_init_sets_the_heatmap_prior_only_on_heatmap_rows():
    packed = PackedSeparateHead(in_channels=8, heads=dict(reg=(2, 1), heatmap=(3, 1)), head_conv=8)
    packed.init_weights()
    torch.testing.assert_close(packed.output_bias("heatmap").detach(), torch.full((3,), -2.19))
    assert torch.all(packed.output_bias("reg") == 0)
    assert packed.output_weight("heatmap").shape == (3, 8, 1, 1)


def test_center_det_head_with_packed_branches_starts_from_the_focal_prior():
    from perception_mtl.registry import MODELS

    head = MODELS.build(
        dict(
            type="CenterDetHead",
            in_channels=8,
            tasks=[dict(num_class=1, class_names=["car"]), dict(num_class=2, class_names=["bus", "trailer"])],
            common_heads=dict(reg=(2, 1), height=(1, 1), dim=(3, 1), rot=(2, 1), vel=(2, 1)),
            share_conv_channel=8,
            bbox_coder=dict(
                type="mmdet3d.CenterPointBBoxCoder",
                post_center_range=[-60, -60, -10, 60, 60, 10],
                pc_range=[-51.2, -51.2],
                voxel_size=[0.8, 0.8],
                out_size_factor=1,
                code_size=9,
            ),
            separate_head=dict(type="perception_mtl.PackedSeparateHead", init_bias=-2.19, final_kernel=3, head_conv=8),
            train_cfg=dict(),
            test_cfg=dict(),
        )
    )
    head.init_weights()
    assert all(isinstance(t, PackedSeparateHead) for t in head.task_heads)
    (outs,) = head(torch.randn(1, 8, 16, 16))[1]
    assert set(outs) == {"reg", "height", "dim", "rot", "vel", "heatmap"} and outs["heatmap"].shape == (1, 2, 16, 16)
    # std-0.01 heatmap weights: the initial logits stay near the -2.19 prior
    assert (outs["heatmap"] + 2.19).abs().max() < 0.5


def test_forward_many_equals_each_head_alone_and_outputs_are_not_views():
    torch.manual_seed(0)
    heads = [
        PackedSeparateHead(in_channels=8, heads=dict(reg=(2, 1), heatmap=(1, 1)), head_conv=8, final_kernel=3),
        PackedSeparateHead(in_channels=8, heads=dict(vel=(2, 2), heatmap=(2, 1)), head_conv=8, final_kernel=3),
        PackedSeparateHead(in_channels=8, heads=dict(vel=(2, 2)), head_conv=8, final_kernel=3),  # nothing packed
    ]
    for head in heads:
        head.init_weights()
        head.eval()
    x = torch.randn(2, 8, 6, 7)
    together = PackedSeparateHead.forward_many(heads, x)
    for head, out in zip(heads, together):
        alone = head(x)
        assert list(out) == list(alone)
        for name in alone:
            torch.testing.assert_close(out[name], alone[name], rtol=1e-5, atol=1e-6)
    together[1]["heatmap"].sigmoid_()  # CenterHead does this; views of one split would refuse
    with pytest.raises(ValueError, match="final kernels differ"):
        PackedSeparateHead.forward_many([heads[0], PackedSeparateHead(8, dict(reg=(2, 1)), 8, final_kernel=1)], x)


def test_output_init_std_replaces_kaiming():
    torch.manual_seed(0)
    packed = PackedSeparateHead(8, dict(reg=(2, 1), dim=(3, 1)), 8, final_kernel=3, output_init_std=0.01)
    packed.init_weights()
    assert 0.005 < packed.packed.weight.std().item() < 0.015 and torch.all(packed.packed.bias == 0)
    kaiming = PackedSeparateHead(8, dict(reg=(2, 1), dim=(3, 1)), 8, final_kernel=3)
    kaiming.init_weights()
    assert kaiming.packed.weight.std().item() > 0.1  # sqrt(2 / (9 * 5)) = 0.21
