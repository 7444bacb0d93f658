"""CameraCalibrationHead: every loss term is 0 at the ground truth, positive away from it, and has gradients."""

import math

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.heads.camera_calibration_head import PARAM_NAMES
from perception_mtl.registry import MODELS
from perception_mtl.testing.camera_calibration import random_samples, tiny_head_cfg

GEOMETRIC = ("loss_vp", "loss_wc", "loss_planes", "loss_orth", "loss_det")


def _head(**overrides):
    init_default_scope("perception_mtl")
    return MODELS.build(tiny_head_cfg(in_channels=8, **overrides)).double()


def _raw_at(head, samples, pitch_scale: float = 1.0) -> torch.Tensor:
    """Raw outputs that decode exactly to the samples' ground truth; ``pitch_scale`` scales (c, s)
    (any positive scale gives the same pitch but a non-orthonormal R unless it is 1)."""
    gt = torch.stack([s.gt_calib for s in samples]).double()
    norm = (gt[:, :-1] - head.param_mean[:-1]) / head.param_std[:-1]
    if head.rotation == "angle":
        return torch.cat([norm, ((gt[:, -1] - head.param_mean[-1]) / head.param_std[-1])[:, None]], 1)
    c, s = torch.cos(gt[:, -1]) * pitch_scale, torch.sin(gt[:, -1]) * pitch_scale
    return torch.cat([norm, (c - 1.0)[:, None], s[:, None]], 1)


@pytest.mark.parametrize("vp_mode", ["sphere", "image"])
def test_losses_vanish_at_the_ground_truth(vp_mode):
    head = _head(vp_mode=vp_mode)
    samples = random_samples(6)
    losses = head.loss_by_feat(_raw_at(head, samples), samples)
    assert set(losses) == {f"loss_{n}" for n in PARAM_NAMES} | set(GEOMETRIC)
    for name, value in losses.items():
        assert value.abs() < 1e-6, (name, value)
    decoded = head.decode(_raw_at(head, samples))["params"]
    torch.testing.assert_close(decoded, torch.stack([s.gt_calib for s in samples]).double())


@pytest.mark.parametrize("vp_mode", ["sphere", "image"])
def test_each_parameter_moves_its_supervised_and_geometric_losses(vp_mode):
    head = _head(vp_mode=vp_mode)
    samples = random_samples(6, seed=1)
    base = _raw_at(head, samples)
    # Which geometric terms a parameter enters (pitch-only R, vanishing points of Y and Z; the planes
    # of the rows of P: fx, u0, tx, tz in row 1, fy, v0, ty, tz in row 2, tz in row 3).
    enters = dict(
        fx=("loss_wc", "loss_planes"), fy=("loss_vp", "loss_wc", "loss_planes"),
        u0=("loss_vp", "loss_wc", "loss_planes"), v0=("loss_vp", "loss_wc", "loss_planes"),
        tx=("loss_wc", "loss_planes"), ty=("loss_wc", "loss_planes"), tz=("loss_wc", "loss_planes"),
        baseline=(), disparity=(),
    )  # fmt: skip
    for i, name in enumerate(PARAM_NAMES[:-1]):
        raw = base.clone()
        raw[:, i] += 0.3
        losses = head.loss_by_feat(raw, samples)
        assert losses[f"loss_{name}"] == pytest.approx(0.3)
        for term in GEOMETRIC:
            assert (losses[term] > 1e-6) == (term in enters[name]), (name, term, losses[term])
    raw = base.clone()
    raw[:, -1] += 0.05  # turns (c, s): pitch changes, |(c, s)| too
    losses = head.loss_by_feat(raw, samples)
    assert all(losses[k] > 1e-6 for k in ("loss_pitch", "loss_vp", "loss_planes", "loss_orth", "loss_det"))
    assert losses["loss_wc"] < 1e-9  # column 4 of P is K t: the origin's image does not depend on R


def test_planes_loss_of_a_depth_error_by_hand():
    # Only t_z off by delta: the principal plane (0, sin, cos, t_z) moves by delta; the planes of the
    # rows u = 0 and v = 0 keep their normals (fx, u0 sin, u0 cos) / |.|, (0, fy cos + v0 sin,
    # v0 cos - fy sin) / |.| and their offsets (fx tx + u0 tz) / |.|, (fy ty + v0 tz) / |.| move by
    # u0 delta / hypot(fx, u0) and v0 delta / hypot(fy, v0).
    head = _head(planes_dist_scale=4.0)
    samples = random_samples(5, seed=7)
    raw = _raw_at(head, samples)
    raw[:, PARAM_NAMES.index("tz")] += 0.3
    delta = 0.3 * head.param_std[PARAM_NAMES.index("tz")]
    gt = torch.stack([s.gt_calib for s in samples]).double()
    fx, fy, u0, v0 = gt[:, 0], gt[:, 1], gt[:, 2], gt[:, 3]
    expected = delta / 4.0 * (1 + u0 / torch.hypot(fx, u0) + v0 / torch.hypot(fy, v0))
    losses = head.loss_by_feat(raw, samples)
    assert losses["loss_planes"].item() == pytest.approx(expected.mean().item(), rel=1e-9)


def test_rotation_losses_see_a_non_orthonormal_rotation_with_the_right_pitch():
    head = _head()
    samples = random_samples(4, seed=2)
    losses = head.loss_by_feat(_raw_at(head, samples, pitch_scale=1.2), samples)
    assert losses["loss_pitch"] < 1e-6 and losses["loss_vp"] < 1e-6  # the vanishing directions ignore scale
    # R R^T = diag(1, n, n), det R = n with n = 1.44: mean |R R^T - I| = 2 * 0.44 / 9.
    assert losses["loss_orth"].item() == pytest.approx(2 * 0.44 / 9)
    assert losses["loss_det"].item() == pytest.approx(0.44)


def test_gradients_reach_every_output_and_weights_switch_terms_off():
    head = _head()
    samples = random_samples(5, seed=3)
    raw = (_raw_at(head, samples) + 0.1 * torch.randn(5, 11, dtype=torch.float64)).requires_grad_()
    for name, value in head.loss_by_feat(raw, samples).items():
        (grad,) = torch.autograd.grad(value, raw, retain_graph=True)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    off = _head(loss_weights=dict(vp=0.0, wc=0.0, planes=0.0, orth=0.0, det=0.0, fy=2.0))
    losses = off.loss_by_feat(raw.detach(), samples)
    assert not set(GEOMETRIC) & set(losses)
    assert losses["loss_fy"] == pytest.approx(2 * head.loss_by_feat(raw.detach(), samples)["loss_fy"].item())


def test_angle_rotation_builds_an_exact_rotation_and_drops_the_rotation_losses():
    head = _head(rotation="angle")
    samples = random_samples(4, seed=4)
    losses = head.loss_by_feat(_raw_at(head, samples), samples)
    assert "loss_orth" not in losses and "loss_det" not in losses
    assert all(v.abs() < 1e-6 for v in losses.values())


def test_pitch_loss_wraps_angles():
    head = _head()
    samples = random_samples(1, seed=5)
    samples[0].gt_calib[-1] = math.pi - 0.005
    raw = _raw_at(head, samples)
    raw[:, -2:] = torch.tensor([math.cos(-math.pi + 0.005) - 1.0, math.sin(-math.pi + 0.005)])  # 0.01 rad away
    assert head.loss_by_feat(raw, samples)["loss_pitch"].item() == pytest.approx(0.01 / 0.06, rel=1e-5)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="loss_weights"):
        _head(loss_weights=dict(focal=1.0))
    with pytest.raises(ValueError, match="vp_axes"):
        _head(vp_axes=(3,))
    with pytest.raises(ValueError, match="rotation"):
        _head(rotation="quaternion")
    with pytest.raises(ValueError, match="planes_dist_scale"):
        _head(planes_dist_scale=0.0)


BINS = dict(fx=dict(low=26.0, bin_width=1.0, num_bins=28), fy=dict(low=26.0, bin_width=1.0, num_bins=28))


def _binned_raw(head, samples, one_hot: bool = False) -> torch.Tensor:
    """Raw outputs of a binned head: the regression columns at the ground truth, and per binned
    parameter either a Gaussian (sigma 1 unit) over the bin centres around the sample's value, whose
    softmax expectation is that value, or a one-hot (logit 30) at the bin holding it."""
    logits = []
    for name, coder in head.bin_coders.items():
        target = torch.stack([s.gt_calib for s in samples]).double()[:, PARAM_NAMES.index(name)]
        if one_hot:
            logits.append(30.0 * torch.nn.functional.one_hot(coder.encode(target), coder.num_bins).double())
        else:
            logits.append(-0.5 * (coder.bin_centres(dtype=torch.float64)[None] - target[:, None]) ** 2)
    return torch.cat([_raw_at(head, samples), *logits], 1)


def test_binned_focal_is_the_softmax_expectation_and_ignores_its_regression_column():
    head = _head(binned=BINS)
    assert head.out.out_features == 11 + 2 * 28
    samples = random_samples(5, seed=3)
    raw = _binned_raw(head, samples)
    gt = torch.stack([s.gt_calib for s in samples]).double()
    decoded = head.decode(raw)["params"]
    torch.testing.assert_close(decoded[:, :2], gt[:, :2], atol=1e-3, rtol=0)
    torch.testing.assert_close(decoded[:, 2:], gt[:, 2:])
    moved = raw.clone()
    moved[:, 0] += 5.0  # the regression column of fx no longer counts
    torch.testing.assert_close(head.decode(moved)["params"], decoded)
    # Uniform logits decode to the middle of the binned range.
    flat = raw.clone()
    flat[:, 11:39] = 0.0
    torch.testing.assert_close(head.decode(flat)["params"][:, 0], torch.full((5,), 26.0 + 14.0, dtype=torch.float64))


def test_binned_loss_adds_the_bin_cross_entropy_and_trains_the_logits():
    samples = random_samples(5, seed=4)
    sharp = _head(binned={name: dict(cfg, label_sigma=0.0) for name, cfg in BINS.items()})
    raw = _binned_raw(sharp, samples, one_hot=True)
    losses = sharp.loss_by_feat(raw, samples)
    # One-hot labels and logits at the gt's bin: CE ~0, expectation = the bin centre (L1 <= 0.5 px / std 8).
    assert losses["loss_fx"] < 0.5 / 8 + 1e-6
    shifted = raw.clone()
    shifted[:, 11:39] = shifted[:, 11:39].roll(3, dims=1)  # peak 3 bins (3 px) off
    worse = sharp.loss_by_feat(shifted, samples)
    assert worse["loss_fx"] > losses["loss_fx"] + 3.0 / 8.0  # the L1 alone (3 px / std 8) and the CE
    assert worse["loss_fy"] == pytest.approx(float(losses["loss_fy"]))
    off = _head(binned=BINS, bin_cls_weight=0.0)
    assert off.loss_by_feat(_binned_raw(off, samples), samples)["loss_fx"] == pytest.approx(0.0, abs=1e-3)
    raw = raw.clone().requires_grad_()
    _head(binned=BINS).loss_by_feat(raw, samples)["loss_fx"].backward()
    assert raw.grad[:, 11:39].abs().sum() > 0 and raw.grad[:, 0].abs().sum() == 0


def test_binned_rejects_unknown_or_angular_parameters():
    with pytest.raises(ValueError, match="binned names unknown or non-linear parameters \\['pitch'\\]"):
        _head(binned=dict(pitch=dict(low=-1.0, bin_width=0.1, num_bins=20)))
    with pytest.raises(ValueError, match="binned.fx.label_sigma must be >= 0"):
        _head(binned=dict(fx=dict(BINS["fx"], label_sigma=-1.0)))


def test_depth_loss_triangulates_with_each_samples_doffs():
    """On rigs with a principal-point offset (doffs = u0_right - u0_left, Middlebury) the disparity of the
    world origin is fx b / tz - doffs; the triangulation term is 0 at that ground truth only when it
    adds each sample's doffs back (Z = fx b / (d + doffs)), and it is off unless weighted."""
    samples = random_samples(5, seed=3)
    doffs = torch.tensor([0.0, 3.0, -2.0, 8.5, 12.0])
    for s, offset in zip(samples, doffs):
        fx, baseline, tz = s.gt_calib[0], s.gt_calib[4], s.gt_calib[8]
        s.gt_calib[5] = fx * baseline / tz - offset
        s.set_metainfo(dict(doffs=float(offset)))
    assert "loss_depth" not in _head().loss_by_feat(_raw_at(_head(), samples), samples)
    head = _head(loss_weights=dict(depth=1.0))
    raw = _raw_at(head, samples)
    losses = head.loss_by_feat(raw, samples)
    assert losses["loss_depth"].abs() < 1e-5  # float32 targets
    for s in samples:
        s.set_metainfo(dict(doffs=0.0))  # the one-principal-point geometry misplaces the origin by metres
    assert head.loss_by_feat(raw, samples)["loss_depth"] > 0.1
    raw.requires_grad_(True)
    for s, offset in zip(samples, doffs):
        s.set_metainfo(dict(doffs=float(offset)))
    shifted = raw.detach().clone()
    shifted[:, PARAM_NAMES.index("disparity")] += 0.3
    shifted.requires_grad_(True)
    head.loss_by_feat(shifted, samples)["loss_depth"].backward()
    assert shifted.grad[:, PARAM_NAMES.index("disparity")].abs().min() > 0
