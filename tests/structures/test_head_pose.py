import numpy as np
import pytest
import scipy.io
from scipy.spatial.transform import Rotation

from perception_mtl.structures.head_pose import (
    FACE_MODEL_AXES,
    FIVE_POINT_FLIP_ORDER,
    euler_to_matrix,
    flip_boxes,
    flip_landmarks,
    flip_pose,
    matrix_to_euler,
    pose_from_pose_para,
    pose_to_pose_para,
)


def _random_poses(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-89, 89, n), rng.uniform(-179, 179, n), rng.uniform(-179, 179, n)], 1)


def test_matches_scipy_intrinsic_xyz_minus_pitch_yaw_roll():
    poses = _random_poses()
    ours = euler_to_matrix(poses[:, 0], poses[:, 1], poses[:, 2])
    angles = np.stack([-poses[:, 1], poses[:, 0], poses[:, 2]], 1)
    np.testing.assert_allclose(ours, Rotation.from_euler("XYZ", angles, degrees=True).as_matrix(), atol=1e-12)
    # Rx(-pitch) @ Ry(yaw) @ Rz(roll), right-handed elementary rotations
    yaw, pitch, roll = poses[0]
    single = [Rotation.from_euler(a, v, degrees=True).as_matrix() for a, v in (("x", -pitch), ("y", yaw), ("z", roll))]
    np.testing.assert_allclose(ours[0], single[0] @ single[1] @ single[2], atol=1e-12)


def test_euler_round_trip_and_scipy_angles():
    poses = _random_poses(seed=1)
    back = matrix_to_euler(euler_to_matrix(*poses.T))
    np.testing.assert_allclose(back, poses, atol=1e-9)
    minus_pitch_yaw_roll = Rotation.from_matrix(euler_to_matrix(*poses.T)).as_euler("XYZ", degrees=True)
    np.testing.assert_allclose(minus_pitch_yaw_roll, np.stack([-poses[:, 1], poses[:, 0], poses[:, 2]], 1), atol=1e-9)


def test_gimbal_lock_gives_a_valid_decomposition():
    rot = euler_to_matrix(90.0, 20.0, 15.0)
    np.testing.assert_allclose(euler_to_matrix(*matrix_to_euler(rot)), rot, atol=1e-9)


def test_documented_signs():
    """Was "positive pitch: nose down" (the module's former, non-AFLW2000 convention); the files' is nose up."""
    nose = np.array([0.0, 0.0, -1.0])  # frontal nose points at the camera (-z); x right, y down
    assert (euler_to_matrix(30, 0, 0) @ nose)[0] < 0  # positive yaw: nose toward image-left
    assert (euler_to_matrix(0, 30, 0) @ nose)[1] < 0  # positive pitch: nose up
    assert (euler_to_matrix(0, 0, 30) @ np.array([1.0, 0, 0]))[1] > 0  # positive roll: right eye down


# ---------------------------------------------------------------- against 3DDFA / Hopenet (AFLW2000, 300W-LP)


def _rotation_3ddfa(pitch, yaw, roll):
    """3DDFA's RotationMatrix(phi, gamma, theta) for Pose_Para [pitch, yaw, roll] (radians): R_x R_y R_z with
    the elementary matrices as 3DDFA writes them (transposed), in the face model's axes (x right, y up, z
    toward the viewer)."""
    c, s = np.cos, np.sin
    r_x = np.array([[1, 0, 0], [0, c(pitch), s(pitch)], [0, -s(pitch), c(pitch)]])
    r_y = np.array([[c(yaw), 0, -s(yaw)], [0, 1, 0], [s(yaw), 0, c(yaw)]])
    r_z = np.array([[c(roll), s(roll), 0], [-s(roll), c(roll), 0], [0, 0, 1]])
    return r_x @ r_y @ r_z


def test_matches_3ddfa_rotation_in_camera_axes():
    """C R_3ddfa C (C = diag(1, -1, -1): y up / z toward the viewer -> y down / z forward) is our matrix for the
    same angles; the former convention (Rz Ry Rx with the pitch sign flipped) differs as soon as yaw and pitch
    combine."""
    cc = FACE_MODEL_AXES
    for yaw, pitch, roll in _random_poses(50, seed=3):
        expected = cc @ _rotation_3ddfa(*np.deg2rad([pitch, yaw, roll])) @ cc
        np.testing.assert_allclose(euler_to_matrix(yaw, pitch, roll), expected, atol=1e-12)
    # yaw 50 and pitch 30 together: no (yaw, -pitch, roll) in the former order gives this matrix
    combined = cc @ _rotation_3ddfa(*np.deg2rad([30.0, 50.0, 0.0])) @ cc
    former = Rotation.from_euler("xyz", [-30.0, 50.0, 0.0], degrees=True).as_matrix()
    assert np.abs(former - combined).max() > 0.1
    np.testing.assert_allclose(matrix_to_euler(combined), [50.0, 30.0, 0.0], atol=1e-9)


def test_matches_hopenet_axis_drawing():
    """Hopenet's draw_axis puts the head's x, y axes and its out-of-screen axis (toward the viewer, -z here) at
    these image offsets (y down), yaw negated first; they are the columns of our matrix."""
    for yaw, pitch, roll in _random_poses(20, seed=4):
        p, y, r = np.deg2rad(pitch), -np.deg2rad(yaw), np.deg2rad(roll)
        x_axis = [np.cos(y) * np.cos(r), np.cos(p) * np.sin(r) + np.cos(r) * np.sin(p) * np.sin(y)]
        y_axis = [-np.cos(y) * np.sin(r), np.cos(p) * np.cos(r) - np.sin(p) * np.sin(y) * np.sin(r)]
        out_axis = [np.sin(y), -np.cos(y) * np.sin(p)]
        rot = euler_to_matrix(yaw, pitch, roll)
        np.testing.assert_allclose(rot[:2, 0], x_axis, atol=1e-12)
        np.testing.assert_allclose(rot[:2, 1], y_axis, atol=1e-12)
        np.testing.assert_allclose(-rot[:2, 2], out_axis, atol=1e-12)


def test_pose_para_of_hand_built_rotations(tmp_path):
    """Head turned by hand in camera axes -> .mat -> reader: a nose-up head has a positive file pitch, and a turn
    then a look up about the camera's horizontal axis has exactly (yaw, pitch) in the file, roll 0."""
    from perception_mtl.datasets.aflw2000_dataset import read_aflw2000_mat
    from perception_mtl.synthetic.faces.synthetic_face_writer import write_aflw2000_mat

    def about(axis, degrees):  # right-handed rotation about a camera axis (x right, y down, z forward)
        return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()

    nose = np.array([0.0, 0.0, -1.0])
    nose_up = about("x", -20.0)
    assert (nose_up @ nose)[1] < 0  # the nose tip moves up in the image
    turned_then_up = about("x", -30.0) @ about("y", 50.0)  # nose to image-left, then up
    assert (turned_then_up @ nose)[0] < 0 and (turned_then_up @ nose)[1] < 0
    pts = np.random.default_rng(0).uniform(0, 100, (68, 3))
    for name, rot, expected in (("up", nose_up, [0.0, 20.0, 0.0]), ("turn", turned_then_up, [50.0, 30.0, 0.0])):
        pose = matrix_to_euler(rot)
        np.testing.assert_allclose(pose, expected, atol=1e-9)
        write_aflw2000_mat(str(tmp_path / f"{name}.mat"), pose, pts, 10.0)
        para = scipy.io.loadmat(tmp_path / f"{name}.mat")["Pose_Para"][0]
        np.testing.assert_allclose(para[:3], np.deg2rad([expected[1], expected[0], expected[2]]), atol=1e-12)
        assert para[0] > 0  # file pitch: nose up is positive
        np.testing.assert_allclose(FACE_MODEL_AXES @ _rotation_3ddfa(*para[:3]) @ FACE_MODEL_AXES, rot, atol=1e-12)
        record = read_aflw2000_mat(str(tmp_path / f"{name}.mat"))
        np.testing.assert_allclose(record["pose"], expected, atol=1e-4)
        np.testing.assert_allclose(pose_from_pose_para(para), pose, atol=1e-12)
        np.testing.assert_allclose(pose_to_pose_para(pose), para[:3], atol=1e-12)


def test_rendered_nose_up_head_and_its_mat():
    """The synthetic renderer draws a positive pitch nose up, and its .mat carries that pitch positive."""
    from perception_mtl.synthetic.faces.face_renderer import render_head
    from perception_mtl.synthetic.faces.head_model import HeadModel

    head = HeadModel.sample(np.random.default_rng(0))
    canvas = np.zeros((100, 100, 3))
    centre = np.array([50.0, 50.0])
    level = render_head(canvas, head, np.array([0.0, 0.0, 0.0]), centre, 20.0, np.random.default_rng(1))
    up = render_head(canvas, head, np.array([0.0, 25.0, 0.0]), centre, 20.0, np.random.default_rng(1))
    assert up["landmarks"][2, 1] < level["landmarks"][2, 1] - 2.0  # nose tip higher in the image
    assert up["landmarks68"][30, 1] < level["landmarks68"][30, 1] - 2.0
    assert pose_to_pose_para([0.0, 25.0, 0.0])[0] > 0


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
