"""The one Euler convention: against scipy, round trips, and every former caller's matrices unchanged.

The "before" functions below are literal copies of the formulas the three callers used before
the angles had one home (driving's ``rotation_from_euler_zyx(yaw, pitch, roll)``, head pose's
``euler_to_matrix(yaw, pitch, roll)`` / ``matrix_to_euler`` in degrees, the camera's torch
``euler_to_rotation(pitch, yaw, roll)`` / ``rotation_to_euler``), so a change of axis or argument
order in the shared code shows up as a different matrix. Head pose has since moved to AFLW2000's
angles on purpose; its test pins the new matrix to the former formula.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from perception_mtl.structures.head_pose import euler_to_matrix, matrix_to_euler
from perception_mtl.structures.rotations import (
    euler_xyz_to_matrix,
    euler_xyz_to_matrix_torch,
    matrix_to_euler_xyz,
    matrix_to_euler_xyz_torch,
)
from perception_mtl.synthetic.driving.sensor_rig import LIDAR_CHANNEL, SensorRig


def _angles(n: int, seed: int) -> np.ndarray:
    """(n, 3) (angle_x, angle_y, angle_z) radians, angle_y away from the gimbal lock."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.uniform(-np.pi, np.pi, n),
            rng.uniform(-np.pi / 2 + 1e-3, np.pi / 2 - 1e-3, n),
            rng.uniform(-np.pi, np.pi, n),
        ],
        1,
    )


# ------------------------------------------------------------------------- the former implementations


def _driving_before(yaw, pitch, roll):
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def _head_before(yaw, pitch, roll):
    yaw, pitch, roll = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll))
    shape = np.broadcast(yaw, pitch, roll).shape
    rx, ry, rz = (np.zeros((*shape, 3, 3)) for _ in range(3))
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx[..., 0, 0] = 1.0
    rx[..., 1, 1], rx[..., 1, 2], rx[..., 2, 1], rx[..., 2, 2] = cp, -sp, sp, cp
    ry[..., 1, 1] = 1.0
    ry[..., 0, 0], ry[..., 0, 2], ry[..., 2, 0], ry[..., 2, 2] = cy, sy, -sy, cy
    rz[..., 2, 2] = 1.0
    rz[..., 0, 0], rz[..., 0, 1], rz[..., 1, 0], rz[..., 1, 1] = cr, -sr, sr, cr
    return rz @ ry @ rx


def _head_inverse_before(rot):
    cos_yaw = np.hypot(rot[..., 0, 0], rot[..., 1, 0])
    singular = cos_yaw < 1e-9
    yaw = np.arctan2(-rot[..., 2, 0], cos_yaw)
    pitch = np.where(singular, np.arctan2(-rot[..., 1, 2], rot[..., 1, 1]), np.arctan2(rot[..., 2, 1], rot[..., 2, 2]))
    roll = np.where(singular, 0.0, np.arctan2(rot[..., 1, 0], rot[..., 0, 0]))
    return np.rad2deg(np.stack([yaw, pitch, roll], -1))


def _camera_before(pitch, yaw, roll):
    def stack(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    def rx(a):
        c, s, z, o = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
        return stack([[o, z, z], [z, c, -s], [z, s, c]])

    def ry(a):
        c, s, z, o = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
        return stack([[c, z, s], [z, o, z], [-s, z, c]])

    def rz(a):
        c, s, z, o = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
        return stack([[c, -s, z], [s, c, z], [z, z, o]])

    return rz(roll) @ ry(yaw) @ rx(pitch)


def _camera_inverse_before(rot):
    yaw = torch.asin((-rot[..., 2, 0]).clamp(-1.0, 1.0))
    cos_yaw = torch.sqrt(rot[..., 2, 1] ** 2 + rot[..., 2, 2] ** 2)
    regular = cos_yaw > 1e-9
    pitch = torch.where(
        regular, torch.atan2(rot[..., 2, 1], rot[..., 2, 2]), torch.atan2(-rot[..., 1, 2], rot[..., 1, 1])
    )
    roll = torch.where(regular, torch.atan2(rot[..., 1, 0], rot[..., 0, 0]), torch.zeros_like(yaw))
    return torch.stack([pitch, yaw, roll], -1)


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_and_torch_match_scipy_and_round_trip(seed):
    angles = _angles(100, seed)
    expected = Rotation.from_euler("xyz", angles).as_matrix()
    ours = euler_xyz_to_matrix(*angles.T)
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    np.testing.assert_allclose(ours, Rotation.from_euler("ZYX", angles[:, ::-1]).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler_xyz(ours), angles, atol=1e-9)
    ours_t = euler_xyz_to_matrix_torch(*torch.from_numpy(angles).unbind(-1))
    assert ours_t.dtype == torch.float64
    np.testing.assert_allclose(ours_t.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler_xyz_torch(ours_t).numpy(), angles, atol=1e-9)
    # Scalars give one (3, 3) matrix; angles broadcast.
    assert euler_xyz_to_matrix(0.1, 0.2, 0.3).shape == (3, 3)
    assert euler_xyz_to_matrix(angles[:, 0], 0.0, angles[:5, None, 2]).shape == (5, 100, 3, 3)


def test_gimbal_lock_decomposes_into_the_same_rotation():
    rot = euler_xyz_to_matrix(0.3, np.pi / 2, 0.2)
    back = matrix_to_euler_xyz(rot)
    assert back[2] == 0.0 and np.isclose(back[1], np.pi / 2)
    np.testing.assert_allclose(euler_xyz_to_matrix(*back), rot, atol=1e-9)
    back_t = matrix_to_euler_xyz_torch(torch.from_numpy(rot))
    np.testing.assert_allclose(back_t.numpy(), back, atol=1e-12)


def test_torch_version_is_differentiable():
    angles = torch.tensor([[0.3, -0.4, 1.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: euler_xyz_to_matrix_torch(*a.unbind(-1)), (angles,))
    assert torch.autograd.gradcheck(
        lambda a: matrix_to_euler_xyz_torch(euler_xyz_to_matrix_torch(*a.unbind(-1))), (angles,)
    )


def test_driving_callers_get_the_former_matrices():
    for yaw, pitch, roll in _angles(50, 2):
        np.testing.assert_array_equal(euler_xyz_to_matrix(roll, pitch, yaw), _driving_before(yaw, pitch, roll))


def test_sensor_rig_draws_and_composes_the_lidar_mount_as_before():
    """The rig draws yaw, pitch, roll in that order (its seed stream) and composes Rz(yaw) Ry(pitch) Rx(roll)."""
    rig = SensorRig(np.random.default_rng(5))
    replay = np.random.default_rng(5)
    deg = np.pi / 180.0
    yaw = -90.0 * deg + replay.normal(0, 0.3) * deg
    pitch, roll = replay.normal(0, 0.3) * deg, replay.normal(0, 0.3) * deg
    np.testing.assert_array_equal(rig.sensors[LIDAR_CHANNEL].sensor2ego[:3, :3], _driving_before(yaw, pitch, roll))


def test_head_pose_is_the_former_matrix_transposed_with_yaw_and_roll_negated():
    """Head pose left the former ``Rz(roll) Ry(yaw) Rx(pitch)`` (pitch positive = nose down) for AFLW2000's
    ``Rx(-pitch) Ry(yaw) Rz(roll)`` (see ``test_head_pose``), which is that matrix for (-yaw, pitch, -roll),
    transposed: the same shared code, bit for bit."""
    poses = np.rad2deg(_angles(200, 3)[:, [1, 0, 2]])  # (yaw, pitch, roll) degrees, yaw in (-90, 90)
    yaw, pitch, roll = poses.T
    np.testing.assert_array_equal(euler_to_matrix(yaw, pitch, roll), _head_before(-yaw, pitch, -roll).swapaxes(-1, -2))
    rot = euler_to_matrix(yaw, pitch, roll)
    np.testing.assert_array_equal(matrix_to_euler(rot), _head_inverse_before(rot.swapaxes(-1, -2)) * [-1, 1, -1])
    locked = euler_to_matrix(90.0, 20.0, 15.0)
    np.testing.assert_array_equal(matrix_to_euler(locked), _head_inverse_before(locked.T) * [-1, 1, -1])


def test_camera_callers_get_the_former_matrices_and_angles():
    angles = torch.from_numpy(_angles(100, 4))  # (pitch, yaw, roll) = (x, y, z)
    pitch, yaw, roll = angles.unbind(-1)
    rot = euler_xyz_to_matrix_torch(pitch, yaw, roll)
    assert torch.equal(rot, _camera_before(pitch, yaw, roll))
    # The inverse now shares the numpy formula (atan2 of the hypotenuse rather than asin): equal to rounding.
    torch.testing.assert_close(matrix_to_euler_xyz_torch(rot), _camera_inverse_before(rot), rtol=0, atol=1e-12)
    rot32 = rot.float()
    torch.testing.assert_close(matrix_to_euler_xyz_torch(rot32), _camera_inverse_before(rot32), rtol=0, atol=2e-3)
