"""MAFIFuser: the output is the fused map scaled by each modality's OWN attention (the formula by hand), a
check that the public M3Net code's bug (the LiDAR attention applied to both branches) fails, gradients,
ONNX export and a drop-in swap for ConvFuser in MultiTaskBEVModel."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.deploy import export_onnx
from perception_mtl.models.fusers.mafi_fuser import MAFIFuser
from perception_mtl.registry import MODELS
from perception_mtl.testing import check_model_trains
from perception_mtl.testing.bev import model_cfg, random_batch

CAM, LIDAR, OUT = 3, 5, 4


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def _inputs(batch=2, size=6):
    return [torch.randn(batch, CAM, size, size), torch.randn(batch, LIDAR, size, size)]


def _fuser() -> MAFIFuser:
    """A fuser in eval mode with random, non-trivial BatchNorm statistics and affine parameters."""
    fuser = MAFIFuser([CAM, LIDAR], OUT)
    with torch.no_grad():
        for m in fuser.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return fuser.eval()


def _conv_bn_relu(x, block):
    """ReLU(BN(conv3x3(x))) written out, BN with its running statistics (eval mode), conv without bias."""
    y = torch.nn.functional.conv2d(x, block.conv.weight, padding=1)
    bn = block.bn
    y = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    return torch.clamp(y * bn.weight[:, None, None] + bn.bias[:, None, None], min=0)


def _attention(branch, att):
    """sigmoid(W @ mean_yx(branch) + b): (B, C, 1, 1)."""
    conv = att[1].conv
    pooled = branch.mean((2, 3))  # (B, C)
    return torch.sigmoid(pooled @ conv.weight[:, :, 0, 0].T + conv.bias)[:, :, None, None]


def _by_hand(fuser, cam, lidar):
    """out = fused * att_cam + fused * att_lidar, each attention from its own modality's branch."""
    fused = _conv_bn_relu(torch.cat([cam, lidar], 1), fuser.fuse)
    att_cam = _attention(_conv_bn_relu(cam, fuser.modality_convs[0]), fuser.modality_attentions[0])
    att_lidar = _attention(_conv_bn_relu(lidar, fuser.modality_convs[1]), fuser.modality_attentions[1])
    return fused * att_cam + fused * att_lidar


class _PublicM3NetMAFI(MAFIFuser):
    """The public M3Net code's SE_Blockv2: the LiDAR attention (att_det) scales the fused map for both
    branches; the camera attention is built but never used."""

    def forward(self, feats):
        fused = self.fuse(torch.cat(list(feats), 1))
        lidar_att = self.modality_attentions[1]
        return sum(fused * lidar_att(conv(f)) for conv, f in zip(self.modality_convs, feats))


def _matches_formula(fuser, feats) -> bool:
    with torch.no_grad():
        return torch.allclose(fuser(feats), _by_hand(fuser, *feats), atol=1e-5)


def _attention_params_change_output(fuser, feats) -> list[bool]:
    """For each modality: does perturbing only its attention conv's parameters change the output?"""
    changed = []
    with torch.no_grad():
        ref = fuser(feats)
        for att in fuser.modality_attentions:
            saved = [p.clone() for p in att.parameters()]
            for p in att.parameters():
                p.add_(torch.randn_like(p))
            changed.append(not torch.allclose(fuser(feats), ref))
            for p, s in zip(att.parameters(), saved):
                p.copy_(s)
    return changed


def test_output_is_the_fused_map_scaled_by_each_modalitys_own_attention():
    fuser, feats = _fuser(), _inputs()
    assert _matches_formula(fuser, feats)
    out = fuser(feats)
    assert out.shape == (2, OUT, 6, 6)
    assert _attention_params_change_output(fuser, feats) == [True, True]


def test_the_public_codes_single_attention_bug_is_caught():
    buggy = _PublicM3NetMAFI([CAM, LIDAR], OUT)
    buggy.load_state_dict(_fuser().state_dict())
    buggy.eval()
    feats = _inputs()
    assert not _matches_formula(buggy, feats)
    assert _attention_params_change_output(buggy, feats) == [False, True]  # the camera attention is dead


def test_constant_attentions_scale_the_fused_map_by_their_sum():
    # Zero 1x1 weights make each attention the constant sigmoid(bias): camera -1, LiDAR +2. The output is
    # fused * (sigmoid(-1) + sigmoid(2)) = fused * 1.15; one attention used twice gives 0.54 or 1.76.
    fuser, feats = _fuser(), _inputs()
    with torch.no_grad():
        for att, bias in zip(fuser.modality_attentions, (-1.0, 2.0)):
            att[1].conv.weight.zero_()
            att[1].conv.bias.fill_(bias)
        fused = fuser.fuse(torch.cat(feats, 1))
        expected = fused * (torch.sigmoid(torch.tensor(-1.0)) + torch.sigmoid(torch.tensor(2.0)))
        assert fused.abs().sum() > 0
        assert torch.allclose(fuser(feats), expected, atol=1e-6)


def test_each_attention_reads_only_its_own_modality():
    fuser, (cam, lidar) = _fuser(), _inputs()
    with torch.no_grad():
        att_cam, att_lidar = fuser.modality_attention([cam, lidar])
        assert att_cam.shape == att_lidar.shape == (2, OUT, 1, 1)
        new_cam, new_lidar = fuser.modality_attention([cam, lidar * 3 + 1])
        assert torch.equal(new_cam, att_cam) and not torch.allclose(new_lidar, att_lidar)
        new_cam, new_lidar = fuser.modality_attention([cam * 3 + 1, lidar])
        assert torch.equal(new_lidar, att_lidar) and not torch.allclose(new_cam, att_cam)


def test_every_parameter_gets_a_gradient_including_both_attentions():
    fuser = MAFIFuser([CAM, LIDAR], OUT).train()
    fuser(_inputs()).square().sum().backward()
    missing = [n for n, p in fuser.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing
    assert all(att[1].conv.weight.grad.abs().sum() > 0 for att in fuser.modality_attentions)


def test_channel_mismatch_names_the_key():
    with pytest.raises(ValueError, match=r"fuser.in_channels=\[3, 5\] but got \[3, 4\]"):
        MAFIFuser([CAM, LIDAR], OUT)([torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4)])


def test_norm_cfg_chooses_the_norm():
    fuser = MAFIFuser([CAM, LIDAR], 8, norm_cfg=dict(type="GN", num_groups=4))
    assert isinstance(fuser.fuse.norm, torch.nn.GroupNorm)
    assert all(isinstance(c.norm, torch.nn.GroupNorm) for c in fuser.modality_convs)
    assert isinstance(MAFIFuser([CAM, LIDAR], 8).fuse.norm, torch.nn.BatchNorm2d)


def test_exports_to_onnx():
    fuser, feats = _fuser(), _inputs(batch=1, size=8)
    session, ops = export_onnx(fuser, (feats,), input_names=["camera", "lidar"])
    out = session.run(None, {"camera": feats[0].numpy(), "lidar": feats[1].numpy()})[0]
    assert np.allclose(out, fuser(feats).detach().numpy(), atol=1e-5)
    assert "NonZero" not in ops and "Sigmoid" in ops


def test_swaps_in_for_conv_fuser_in_the_bev_model():
    model = MODELS.build(model_cfg(("camera", "lidar"), "MAFIFuser"))
    model.init_weights()
    assert isinstance(model.fuser, MAFIFuser)
    losses = check_model_trains(model, random_batch())
    assert all(torch.isfinite(v).all() for v in losses.values())
