"""Vectorised ray casting against the ground plane z = 0 and z-rotated boxes.

Both sensors cast many rays from one origin. Testing every ray against every box is too slow,
so the caller passes candidate (ray, box) pairs (rays in a box's azimuth/elevation window for the
LiDAR, pixels in a box's projected rectangle for a camera); each pair gets a slab test in the
box's own frame and each ray keeps its nearest hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitive_set import PrimitiveSet


@dataclass
class RayHits:
    """Nearest hit per ray.

    Attributes:
        distance: (R,) distance along the (unit) ray to the nearest hit (m); inf for none.
        box: (R,) index of the hit box in the primitive set, -1 for the ground or no hit.
        ground: (R,) True where the ground is the nearest hit.
        normal: (R, 3) unit surface normal at the hit (global frame); (0, 0, 1) for the ground.
        local_point: (R, 3) hit point in the hit box's frame (zeros for ground/no hit).
        pair_distance: (K,) hit distance of every candidate (ray, box) pair, inf where the ray misses.
    """

    distance: np.ndarray
    box: np.ndarray
    ground: np.ndarray
    normal: np.ndarray
    local_point: np.ndarray
    pair_distance: np.ndarray


def cast_rays(
    origin: np.ndarray,
    directions: np.ndarray,
    prims: PrimitiveSet,
    pair_ray: np.ndarray,
    pair_box: np.ndarray,
    max_distance: float = np.inf,
) -> RayHits:
    """Casts rays from one origin.

    Args:
        origin: (3,) ray origin (global frame).
        directions: (R, 3) unit ray directions (global frame).
        prims: the boxes.
        pair_ray: (K,) ray index of each candidate pair.
        pair_box: (K,) box index of each candidate pair.
        max_distance: hits beyond this are ignored.

    Returns:
        The nearest hit of each ray among its candidate boxes and the ground.
    """
    num_rays = len(directions)
    origin = np.asarray(origin, dtype=np.float64)
    dirs = np.asarray(directions)

    # Ground plane z = 0, hit from above only.
    dz = dirs[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dz < -1e-9, -origin[2] / dz, np.inf)
    t_ground[t_ground > max_distance] = np.inf

    best = t_ground.copy()
    box = np.full(num_rays, -1, dtype=np.int64)
    normal = np.zeros((num_rays, 3), dtype=np.float32)
    normal[:, 2] = 1.0
    local = np.zeros((num_rays, 3), dtype=np.float32)
    t = np.zeros(0)
    if len(pair_ray):
        t, axis, sign, local_o, local_d = _slab_test(origin, dirs, prims, pair_ray, pair_box)
        t[t > max_distance] = np.inf
        finite = np.flatnonzero(np.isfinite(t))  # most pairs miss: reduce only the hits
        np.minimum.at(best, pair_ray[finite], t[finite])
        win = finite[t[finite] <= best[pair_ray[finite]]]
        # One winning pair per ray (on exact ties, e.g. shared faces, the later pair).
        winner = np.full(num_rays, -1, dtype=np.int64)
        winner[pair_ray[win]] = win
        rays = np.flatnonzero(winner >= 0)
        idx = winner[rays]
        box[rays] = pair_box[idx]
        yaw = prims.yaws[pair_box[idx]]
        n_local = np.zeros((len(idx), 3))
        n_local[np.arange(len(idx)), axis[idx]] = sign[idx]
        c, s = np.cos(yaw), np.sin(yaw)
        normal[rays] = np.stack(
            [c * n_local[:, 0] - s * n_local[:, 1], s * n_local[:, 0] + c * n_local[:, 1], n_local[:, 2]], -1
        )
        local[rays] = local_o[idx] + t[idx, None] * local_d[idx]
    ground = (box < 0) & np.isfinite(best)
    return RayHits(best, box, ground, normal, local, t)


def _slab_test(origin, dirs, prims: PrimitiveSet, pair_ray, pair_box):
    """Entry distance, entry face axis/sign and local ray of every (ray, box) pair (inf if missed).

    Works per axis on flat float32 arrays: the pair count is large and numpy is memory-bound here.
    """
    yaw = prims.yaws
    cos_b, sin_b = np.cos(yaw), np.sin(yaw)
    rel = origin[None] - prims.centers
    local_origin = np.stack(
        [cos_b * rel[:, 0] + sin_b * rel[:, 1], -sin_b * rel[:, 0] + cos_b * rel[:, 1], rel[:, 2]], -1
    )
    c = cos_b.astype(np.float32)[pair_box]
    s = sin_b.astype(np.float32)[pair_box]
    d = dirs.astype(np.float32)[pair_ray]
    ld = (c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2])
    lo = local_origin.astype(np.float32)[pair_box]
    half = prims.half_sizes.astype(np.float32)[pair_box]
    near = np.full(len(pair_box), -np.inf, dtype=np.float32)
    far = np.full(len(pair_box), np.inf, dtype=np.float32)
    axis = np.zeros(len(pair_box), dtype=np.int8)
    for k in range(3):
        dk = ld[k]
        inv = 1.0 / np.where(np.abs(dk) < 1e-9, np.float32(1e-9), dk)
        t1 = (-half[:, k] - lo[:, k]) * inv
        t2 = (half[:, k] - lo[:, k]) * inv
        enter = np.minimum(t1, t2)
        better = enter > near
        axis[better] = k
        np.maximum(near, enter, out=near)
        np.minimum(far, np.maximum(t1, t2), out=far)
    hit = (near <= far) & (near > 1e-6)
    t = np.where(hit, near, np.inf).astype(np.float64)
    ld = np.stack(ld, -1)
    sign = -np.sign(ld[np.arange(len(axis)), axis])
    return t, axis.astype(np.int64), sign, lo, ld
