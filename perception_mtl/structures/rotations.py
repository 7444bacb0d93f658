"""Euler angles: the one convention of the package, in numpy (float64) and torch (differentiable).

Convention: three angles ``(angle_x, angle_y, angle_z)`` in radians about the x, y and z axes of
a right-handed frame, applied about the fixed axes in the order x, then y, then z:

    R = Rz(angle_z) @ Ry(angle_y) @ Rx(angle_x)

with the right-handed elementary rotations ``Rx(a) = [[1, 0, 0], [0, c, -s], [0, s, c]]``,
``Ry(a) = [[c, 0, s], [0, 1, 0], [-s, 0, c]]`` and ``Rz(a) = [[c, -s, 0], [s, c, 0], [0, 0, 1]]``.
This is ``scipy.spatial.transform.Rotation.from_euler("xyz", [angle_x, angle_y, angle_z])`` (lower
case: extrinsic), the same matrix as the intrinsic z-y'-x'' sequence ``from_euler("ZYX", [angle_z,
angle_y, angle_x])``. ``R`` maps vectors of the rotated (body) frame into the reference frame.

Every caller composes its angles in this order; they differ only in which axis they call what:

- driving (nuScenes frames, z up, x forward): yaw about z, pitch about y, roll about x, so
  ``euler_xyz_to_matrix(roll, pitch, yaw)`` (the sensor rig of the synthetic nuScenes set);
- cameras (OpenCV frames, x right, y down, z forward): pitch about x, yaw about y, roll about z,
  so ``euler_xyz_to_matrix(pitch, yaw, roll)`` (camera pitch in
  :mod:`perception_mtl.structures.camera_geometry`).

Head pose (:mod:`perception_mtl.structures.head_pose`, degrees) keeps the angles of AFLW2000 /
300W-LP, whose matrix is the transpose of this order with yaw and roll negated:
``euler_xyz_to_matrix(pitch, -yaw, -roll).T = Rx(-pitch) Ry(yaw) Rz(roll)``.

The inverse returns ``angle_y`` in [-pi/2, pi/2] (the branch with cos(angle_y) >= 0); at the gimbal
lock (|angle_y| = pi/2) ``angle_z`` is set to 0 and ``angle_x`` carries the remaining rotation.

Hand-written rather than scipy's ``Rotation``: scipy goes through quaternions (the matrices differ
in the last bits from the direct product, which the data generators' golden outputs would see),
is not batched over arbitrary broadcast shapes, and has no torch (autograd) version.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# ----------------------------------------------------------------------------------------- numpy


def euler_xyz_to_matrix(angle_x, angle_y, angle_z) -> np.ndarray:
    """Rotation matrices ``Rz(angle_z) @ Ry(angle_y) @ Rx(angle_x)`` (see the module docstring).

    Args:
        angle_x: rotation about x in radians; a scalar or an array.
        angle_y: rotation about y in radians; broadcastable with ``angle_x``.
        angle_z: rotation about z in radians; broadcastable with the others.

    Returns:
        (..., 3, 3) float64 rotations, ``...`` the broadcast shape of the angles ((3, 3) for scalars).
    """
    ax, ay, az = (np.asarray(a, dtype=np.float64) for a in (angle_x, angle_y, angle_z))
    shape = np.broadcast(ax, ay, az).shape
    rx, ry, rz = (np.zeros((*shape, 3, 3)) for _ in range(3))
    cx, sx = np.cos(ax), np.sin(ax)
    cy, sy = np.cos(ay), np.sin(ay)
    cz, sz = np.cos(az), np.sin(az)
    rx[..., 0, 0] = 1.0
    rx[..., 1, 1], rx[..., 1, 2], rx[..., 2, 1], rx[..., 2, 2] = cx, -sx, sx, cx
    ry[..., 1, 1] = 1.0
    ry[..., 0, 0], ry[..., 0, 2], ry[..., 2, 0], ry[..., 2, 2] = cy, sy, -sy, cy
    rz[..., 2, 2] = 1.0
    rz[..., 0, 0], rz[..., 0, 1], rz[..., 1, 0], rz[..., 1, 1] = cz, -sz, sz, cz
    return rz @ ry @ rx


def matrix_to_euler_xyz(rot) -> np.ndarray:
    """Inverse of :func:`euler_xyz_to_matrix`: (..., 3, 3) rotations -> (..., 3) ``(angle_x, angle_y, angle_z)``.

    Radians, float64; ``angle_y`` in [-pi/2, pi/2], ``angle_z = 0`` at the gimbal lock.
    """
    # R = Rz Ry Rx: R[2, 0] = -sin(y), R[2, 1] = cos(y) sin(x), R[2, 2] = cos(y) cos(x),
    # R[1, 0] = cos(y) sin(z), R[0, 0] = cos(y) cos(z).
    rot = np.asarray(rot, dtype=np.float64)
    cos_y = np.hypot(rot[..., 0, 0], rot[..., 1, 0])
    singular = cos_y < 1e-9
    angle_y = np.arctan2(-rot[..., 2, 0], cos_y)
    angle_x = np.where(
        singular, np.arctan2(-rot[..., 1, 2], rot[..., 1, 1]), np.arctan2(rot[..., 2, 1], rot[..., 2, 2])
    )
    angle_z = np.where(singular, 0.0, np.arctan2(rot[..., 1, 0], rot[..., 0, 0]))
    return np.stack([angle_x, angle_y, angle_z], -1)


# ----------------------------------------------------------------------------------------- torch


def _elementary_torch(cos: Tensor, sin: Tensor, axis: int) -> Tensor:
    """(...,) cosines and sines -> (..., 3, 3) right-handed rotations about ``axis`` (0, 1, 2 = x, y, z)."""
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    if axis == 0:
        rows = [[one, zero, zero], [zero, cos, -sin], [zero, sin, cos]]
    elif axis == 1:
        rows = [[cos, zero, sin], [zero, one, zero], [-sin, zero, cos]]
    else:
        rows = [[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def euler_xyz_to_matrix_torch(angle_x: Tensor, angle_y: Tensor, angle_z: Tensor) -> Tensor:
    """Torch version of :func:`euler_xyz_to_matrix`: (...,) radians -> (..., 3, 3) in the angles' dtype.

    Differentiable; the three angles must have the same shape.
    """
    rot = [_elementary_torch(torch.cos(a), torch.sin(a), axis) for axis, a in enumerate((angle_x, angle_y, angle_z))]
    return rot[2] @ rot[1] @ rot[0]


def matrix_to_euler_xyz_torch(rot: Tensor) -> Tensor:
    """Torch version of :func:`matrix_to_euler_xyz`: (..., 3, 3) -> (..., 3) ``(angle_x, angle_y, angle_z)`` radians."""
    cos_y = torch.hypot(rot[..., 0, 0], rot[..., 1, 0])
    regular = cos_y >= 1e-9
    angle_y = torch.atan2(-rot[..., 2, 0], cos_y)
    angle_x = torch.where(
        regular, torch.atan2(rot[..., 2, 1], rot[..., 2, 2]), torch.atan2(-rot[..., 1, 2], rot[..., 1, 1])
    )
    angle_z = torch.where(regular, torch.atan2(rot[..., 1, 0], rot[..., 0, 0]), torch.zeros_like(angle_y))
    return torch.stack([angle_x, angle_y, angle_z], -1)
