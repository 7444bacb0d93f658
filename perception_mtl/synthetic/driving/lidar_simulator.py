"""A 32-beam spinning LiDAR (Velodyne HDL-32E, as on the nuScenes car), simulated by ray casting.

Beams span -30.67 deg to +10.67 deg in elevation (1.33 deg apart), 1084 azimuth steps per turn.
Each return gets Gaussian range noise; returns drop out at random, more often at grazing incidence,
on dark surfaces and at long range; intensity depends on the surface reflectivity (retro-reflective
road paint is bright), the incidence angle and the range. Points are expressed in the LIDAR_TOP
frame as nuScenes stores them: (x, y, z, intensity, ring index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import box_corners, wrap_angle
from .ground_raster import MATERIAL_REFLECTIVITY, GroundRaster
from .primitive_set import PrimitiveSet
from .ray_caster import cast_rays


@dataclass
class LidarScan:
    """One sweep.

    Attributes:
        points: (N, 5) float32 (x, y, z, intensity, ring) in the sensor frame.
        origin: (3,) sensor position (global frame).
        directions: (N, 3) global unit directions of the returned rays.
        ranges: (N,) measured ranges (m).
        owners: (N,) actor index of the surface hit, -1 static structure, -2 ground.
    """

    points: np.ndarray
    origin: np.ndarray
    directions: np.ndarray
    ranges: np.ndarray
    owners: np.ndarray


class LidarSimulator:
    """Ray-casting LiDAR model.

    Args:
        num_beams: vertical channels.
        num_azimuth: azimuth steps per turn.
        elevation_range: (lowest, highest) beam elevation (deg).
        max_range: farthest return (m).
        min_range: nearest return (m).
        range_noise: standard deviation of the range noise (m).
        dropout: base probability that a return is lost.
    """

    def __init__(
        self,
        num_beams: int = 32,
        num_azimuth: int = 1084,
        elevation_range: tuple[float, float] = (-30.67, 10.67),
        max_range: float = 80.0,
        min_range: float = 1.0,
        range_noise: float = 0.02,
        dropout: float = 0.04,
    ) -> None:
        self.num_beams, self.num_azimuth = num_beams, num_azimuth
        self.elevations = np.deg2rad(np.linspace(elevation_range[0], elevation_range[1], num_beams))
        self.max_range, self.min_range = max_range, min_range
        self.range_noise, self.dropout = range_noise, dropout
        self.az_step = 2.0 * np.pi / num_azimuth

    def scan(
        self, sensor2global: np.ndarray, prims: PrimitiveSet, ground: GroundRaster, rng: np.random.Generator
    ) -> LidarScan:
        """Casts one full turn.

        Args:
            sensor2global: (4, 4) pose of the LiDAR (LIDAR_TOP frame -> global).
            prims: the boxes of the world at the sweep time.
            ground: ground materials.
            rng: noise generator.
        """
        rot, origin = sensor2global[:3, :3], sensor2global[:3, 3]
        az0 = float(rng.uniform(0.0, self.az_step))
        az = az0 + self.az_step * np.arange(self.num_azimuth)
        el = self.elevations
        dirs_sensor = np.stack(
            [
                np.cos(el)[:, None] * np.cos(az)[None],
                np.cos(el)[:, None] * np.sin(az)[None],
                np.broadcast_to(np.sin(el)[:, None], (len(el), len(az))),
            ],
            -1,
        ).reshape(-1, 3)
        dirs = dirs_sensor @ rot.T
        prims = prims.within(origin, self.max_range)
        pair_ray, pair_box = self._candidate_pairs(rot, origin, prims, az0)
        hits = cast_rays(origin, dirs, prims, pair_ray, pair_box, self.max_range)

        valid = np.isfinite(hits.distance) & (hits.distance >= self.min_range)
        cos_inc = np.abs(np.einsum("ij,ij->i", hits.normal, dirs))
        hit_xy = origin[None, :2] + hits.distance[:, None] * dirs[:, :2]
        refl = np.where(hits.ground, 0.0, prims.reflectivity[np.maximum(hits.box, 0)] if len(prims) else 0.0)
        ground_idx = np.flatnonzero(valid & hits.ground)
        refl[ground_idx] = MATERIAL_REFLECTIVITY[ground.lookup(hit_xy[ground_idx, 0], hit_xy[ground_idx, 1])]
        rel_range = np.where(valid, hits.distance, 0.0) / self.max_range
        p_drop = self.dropout + 0.5 * (1.0 - cos_inc) ** 4 + 0.15 * rel_range**2 + np.where(refl < 8.0, 0.08, 0.0)
        keep = valid & (rng.random(len(dirs)) >= p_drop)

        idx = np.flatnonzero(keep)
        ranges = hits.distance[idx] + rng.normal(0.0, self.range_noise, len(idx))
        intensity = refl[idx] * (0.35 + 0.65 * cos_inc[idx]) * (1.0 - 0.4 * rel_range[idx])
        intensity = np.clip(intensity * np.exp(rng.normal(0.0, 0.15, len(idx))), 0.0, 255.0).round()
        xyz = dirs_sensor[idx] * ranges[:, None]
        ring = (idx // self.num_azimuth).astype(np.float64)
        points = np.concatenate([xyz, intensity[:, None], ring[:, None]], axis=1).astype(np.float32)
        box = hits.box[idx]
        owners = np.where(hits.ground[idx], -2, prims.owners[np.maximum(box, 0)] if len(prims) else -2)
        return LidarScan(points, origin.copy(), dirs[idx], ranges, owners)

    def _candidate_pairs(self, rot: np.ndarray, origin: np.ndarray, prims: PrimitiveSet, az0: float):
        """(ray, box) pairs whose ray lies in the box's azimuth and elevation window."""
        if len(prims) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        corners = box_corners(prims.centers, 2.0 * prims.half_sizes, prims.yaws)  # (B, 8, 3)
        local = (corners - origin) @ rot  # sensor frame
        corner_az = np.arctan2(local[..., 1], local[..., 0])
        center = (prims.centers - origin) @ rot
        center_az = np.arctan2(center[:, 1], center[:, 0])
        rel = wrap_angle(corner_az - center_az[:, None])
        margin = self.az_step + np.deg2rad(0.5)
        az_lo = center_az + rel.min(1) - margin
        az_hi = center_az + rel.max(1) + margin
        k_lo = np.floor((az_lo - az0) / self.az_step).astype(np.int64)
        k_hi = np.ceil((az_hi - az0) / self.az_step).astype(np.int64)

        # Elevation window from the nearest/farthest horizontal distance to the footprint.
        c, s = np.cos(prims.yaws), np.sin(prims.yaws)
        d = origin[:2] - prims.centers[:, :2]
        lx, ly = np.abs(c * d[:, 0] + s * d[:, 1]), np.abs(-s * d[:, 0] + c * d[:, 1])
        hx, hy = prims.half_sizes[:, 0], prims.half_sizes[:, 1]
        d_min = np.maximum(np.hypot(np.maximum(lx - hx, 0.0), np.maximum(ly - hy, 0.0)), 0.05)
        d_max = np.hypot(lx + hx, ly + hy)
        z_top = prims.centers[:, 2] + prims.half_sizes[:, 2] - origin[2]
        z_bot = prims.centers[:, 2] - prims.half_sizes[:, 2] - origin[2]
        el_hi = np.arctan2(z_top, np.where(z_top > 0, d_min, d_max))
        el_lo = np.arctan2(z_bot, np.where(z_bot < 0, d_min, d_max))
        tilt = np.deg2rad(1.5)
        b_lo = np.searchsorted(self.elevations, el_lo - tilt)
        b_hi = np.searchsorted(self.elevations, el_hi + tilt, side="right")

        rays, boxes = [], []
        for i in np.flatnonzero((b_hi > b_lo) & (k_hi >= k_lo)):
            cols = np.arange(k_lo[i], k_hi[i] + 1) % self.num_azimuth
            ids = (np.arange(b_lo[i], b_hi[i]) * self.num_azimuth)[:, None] + cols[None]
            rays.append(ids.ravel())
            boxes.append(np.full(ids.size, i, dtype=np.int64))
        if not rays:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rays), np.concatenate(boxes)
