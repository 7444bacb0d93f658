"""Small rigid-geometry helpers shared by the synthetic world, its sensors and the writers.

Frames follow nuScenes: right-handed, z up; yaw is measured counter-clockwise from +x about +z.
Quaternions are (w, x, y, z) lists as in the nuScenes tables. Euler angles have one home,
:mod:`perception_mtl.structures.rotations` (yaw, pitch, roll here = ``euler_xyz_to_matrix(roll, pitch, yaw)``).
"""

from __future__ import annotations

import numpy as np


def yaw_to_quaternion(yaw: float) -> list[float]:
    """Rotation about +z by ``yaw`` (rad) as a (w, x, y, z) quaternion."""
    return [float(np.cos(yaw / 2.0)), 0.0, 0.0, float(np.sin(yaw / 2.0))]


def rotation_z(yaw: float | np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices about +z."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    zeros, ones = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, zeros], -1), np.stack([s, c, zeros], -1), np.stack([zeros, zeros, ones], -1)], -2)


def matrix_to_quaternion(rotation: np.ndarray) -> list[float]:
    """(3, 3) rotation matrix -> (w, x, y, z) quaternion with w >= 0."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0.0:
        s = np.sqrt(trace + 1.0) * 2.0
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2.0
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2.0
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2.0
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return [float(v) for v in q]


def quaternion_to_matrix(quaternion: list[float] | np.ndarray) -> np.ndarray:
    """(w, x, y, z) quaternion -> (3, 3) rotation matrix."""
    w, x, y, z = np.asarray(quaternion, dtype=np.float64) / np.linalg.norm(quaternion)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def make_transform(rotation: np.ndarray, translation: np.ndarray | list[float]) -> np.ndarray:
    """(4, 4) homogeneous transform from a (3, 3) rotation and a (3,) translation."""
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(translation, dtype=np.float64)
    return transform


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform."""
    inverse = np.eye(4)
    inverse[:3, :3] = transform[:3, :3].T
    inverse[:3, 3] = -transform[:3, :3].T @ transform[:3, 3]
    return inverse


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Wraps angles (rad) to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def box_corners(centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Corners of z-rotated boxes.

    Args:
        centers: (N, 3) box centres (geometric centre, not bottom).
        sizes: (N, 3) extents (l, w, h): l along the heading, w across it, h up.
        yaws: (N,) heading about +z (rad).

    Returns:
        (N, 8, 3) corners in the frame of ``centers``: bottom face first (counter-clockwise from
        front-left when seen from above), then the top face in the same order.
    """
    signs = np.array(
        [[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1], [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]],
        dtype=np.float64,
    )
    local = signs[None] * (np.asarray(sizes, dtype=np.float64)[:, None, :] / 2.0)
    rot = rotation_z(np.asarray(yaws, dtype=np.float64))  # (N, 3, 3)
    return np.einsum("nij,nkj->nki", rot, local) + np.asarray(centers, dtype=np.float64)[:, None, :]


def footprints_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Pairwise overlap of oriented 2D rectangles (separating-axis test).

    Args:
        a: (N, 5) rectangles (x, y, l, w, yaw).
        b: (M, 5) rectangles (x, y, l, w, yaw).
        margin: extra clearance (m) added to every half-extent.

    Returns:
        (N, M) bool, True where the rectangles (grown by ``margin``) intersect.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=bool)

    def axes_of(r: np.ndarray) -> np.ndarray:
        c, s = np.cos(r[:, 4]), np.sin(r[:, 4])
        return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], 1)  # (K, 2 axes, 2)

    axes_a, axes_b = axes_of(a)[:, None], axes_of(b)[None]  # (N, 1, 2, 2), (1, M, 2, 2)
    half_a, half_b = a[:, None, 2:4] / 2.0 + margin, b[None, :, 2:4] / 2.0 + margin  # (N, 1, 2), (1, M, 2)
    delta = b[None, :, :2] - a[:, None, :2]  # (N, M, 2)
    candidate_axes = np.concatenate(np.broadcast_arrays(axes_a, axes_b), axis=2)  # (N, M, 4, 2)
    dist = np.abs(np.einsum("nmkj,nmj->nmk", candidate_axes, delta))
    shape = delta.shape[:2] + (2, 2)
    dots_a = np.abs(np.einsum("nmkj,nmij->nmki", candidate_axes, np.broadcast_to(axes_a, shape)))
    dots_b = np.abs(np.einsum("nmkj,nmij->nmki", candidate_axes, np.broadcast_to(axes_b, shape)))
    radius = np.einsum("nmki,nmi->nmk", dots_a, np.broadcast_to(half_a, delta.shape))
    radius += np.einsum("nmki,nmi->nmk", dots_b, np.broadcast_to(half_b, delta.shape))
    return ~np.any(dist > radius, axis=-1)


def points_in_boxes(points: np.ndarray, centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Which points lie in which z-rotated boxes (boundary inclusive, as nuScenes' ``points_in_box``).

    Args:
        points: (P, 3) points in the boxes' frame.
        centers: (N, 3) geometric box centres.
        sizes: (N, 3) (l, w, h).
        yaws: (N,) headings (rad).

    Returns:
        (P, N) bool.
    """
    points = np.asarray(points, dtype=np.float64)
    rel = points[:, None, :] - np.asarray(centers, dtype=np.float64)[None]  # (P, N, 3)
    c, s = np.cos(yaws)[None], np.sin(yaws)[None]
    local_x = rel[..., 0] * c + rel[..., 1] * s
    local_y = -rel[..., 0] * s + rel[..., 1] * c
    half = np.asarray(sizes, dtype=np.float64)[None] / 2.0
    return (np.abs(local_x) <= half[..., 0]) & (np.abs(local_y) <= half[..., 1]) & (np.abs(rel[..., 2]) <= half[..., 2])


def footprints_overlap_paired(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Element-wise overlap of oriented 2D rectangles ``a[k]`` and ``b[k]`` (separating-axis test).

    Args:
        a: (K, 5) rectangles (x, y, l, w, yaw).
        b: (K, 5) rectangles (x, y, l, w, yaw).
        margin: extra clearance (m) added to every half-extent.

    Returns:
        (K,) bool.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    ca, sa, cb, sb = np.cos(a[:, 4]), np.sin(a[:, 4]), np.cos(b[:, 4]), np.sin(b[:, 4])
    axes = np.stack(
        [np.stack([ca, sa], -1), np.stack([-sa, ca], -1), np.stack([cb, sb], -1), np.stack([-sb, cb], -1)], 1
    )
    half_a, half_b = a[:, 2:4] / 2.0 + margin, b[:, 2:4] / 2.0 + margin
    delta = b[:, :2] - a[:, :2]
    dist = np.abs(np.einsum("kaj,kj->ka", axes, delta))
    dots_a = np.abs(np.einsum("kaj,kij->kai", axes, axes[:, :2]))
    dots_b = np.abs(np.einsum("kaj,kij->kai", axes, axes[:, 2:]))
    radius = np.einsum("kai,ki->ka", dots_a, half_a) + np.einsum("kai,ki->ka", dots_b, half_b)
    return ~np.any(dist > radius, axis=-1)
