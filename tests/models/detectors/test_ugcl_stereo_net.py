"""UGCLStereoNet: stereo fusion, the MMEngine modes, and a few training steps on a tiny generated set."""

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.datasets import CVGLStereoDataset
from perception_mtl.deploy import export_onnx
from perception_mtl.models.detectors.ugcl_stereo_net import (
    horizontal_correlation,
    mirror_calib_params,
    mirror_stereo_pair,
    shift_stereo_pair,
)
from perception_mtl.registry import MODELS
from perception_mtl.structures.camera_geometry import (
    intrinsic_matrix,
    intrinsic_matrix_np,
    project_points,
    projection_matrix,
    rotation_x,
)
from perception_mtl.synthetic.stereo import road_stereo_renderer as renderer
from perception_mtl.testing import config_path
from perception_mtl.testing.camera_calibration import tiny_cvgl_root, tiny_head_cfg, tiny_model_cfg

BINNED_FX = dict(fx=dict(low=26.0, bin_width=1.0, num_bins=28))


def _build(**overrides):
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    return MODELS.build(tiny_model_cfg(**overrides))


def test_correlation_peaks_at_the_true_shift():
    torch.manual_seed(0)
    right = torch.nn.functional.normalize(torch.randn(2, 16, 5, 20), dim=1)
    left = torch.zeros_like(right)
    left[..., 3:] = right[..., :-3]  # a point at x in the right view is at x + 3 in the left view
    corr = horizontal_correlation(left, right, max_disp=6)
    assert corr.shape == (2, 6, 5, 20)
    assert (corr[..., 8:].argmax(1) == 3).all()
    torch.testing.assert_close(corr[:, 3, :, 8:] * 16, torch.ones(2, 5, 12))


def _rig_projections(params):
    """P of the left and right cameras of rectified rigs (right = left moved by +baseline along x)."""
    k = intrinsic_matrix(params[:, 0], params[:, 1], params[:, 2], params[:, 3])
    rot, trans = rotation_x(params[:, 9]), params[:, 6:9]
    shift = torch.zeros_like(trans)
    shift[:, 0] = params[:, 4]
    return projection_matrix(k, rot, trans), projection_matrix(k, rot, trans - shift)


def test_mirrored_rig_sees_the_mirrored_images_of_the_mirrored_world():
    torch.manual_seed(0)
    width, n = 128, 5
    lo = torch.tensor([70.0, 70.0, 60.0, 44.0, 0.2, 0.0, -2.0, 0.5, 8.0, -0.05])
    hi = torch.tensor([140.0, 140.0, 67.0, 51.0, 0.8, 0.0, 2.0, 2.0, 20.0, 0.2])
    params = lo + (hi - lo) * torch.rand(n, 10)
    params[:, 1] = params[:, 0]
    params[:, 5] = params[:, 0] * params[:, 4] / params[:, 8]  # disparity of the world origin
    mirrored = mirror_calib_params(params, width)
    torch.testing.assert_close(mirror_calib_params(mirrored, width), params)
    points = torch.rand(n, 50, 3) * torch.tensor([20.0, 4.0, 60.0]) + torch.tensor([-10.0, -3.0, 5.0])
    flip_x = torch.tensor([-1.0, 1.0, 1.0])
    left, right = _rig_projections(params)
    left_m, right_m = _rig_projections(mirrored)
    for view, view_m in ((right, left_m), (left, right_m)):  # left' = flip(right), right' = flip(left)
        uv = project_points(view, points)
        uv_m = project_points(view_m, points * flip_x)
        torch.testing.assert_close(uv_m[..., 0], (width - 1) - uv[..., 0], atol=1e-3, rtol=0)
        torch.testing.assert_close(uv_m[..., 1], uv[..., 1], atol=1e-3, rtol=0)
    pairs = torch.arange(2 * 2 * 3 * 4 * 5.0).view(2, 2, 3, 4, 5)
    torch.testing.assert_close(mirror_stereo_pair(pairs)[:, 0], pairs[:, 1].flip(-1))
    torch.testing.assert_close(mirror_stereo_pair(mirror_stereo_pair(pairs)), pairs)


def test_test_flip_averages_the_pair_and_its_mirror():
    plain = _build().eval()
    flipped = _build(test_flip=True).eval()
    flipped.load_state_dict(plain.state_dict())
    batch = pseudo_collate([CVGLStereoDataset(tiny_cvgl_root(), "test")[i] for i in range(2)])
    data = plain.data_preprocessor(batch)
    with torch.no_grad():
        direct = torch.stack([s.pred_calib for s in plain(**data, mode="predict")])
        mirror_data = dict(data, inputs=mirror_stereo_pair(torch.stack(list(data["inputs"]))))
        of_mirror = torch.stack([s.pred_calib for s in plain(**mirror_data, mode="predict")])
        averaged = torch.stack([s.pred_calib for s in flipped(**data, mode="predict")])
    width = data["inputs"][0].shape[-1]
    torch.testing.assert_close(averaged, (direct + mirror_calib_params(of_mirror, width)) / 2)
    assert not torch.allclose(averaged, direct)


class _NoNoise:
    def normal(self, loc, scale, size):
        return np.zeros(size)


@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (-2, 1), (0, -1)])
def test_shifted_pair_is_the_render_with_a_moved_principal_point(dx, dy):
    width, height = 64, 48
    rng = np.random.default_rng(11)
    rig = renderer.sample_rig(rng, width, height, renderer.RigRanges())
    scene = renderer.sample_scene(rng)

    def render(u0, v0):
        k = intrinsic_matrix_np(rig.fx, rig.fy, u0, v0)
        views = [rig.translation, rig.translation - np.array([rig.baseline, 0.0, 0.0])]
        imgs = [renderer.render_view(scene, k, rig.rotation, t, width, height, _NoNoise()) for t in views]
        return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2)).float()[None]

    shifted = shift_stereo_pair(render(rig.u0, rig.v0), dx, dy)
    moved = render(rig.u0 + dx, rig.v0 + dy)
    inner = (..., slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0)))
    assert (shifted[inner] - moved[inner]).abs().max() <= 1.0  # uint8 rounding of the same rays
    assert (shift_stereo_pair(render(rig.u0, rig.v0), -dx, -dy)[inner] - moved[inner]).abs().mean() > 5.0
    # The uncovered border repeats the nearest covered row / column.
    if dx > 0:
        torch.testing.assert_close(shifted[..., :dx], shifted[..., dx : dx + 1].expand_as(shifted[..., :dx]))
    with pytest.raises(ValueError, match="leaves nothing"):
        shift_stereo_pair(moved, width, 0)


def test_test_shifts_average_every_shifted_and_mirrored_view_mapped_back():
    plain = _build().eval()
    tta = _build(test_flip=True, test_shifts=[(1, 0), (0, -2)]).eval()
    tta.load_state_dict(plain.state_dict())
    batch = pseudo_collate([CVGLStereoDataset(tiny_cvgl_root(), "test")[i] for i in range(3)])
    data = plain.data_preprocessor(batch)
    pairs = torch.stack(list(data["inputs"]))
    width = pairs.shape[-1]
    expected = []
    with torch.no_grad():
        for dx, dy in ((0, 0), (1, 0), (0, -2)):
            view = shift_stereo_pair(pairs, dx, dy)
            for mirror in (False, True):
                inputs = mirror_stereo_pair(view) if mirror else view
                p = torch.stack([s.pred_calib for s in plain(**dict(data, inputs=inputs), mode="predict")])
                p = mirror_calib_params(p, width) if mirror else p
                expected.append(p - torch.tensor([0.0, 0.0, dx, dy, 0, 0, 0, 0, 0, 0]))
        averaged = torch.stack([s.pred_calib for s in tta(**data, mode="predict")])
    torch.testing.assert_close(averaged, torch.stack(expected).mean(0), atol=1e-4, rtol=1e-5)
    assert not torch.allclose(averaged, expected[0], atol=1e-3)
    with pytest.raises(ValueError, match="test_shifts"):
        _build(test_shifts=[(0, 0)])


def test_modes_and_input_checks():
    model = _build(shared_trunk=False).eval()
    assert set(model.trunks) == {"left", "right"}
    batch = pseudo_collate([CVGLStereoDataset(tiny_cvgl_root(), "test")[i] for i in range(2)])
    data = model.data_preprocessor(batch)
    with torch.no_grad():
        raw = model(**data, mode="tensor")
        assert raw.shape == (2, 11)
        samples = model(**data, mode="predict")
    assert samples[0].pred_calib.shape == (10,)
    with pytest.raises(ValueError, match="stereo pairs"):
        model(torch.zeros(2, 3, 32, 48), mode="tensor")
    with pytest.raises(ValueError, match="unknown mode"):
        model(**data, mode="export")


def test_loss_falls_over_a_few_steps_on_a_tiny_generated_set():
    model = _build()
    batch = pseudo_collate([CVGLStereoDataset(tiny_cvgl_root(), "train")[i] for i in range(8)])
    data = model.data_preprocessor(batch, training=True)
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    totals = []
    model.train()
    for _ in range(25):
        losses = model(**data, mode="loss")
        assert all(k.startswith("calib.loss_") for k in losses)
        geometric = ("vp", "wc", "planes", "orth", "det")
        assert {"calib.loss_fx", *(f"calib.loss_{t}" for t in geometric)} <= set(losses)
        total = sum(losses.values())
        assert torch.isfinite(total)
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(total.item())
    assert sum(totals[-3:]) / 3 < 0.7 * sum(totals[:3]) / 3, totals


def test_loss_under_bfloat16_autocast_keeps_the_head_in_float32():
    model = _build(head=tiny_head_cfg(binned=BINNED_FX)).train()
    batch = pseudo_collate([CVGLStereoDataset(tiny_cvgl_root(), "train")[i] for i in range(4)])
    data = model.data_preprocessor(batch, training=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what BFloat16OptimWrapper does; det R has no bf16 kernel
        assert model(**data, mode="tensor").dtype == torch.bfloat16
        losses = model(**data, mode="loss")
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad.dtype == torch.float32 for p in model.trunks["left"].parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "config", ["ugcl_calib.py", "ugcl_calib_demo.py", "ugcl_calib_regnetx002_1xb16-11e_cvgl256x192.py"]
)
def test_configs_build_the_model_with_the_dataset_statistics(config):
    import json
    import math
    import pathlib

    from mmengine.config import Config

    from perception_mtl.synthetic.stereo.road_stereo_renderer import RigRanges

    root = pathlib.Path(__file__).resolve().parents[3]
    cfg = Config.fromfile(str(config_path(config)))
    model = _build(**{k: v for k, v in cfg.model.items() if k != "type"})
    assert model.head.param_std.shape == (10,)
    assert cfg.model.head.loss_weights == dict(vp=1.0, wc=1.0, planes=1.0, orth=1.0, det=1.0)
    assert cfg.train_dataloader.dataset.split == "train" and cfg.test_dataloader.dataset.split == "test"
    data_root = cfg.train_dataloader.dataset.data_root
    assert cfg.val_dataloader.dataset.data_root == cfg.test_dataloader.dataset.data_root == data_root
    # The focal-length bins span every focal length the renderer draws at this image width
    # (W = 2 * mean u0 + 1, f = W / (2 tan(FOV / 2))).
    width = 2 * cfg.model.head.param_stats["u0"][0] + 1
    fovs = RigRanges().fov_deg
    f_lo, f_hi = (width / (2 * math.tan(math.radians(fov) / 2)) for fov in (fovs[1], fovs[0]))
    for name, bins in cfg.model.head.get("binned", {}).items():
        assert bins["low"] < f_lo and f_hi < bins["low"] + bins["num_bins"] * bins["bin_width"], name
    meta = root / data_root / "meta.json"
    if meta.is_file():  # the config's statistics are those of the generated training split
        stats = json.loads(meta.read_text())["train_stats"]
        for name in stats:
            mean, std = cfg.model.head.param_stats[name]
            # Normalisation only needs them roughly: means within 5 % of a std, stds within 5 %.
            assert abs(mean - stats[name]["mean"]) < 0.05 * stats[name]["std"], name
            assert std == pytest.approx(stats[name]["std"], rel=0.05), name


@pytest.mark.parametrize("extras", [{}, {"head": tiny_head_cfg(binned=BINNED_FX)}])
def test_calib_forward_exports_to_onnx_and_matches_onnxruntime(extras):
    # ONNX's adaptive average pooling needs the pooled size to divide the fused map (the demo and full
    # configs pool 6x8 / 3x4 maps to their own size); the tiny model pools 4x4 -> 2x2 at 64x64.
    model = _build(**extras).eval()
    pairs = torch.randint(0, 255, (1, 2, 3, 64, 64)).float()
    session, ops = export_onnx(model, (pairs,), input_names=["pairs"], dynamic_axes={"pairs": {0: "batch"}})
    assert "NonZero" not in ops
    pairs = torch.randint(0, 255, (3, 2, 3, 64, 64)).float()
    (out,) = session.run(None, {"pairs": pairs.numpy()})
    with torch.no_grad():
        ref = model.calib_forward(pairs)
    assert out.shape == tuple(ref.shape)
    assert (torch.from_numpy(out) - ref).abs().max() < 1e-4
