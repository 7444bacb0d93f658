"""Road stereo renderer: screen-space culling changes no pixel, and supersampling places its rays
evenly inside each pixel (a supersampled render equals a render at s-times the resolution, averaged)."""

import numpy as np
import pytest

from perception_mtl.structures.camera_geometry import intrinsic_matrix_np
from perception_mtl.synthetic.stereo import road_stereo_renderer as renderer


class _NoNoise:
    """Stands in for the generator in ``render_view``: zero sensor noise, so renders compare exactly."""

    def normal(self, loc, scale, size):
        return np.zeros(size)


def _rig_and_scene(seed: int, width: int, height: int):
    rng = np.random.default_rng([seed, 7])
    rig = renderer.sample_rig(rng, width, height, renderer.RigRanges())
    return rig, renderer.sample_scene(rng)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_culling_changes_no_pixel(seed, monkeypatch):
    width, height = 64, 48
    rig, scene = _rig_and_scene(seed, width, height)
    k = intrinsic_matrix_np(rig.fx, rig.fy, rig.u0, rig.v0)
    for supersample in (1, 2):
        culled = renderer.render_view(scene, k, rig.rotation, rig.translation, width, height, _NoNoise(), supersample)
        with monkeypatch.context() as patch:
            patch.setattr(renderer, "_rays_in_view", lambda *args: None)  # every object against every ray
            full = renderer.render_view(scene, k, rig.rotation, rig.translation, width, height, _NoNoise(), supersample)
        np.testing.assert_array_equal(culled, full)


def test_objects_behind_the_camera_fall_back_to_every_ray():
    k = intrinsic_matrix_np(50.0, 50.0, 15.5, 11.5)
    rot, trans = np.eye(3), np.zeros(3)
    us, vs = np.arange(32.0), np.arange(24.0)
    straddling = renderer._box_corners(np.array([-1.0, 1.0, -2.0, -1.0, 5.0]))
    assert renderer._rays_in_view(straddling, k, rot, trans, us, vs) is None
    ahead = renderer._box_corners(np.array([-0.1, 0.1, -0.1, 9.9, 10.1]))  # around (0, 0, 10): the centre
    rows, cols = np.divmod(renderer._rays_in_view(ahead, k, rot, trans, us, vs), len(us))
    assert 11 <= rows.mean() <= 12 and 15 <= cols.mean() <= 16 and len(rows) < 50
    off_screen = renderer._box_corners(np.array([50.0, 51.0, -1.0, 9.0, 10.0]))
    assert len(renderer._rays_in_view(off_screen, k, rot, trans, us, vs)) == 0


@pytest.mark.parametrize("s", [2, 3])
def test_supersampling_is_the_box_filtered_high_resolution_render(s):
    width, height = 40, 30
    rig, scene = _rig_and_scene(5, width, height)
    k = intrinsic_matrix_np(rig.fx, rig.fy, rig.u0, rig.v0)
    low = renderer.render_view(scene, k, rig.rotation, rig.translation, width, height, _NoNoise(), s)
    # Pixel (row, col) at resolution s x covers s x s pixels centred at s * col + (s - 1) / 2.
    k_high = intrinsic_matrix_np(s * rig.fx, s * rig.fy, s * rig.u0 + (s - 1) / 2, s * rig.v0 + (s - 1) / 2)
    high = renderer.render_view(scene, k_high, rig.rotation, rig.translation, s * width, s * height, _NoNoise())
    averaged = high.astype(np.float64).reshape(height, s, width, s, 3).mean((1, 3))
    # The two differ only by where uint8 rounding happens (before vs after the averaging).
    assert np.abs(low - averaged).max() <= 1.0
    # A point-sampled render differs in many pixels (edges, texture).
    plain = renderer.render_view(scene, k, rig.rotation, rig.translation, width, height, _NoNoise())
    assert (low != plain).mean() > 0.2


def test_supersample_must_be_positive():
    rig, scene = _rig_and_scene(0, 32, 24)
    k = intrinsic_matrix_np(rig.fx, rig.fy, rig.u0, rig.v0)
    with pytest.raises(ValueError, match="supersample"):
        renderer.render_view(scene, k, rig.rotation, rig.translation, 32, 24, _NoNoise(), 0)
