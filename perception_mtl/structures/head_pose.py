"""Head-pose Euler angles, rotation matrices and the horizontal-flip rules of face annotations.

Convention: the angles of 300W-LP / AFLW2000-3D ``Pose_Para`` (3DDFA's fits), which the Hopenet
family (and MOS) train on and are scored against. Angles in degrees, ordered ``(yaw, pitch, roll)``
in our arrays; head and camera frames are both x right, y down, z forward (away from the camera,
OpenCV camera axes), a frontal face (R = I) looks at the camera with its nose along -z, and

    R = Rx(-pitch) @ Ry(yaw) @ Rz(roll)        (head frame -> camera frame)

with the right-handed elementary rotations of :mod:`perception_mtl.structures.rotations`. This is
scipy's intrinsic ``Rotation.from_euler("XYZ", [-pitch, yaw, roll], degrees=True)``. Signs: a
positive yaw moves the nose tip toward image-left, a positive pitch moves it up (the face looks
up), and a positive roll turns the face clockwise on screen (the image-right eye moves down).

Where it comes from: 3DDFA's ``RotationMatrix(phi, gamma, theta)`` for ``Pose_Para = [phi, gamma,
theta, tx, ty, tz, f]`` = [pitch, yaw, roll, ...] is ``R_x R_y R_z`` with transposed (left-handed)
elementary matrices, i.e. ``Rx(-pitch) Ry(-yaw) Rz(-roll)``, acting in the face model's frame
(x right, y up, z toward the viewer); image points are ``f R S + t`` with y then flipped
(``height + 1 - y``). Our axes are that frame conjugated by ``C = diag(1, -1, -1)`` (a half turn
about x), which keeps ``Rx`` and negates the angles of ``Ry`` and ``Rz``: ``C R C`` is the matrix
above. Hopenet's ``draw_axis`` (its yaw negation included) draws the columns of the same matrix in
image pixels. Relative to the package's one Euler order (``rotations``: ``Rz Ry Rx`` about fixed
axes), ``R.T = Rz(-roll) Ry(-yaw) Rx(pitch)``, so the functions below go through it by
transposition.

Files convert at their boundary: :func:`pose_from_pose_para` / :func:`pose_to_pose_para` for the
angles (the same numbers: radians and the ``[pitch, yaw, roll]`` order there), and
:data:`FACE_MODEL_AXES` for 3D points (``pt3d_68``'s third row is height toward the viewer, i.e.
minus our depth).

A horizontal image flip is the reflection ``M = diag(-1, 1, 1)``, and ``M R M`` negates yaw and
roll and keeps pitch (``M Rx M = Rx``, ``M Ry(a) M = Ry(-a)``, ``M Rz(a) M = Rz(-a)``). The five
RetinaFace landmarks are ordered (left eye, right eye, nose, left mouth corner, right mouth
corner), "left" meaning image-left in a frontal view, so a flip also swaps the left and right
entries.
"""

from __future__ import annotations

import numpy as np

from perception_mtl.structures.rotations import euler_xyz_to_matrix, matrix_to_euler_xyz

FIVE_POINT_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
FIVE_POINT_FLIP_ORDER = (1, 0, 2, 4, 3)
"""Index map of a horizontal flip: flipped[i] = original[FIVE_POINT_FLIP_ORDER[i]] (x mirrored)."""

FACE_MODEL_AXES = np.diag([1.0, -1.0, -1.0])
"""Our camera axes (x right, y down, z forward) <-> 3DDFA's face-model axes (x right, y up, z toward
the viewer); its own inverse. A rotation maps as ``C R C``, a point as ``C p``."""


def euler_to_matrix(yaw, pitch, roll) -> np.ndarray:
    """Rotation matrices from head-pose Euler angles in degrees (scalars or broadcastable arrays).

    Returns:
        (..., 3, 3) float64 ``Rx(-pitch) @ Ry(yaw) @ Rz(roll)`` (head frame -> camera frame).
    """
    pitch, yaw, roll = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (pitch, yaw, roll))
    return np.swapaxes(euler_xyz_to_matrix(pitch, -yaw, -roll), -1, -2)


def matrix_to_euler(rot) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix`: (..., 3, 3) rotations -> (..., 3) ``(yaw, pitch, roll)`` degrees.

    Yaw is returned in [-90, 90] (the branch with cos(yaw) >= 0); at the gimbal lock
    (|yaw| = 90) roll is set to 0 and pitch carries the remaining rotation.
    """
    transposed = np.swapaxes(np.asarray(rot, dtype=np.float64), -1, -2)
    pitch, neg_yaw, neg_roll = np.moveaxis(np.rad2deg(matrix_to_euler_xyz(transposed)), -1, 0)
    return np.stack([-neg_yaw, pitch, -neg_roll], -1) + 0.0  # + 0.0: no -0.0


def pose_from_pose_para(pose_para) -> np.ndarray:
    """AFLW2000 / 300W-LP ``Pose_Para`` (..., >= 3) ``[pitch, yaw, roll (radians), ...]`` -> (..., 3)
    ``(yaw, pitch, roll)`` degrees of this module (the same angles, reordered and in degrees)."""
    para = np.asarray(pose_para, dtype=np.float64)
    pitch, yaw, roll = np.moveaxis(np.rad2deg(para[..., :3]), -1, 0)
    return np.stack([yaw, pitch, roll], -1)


def pose_to_pose_para(pose) -> np.ndarray:
    """Inverse of :func:`pose_from_pose_para`: (..., 3) ``(yaw, pitch, roll)`` degrees -> (..., 3)
    ``[pitch, yaw, roll]`` radians, the first three ``Pose_Para`` values."""
    yaw, pitch, roll = np.moveaxis(np.deg2rad(np.asarray(pose, dtype=np.float64)), -1, 0)
    return np.stack([pitch, yaw, roll], -1)


def flip_pose(poses) -> np.ndarray:
    """(..., 3) ``(yaw, pitch, roll)`` after a horizontal image flip: yaw and roll negated."""
    poses = np.asarray(poses, dtype=np.float64)
    return poses * np.array([-1.0, 1.0, -1.0])


def flip_landmarks(landmarks, width: float) -> np.ndarray:
    """(..., 5, 2) five-point landmarks (x, y pixels) after a horizontal flip of an image ``width`` wide.

    Pixel coordinates are continuous (the image spans [0, width]), so x maps to ``width - x``, and
    left/right points swap (:data:`FIVE_POINT_FLIP_ORDER`).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape[-2:] != (5, 2):
        raise ValueError(f"flip_landmarks: expected (..., 5, 2) landmarks, got {landmarks.shape}")
    flipped = landmarks[..., list(FIVE_POINT_FLIP_ORDER), :].copy()
    flipped[..., 0] = width - flipped[..., 0]
    return flipped


def flip_boxes(boxes, width: float) -> np.ndarray:
    """(..., 4) ``(x1, y1, x2, y2)`` boxes after a horizontal flip of an image ``width`` wide."""
    boxes = np.asarray(boxes, dtype=np.float64)
    flipped = boxes.copy()
    flipped[..., 0] = width - boxes[..., 2]
    flipped[..., 2] = width - boxes[..., 0]
    return flipped
