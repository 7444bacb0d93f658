"""Rectified stereo with a principal-point offset between the views (Middlebury 2014's ``doffs``).

Middlebury's calib.txt gives cam0 / cam1 intrinsics that differ only in cx, ``doffs = cx1 - cx0``, and
depth ``Z = baseline * f / (d + doffs)``. The rig below is the Adirondack scene's (2014 set, full size):
f = 4161.221 px, cx0 = 1445.577, cx1 = 1654.636 (doffs = 209.059), baseline = 176.252 mm.
"""

import numpy as np
import pytest
import torch

from perception_mtl.datasets import CVGLStereoDataset
from perception_mtl.datasets.cvgl_stereo_dataset import PARAM_NAMES, cvgl_path
from perception_mtl.models.detectors.ugcl_stereo_net import mirror_calib_params
from perception_mtl.structures.camera_geometry import depth_from_disparity, disparity_from_depth
from perception_mtl.synthetic.stereo import SyntheticCVGLWriter, road_stereo_renderer
from perception_mtl.synthetic.stereo.road_stereo_renderer import RigRanges

F, CX0, CX1, BASELINE = 4161.221, 1445.577, 1654.636, 0.176252


def _middlebury_disparities(points: np.ndarray) -> np.ndarray:
    """u_left - u_right of (N, 3) left-camera points (metres) imaged by the two Adirondack cameras."""
    u_left = F * points[:, 0] / points[:, 2] + CX0
    u_right = F * (points[:, 0] - BASELINE) / points[:, 2] + CX1
    return u_left - u_right


def test_depth_from_disparity_on_a_middlebury_rig():
    points = np.stack([np.linspace(-0.5, 0.5, 7), np.linspace(-0.3, 0.3, 7), np.linspace(1.5, 2.8, 7)], 1)
    disp = _middlebury_disparities(points)
    doffs = CX1 - CX0
    np.testing.assert_allclose(depth_from_disparity(disp, F, BASELINE, doffs), points[:, 2], rtol=1e-12)
    np.testing.assert_allclose(disparity_from_depth(points[:, 2], F, BASELINE, doffs), disp, rtol=1e-12)
    assert disp.min() > 40 and disp.max() < 290  # inside the scene's ndisp = 290
    # one shared principal point (d = f b / Z) reads these pairs 1.7-5x too far away
    ratio = depth_from_disparity(disp, F, BASELINE) / points[:, 2]
    assert ratio.min() > 1.7 and ratio.max() > 4.5
    doffs_t = torch.full((7,), doffs, dtype=torch.float64)
    depth = depth_from_disparity(torch.from_numpy(disp), F, BASELINE, doffs_t, min_disparity=0.1)
    torch.testing.assert_close(depth, torch.from_numpy(points[:, 2]), rtol=1e-12, atol=0)
    assert depth_from_disparity(torch.tensor([-300.0]), F, BASELINE, doffs, min_disparity=0.1).item() == pytest.approx(
        F * BASELINE / 0.1
    )


def test_synthetic_rig_with_doffs_renders_the_right_view_with_its_own_principal_point(monkeypatch):
    intrinsics = []

    def record(scene, k, rot, trans, width, height, rng, supersample):
        intrinsics.append((k.copy(), trans.copy()))
        return np.zeros((height, width, 3), np.uint8)

    monkeypatch.setattr(road_stereo_renderer, "render_view", record)
    rig, _, _ = road_stereo_renderer.render_stereo_pair(np.random.default_rng(0), 128, 96, RigRanges(doffs_px=(6, 6)))
    assert rig.doffs == 6.0
    (k_left, t_left), (k_right, t_right) = intrinsics
    assert k_right[0, 2] - k_left[0, 2] == pytest.approx(6.0)
    u_left = (k_left @ t_left)[0] / t_left[2]
    u_right = (k_right @ t_right)[0] / t_right[2]
    assert rig.disparity == pytest.approx(u_left - u_right, abs=1e-9)
    assert depth_from_disparity(rig.disparity, rig.fx, rig.baseline, rig.doffs) == pytest.approx(rig.translation[2])
    # default ranges: no doffs and no extra draw (the seed stream of existing data is unchanged)
    a, _, _ = road_stereo_renderer.render_stereo_pair(np.random.default_rng(0), 128, 96)
    b, _, _ = road_stereo_renderer.render_stereo_pair(np.random.default_rng(0), 128, 96, RigRanges(doffs_px=(6, 6)))
    assert a.doffs == 0.0 and (a.fx, a.u0, a.distance) == (b.fx, b.u0, b.distance)


def test_cvgl_writer_and_dataset_carry_doffs(tmp_path):
    root = str(tmp_path / "cvgl")
    SyntheticCVGLWriter(root, 4, 48, 32, 0.5, seed=1, ranges=RigRanges(doffs_px=(2.0, 9.0))).run()
    data = CVGLStereoDataset(root, split="all")
    stored = np.load(cvgl_path(root, "doffs"))
    assert stored.min() >= 2.0 and stored.max() <= 9.0 and np.ptp(stored) > 0
    i = {name: PARAM_NAMES.index(name) for name in ("fx", "baseline", "disparity", "tz")}
    for index in range(len(data)):
        sample = data[index]["data_samples"]
        assert sample.metainfo["doffs"] == stored[sample.metainfo["sample_idx"]]
        p = data.get_params(index)
        assert depth_from_disparity(p[i["disparity"]], p[i["fx"]], p[i["baseline"]], sample.metainfo["doffs"]) == (
            pytest.approx(p[i["tz"]], rel=1e-9)
        )
    (tmp_path / "cvgl" / "doffs.npy").unlink()  # the original CVGL layout has none: one principal point
    assert CVGLStereoDataset(root, split="all")[0]["data_samples"].metainfo["doffs"] == 0.0


def test_mirrored_rig_keeps_doffs_and_moves_the_left_principal_point():
    """The mirrored left camera is the right camera reflected: u0' = W - 1 - (u0 + doffs); same doffs."""
    width = 48
    params = torch.tensor([[40.0, 40.0, 22.5, 15.0, 0.5, 1.8, 0.4, 1.5, 11.0, 0.05]])
    doffs = torch.tensor([4.0])
    mirrored = mirror_calib_params(params, width, doffs)
    assert mirrored[0, 2].item() == pytest.approx(width - 1 - (22.5 + 4.0))
    torch.testing.assert_close(mirror_calib_params(mirrored, width, doffs), params)
    # the mirrored pair's disparity is unchanged: u_left' - u_right' = (W-1-u_right) - (W-1-u_left)
    u_left = 40.0 * 0.4 / 11.0 + 22.5
    u_right = 40.0 * (0.4 - 0.5) / 11.0 + 22.5 + 4.0
    u_left_mirror = 40.0 * mirrored[0, 6].item() / 11.0 + mirrored[0, 2].item()
    assert u_left_mirror == pytest.approx(width - 1 - u_right)
    assert u_left - u_right == pytest.approx(disparity_from_depth(11.0, 40.0, 0.5, 4.0))
