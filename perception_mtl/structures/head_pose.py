"""Head-pose Euler angles, rotation matrices and the horizontal-flip rules of face annotations.

Convention (the one of 300W-LP / AFLW2000 and the Hopenet family): angles in degrees, ordered
``(yaw, pitch, roll)`` in our arrays, with

    R = Rz(roll) @ Ry(yaw) @ Rx(pitch),

i.e. pitch about x, yaw about y and roll about z, applied in that order about fixed axes. This is
``scipy.spatial.transform.Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True)``
(lower-case ``xyz`` = extrinsic). ``R`` maps head-frame vectors to camera-frame vectors; both
frames are x right, y down, z forward (away from the camera, OpenCV camera axes), and a frontal
face (R = I) looks at the camera, its nose pointing along -z. With this convention a positive yaw
moves the nose tip toward image-left and a positive roll turns the face clockwise on screen
(the image-right eye moves down); a positive pitch moves the nose tip down.

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


def euler_to_matrix(yaw, pitch, roll) -> np.ndarray:
    """Rotation matrices from head-pose Euler angles in degrees (scalars or broadcastable arrays).

    The package's one Euler convention (:func:`perception_mtl.structures.rotations.euler_xyz_to_matrix`)
    with pitch about x, yaw about y and roll about z; only the argument order (that of the pose
    arrays) and the unit (degrees) are head-pose specific.

    Returns:
        (..., 3, 3) float64 ``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (head frame -> camera frame).
    """
    pitch, yaw, roll = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (pitch, yaw, roll))
    return euler_xyz_to_matrix(pitch, yaw, roll)


def matrix_to_euler(rot) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix`: (..., 3, 3) rotations -> (..., 3) ``(yaw, pitch, roll)`` degrees.

    Yaw is returned in [-90, 90] (the branch with cos(yaw) >= 0); at the gimbal lock
    (|yaw| = 90) roll is set to 0 and pitch carries the remaining rotation.
    """
    pitch_yaw_roll = np.rad2deg(matrix_to_euler_xyz(rot))
    return pitch_yaw_roll[..., [1, 0, 2]]


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
