import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from perception_mtl.structures.head_pose import (
    FIVE_POINT_FLIP_ORDER,
    euler_to_matrix,
    flip_boxes,
    flip_landmarks,
    flip_pose,
    matrix_to_euler,
)


def _random_poses(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-89, 89, n), rng.uniform(-179, 179, n), rng.uniform(-179, 179, n)], 1)


def test_matches_scipy_extrinsic_xyz_pitch_yaw_roll():
    poses = _random_poses()
    ours = euler_to_matrix(poses[:, 0], poses[:, 1], poses[:, 2])
    scipy_rot = Rotation.from_euler("xyz", poses[:, [1, 0, 2]], degrees=True).as_matrix()
    np.testing.assert_allclose(ours, scipy_rot, atol=1e-12)
    # Rz(roll) @ Ry(yaw) @ Rx(pitch), each about the fixed axis named in the convention
    yaw, pitch, roll = poses[0]
    single = [Rotation.from_euler(a, v, degrees=True).as_matrix() for a, v in (("z", roll), ("y", yaw), ("x", pitch))]
    np.testing.assert_allclose(ours[0], single[0] @ single[1] @ single[2], atol=1e-12)


def test_euler_round_trip_and_scipy_angles():
    poses = _random_poses(seed=1)
    back = matrix_to_euler(euler_to_matrix(*poses.T))
    np.testing.assert_allclose(back, poses, atol=1e-9)
    pitch_yaw_roll = Rotation.from_matrix(euler_to_matrix(*poses.T)).as_euler("xyz", degrees=True)
    np.testing.assert_allclose(pitch_yaw_roll[:, [1, 0, 2]], poses, atol=1e-9)


def test_gimbal_lock_gives_a_valid_decomposition():
    rot = euler_to_matrix(90.0, 20.0, 15.0)
    np.testing.assert_allclose(euler_to_matrix(*matrix_to_euler(rot)), rot, atol=1e-9)


def test_documented_signs():
    nose = np.array([0.0, 0.0, -1.0])  # frontal nose points at the camera (-z); x right, y down
    assert (euler_to_matrix(30, 0, 0) @ nose)[0] < 0  # positive yaw: nose toward image-left
    assert (euler_to_matrix(0, 30, 0) @ nose)[1] > 0  # positive pitch: nose down
    assert (euler_to_matrix(0, 0, 30) @ np.array([1.0, 0, 0]))[1] > 0  # positive roll: right eye down


def test_flip_negates_yaw_and_roll_as_the_mirrored_rotation():
    mirror = np.diag([-1.0, 1.0, 1.0])
    for pose in _random_poses(50, seed=2):
        mirrored = mirror @ euler_to_matrix(*pose) @ mirror
        np.testing.assert_allclose(matrix_to_euler(mirrored), flip_pose(pose), atol=1e-9)
    np.testing.assert_allclose(flip_pose([10.0, 20.0, 30.0]), [-10.0, 20.0, -30.0])


def test_flip_landmarks_swaps_left_and_right():
    lm = np.array([[30.0, 40.0], [70.0, 41.0], [50.0, 60.0], [35.0, 80.0], [66.0, 81.0]])
    flipped = flip_landmarks(lm, width=100)
    np.testing.assert_allclose(flipped[0], [30.0, 41.0])  # new left eye = old right eye mirrored
    np.testing.assert_allclose(flipped[1], [70.0, 40.0])
    np.testing.assert_allclose(flipped[2], [50.0, 60.0])
    np.testing.assert_allclose(flipped[3], [34.0, 81.0])
    np.testing.assert_allclose(flip_landmarks(flipped, 100), lm)  # an involution
    assert FIVE_POINT_FLIP_ORDER == (1, 0, 2, 4, 3)
    np.testing.assert_allclose(flip_boxes([[10.0, 5.0, 30.0, 25.0]], 100), [[70.0, 5.0, 90.0, 25.0]])
    with pytest.raises(ValueError):
        flip_landmarks(np.zeros((4, 2)), 10)


def test_flip_of_a_rendered_head_matches_the_flipped_pose():
    """Rendering the flipped pose gives the mirrored landmarks of the original (the renderer and the rules agree)."""
    from perception_mtl.synthetic.faces.face_renderer import render_head
    from perception_mtl.synthetic.faces.head_model import HeadModel

    head = HeadModel.sample(np.random.default_rng(0))
    head.axes[0] = 0.75  # the model is left-right symmetric
    pose = np.array([35.0, -12.0, 20.0])
    canvas = np.zeros((100, 100, 3))
    a = render_head(canvas, head, pose, np.array([40.0, 50.0]), 20.0, np.random.default_rng(1))
    b = render_head(canvas, head, flip_pose(pose), np.array([60.0, 50.0]), 20.0, np.random.default_rng(1))
    np.testing.assert_allclose(flip_landmarks(a["landmarks"], 100), b["landmarks"], atol=1e-6)
    np.testing.assert_allclose(flip_boxes(a["box"], 100), b["box"], atol=1e-6)
