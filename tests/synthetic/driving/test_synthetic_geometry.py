"""Geometry helpers and the ray caster of the synthetic world, against independent references."""

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion
from shapely.geometry import Polygon

from perception_mtl.structures.rotations import euler_xyz_to_matrix
from perception_mtl.synthetic.driving.geometry import (
    box_corners,
    footprints_overlap,
    footprints_overlap_paired,
    matrix_to_quaternion,
    points_in_boxes,
    quaternion_to_matrix,
    yaw_to_quaternion,
)
from perception_mtl.synthetic.driving.primitive_set import PrimitiveSet
from perception_mtl.synthetic.driving.ray_caster import cast_rays


def _rect_polygon(r):
    c = box_corners(np.array([[r[0], r[1], 0.0]]), np.array([[r[2], r[3], 1.0]]), np.array([r[4]]))[0, :4, :2]
    return Polygon(c)


def test_footprint_overlap_matches_shapely():
    rng = np.random.default_rng(0)
    a = rng.uniform([-5, -5, 0.5, 0.5, -3], [5, 5, 6, 3, 3], (120, 5))
    b = rng.uniform([-5, -5, 0.5, 0.5, -3], [5, 5, 6, 3, 3], (110, 5))
    ours = footprints_overlap(a, b)
    ref = np.array([[_rect_polygon(x).intersects(_rect_polygon(y)) for y in b] for x in a])
    assert 0.2 < ref.mean() < 0.8  # both outcomes are exercised
    assert np.array_equal(ours, ref)
    assert np.array_equal(footprints_overlap_paired(a[:110], b), np.diag(footprints_overlap(a[:110], b)))


def test_rotations_agree_with_pyquaternion():
    rng = np.random.default_rng(1)
    for _ in range(20):
        rot = euler_xyz_to_matrix(*rng.uniform(-np.pi, np.pi, 3))
        q = matrix_to_quaternion(rot)
        assert np.allclose(Quaternion(q).rotation_matrix, rot, atol=1e-12)
        assert np.allclose(quaternion_to_matrix(q), rot, atol=1e-12)
    yaw = 2.3
    assert np.isclose(Quaternion(yaw_to_quaternion(yaw)).yaw_pitch_roll[0], yaw)


def test_box_corners_and_points_in_boxes_match_devkit():
    rng = np.random.default_rng(2)
    center, size, yaw = np.array([3.0, -2.0, 0.8]), np.array([4.5, 1.9, 1.6]), 0.7
    ours = box_corners(center[None], size[None], np.array([yaw]))[0]
    devkit = Box(center, [size[1], size[0], size[2]], Quaternion(yaw_to_quaternion(yaw))).corners().T
    # Same point set (orders differ).
    dist = np.linalg.norm(ours[:, None] - devkit[None], axis=-1)
    assert dist.min(1).max() < 1e-9
    points = rng.uniform([-1, -6, -1], [7, 2, 3], (4000, 3))
    inside = points_in_boxes(points, center[None], size[None], np.array([yaw]))[:, 0]
    ref = points_in_box(Box(center, [size[1], size[0], size[2]], Quaternion(yaw_to_quaternion(yaw))), points.T)
    assert inside.sum() > 100 and np.array_equal(inside, ref)


def _prims(centers, sizes, yaws):
    n = len(centers)
    return PrimitiveSet(
        np.asarray(centers, float),
        np.asarray(sizes, float) / 2,
        np.asarray(yaws, float),
        np.ones((n, 3)),
        np.full(n, 20.0),
        np.arange(n),
        np.ones(n, int),
        np.zeros(n, int),
    )


def test_ray_caster_distances_normals_and_occlusion():
    # Two boxes on the +x axis; the near one hides the far one; a ray downwards hits the ground.
    prims = _prims([[10.0, 0.0, 1.0], [20.0, 0.0, 1.0]], [[2.0, 2.0, 2.0], [2.0, 4.0, 2.0]], [0.0, np.pi / 2])
    origin = np.array([0.0, 0.0, 1.0])
    dirs = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.05]])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    pair_ray = np.array([0, 0, 2, 3, 3])
    pair_box = np.array([0, 1, 0, 0, 1])
    hits = cast_rays(origin, dirs, prims, pair_ray, pair_box)
    assert np.isclose(hits.distance[0], 9.0) and hits.box[0] == 0
    assert np.allclose(hits.normal[0], [-1.0, 0.0, 0.0], atol=1e-6)
    assert hits.ground[1] and np.isclose(hits.distance[1], 1.0)
    assert np.isinf(hits.distance[2]) and hits.box[2] == -1 and not hits.ground[2]
    assert hits.box[3] == 0 and np.isclose(hits.distance[3], 9.0 / dirs[3, 0])
    # The far box alone: rotated by 90 deg, its 4 m width lies along x, so its face is at x = 18.
    alone = cast_rays(origin, dirs[:1], prims, np.array([0]), np.array([1]))
    assert np.isclose(alone.distance[0], 18.0) and alone.box[0] == 1
