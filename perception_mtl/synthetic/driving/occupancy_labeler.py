"""Occ3D-nuScenes occupancy labels of the synthetic world.

Grid (Occ3D-nuScenes): ego frame of the LiDAR key frame, x in [-40, 40], y in [-40, 40],
z in [-1, 5.4] m, 0.4 m voxels, array index ``[ix, iy, iz]`` with voxel centre
``(-40 + 0.4 (ix + 0.5), -40 + 0.4 (iy + 0.5), -1 + 0.4 (iz + 0.5))``, shape (200, 200, 16).

* ``semantics`` (uint8): 0..16 as nuScenes-lidarseg (see ``OCC_CLASS_NAMES``), 17 = free. The ground
  layer (the voxels holding z = 0) takes the map material class (driveable surface, sidewalk,
  terrain); every voxel that a box of the scene overlaps takes that box's class (actors' parts
  override static structures).
* ``mask_lidar`` (uint8 0/1): voxels the key-frame LiDAR observed: crossed by a ray or holding a return.
* ``mask_camera`` (uint8 0/1): voxels some camera sees: in its image and not behind the visible
  surface of the pixel they project to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import box_corners
from .ground_raster import MATERIAL_OCC_LABEL, GroundRaster
from .object_catalog import OCC_FREE
from .primitive_set import PrimitiveSet

GRID_LOWER = np.array([-40.0, -40.0, -1.0])
VOXEL_SIZE = 0.4
GRID_SHAPE = (200, 200, 16)


@dataclass
class CameraView:
    """What the camera mask needs from one rendered camera.

    Attributes:
        cam2global: (4, 4) camera pose at its capture time.
        intrinsic: (3, 3) camera matrix.
        depth: (H, W) distance along each pixel ray to the visible surface (inf for sky).
    """

    cam2global: np.ndarray
    intrinsic: np.ndarray
    depth: np.ndarray


class OccupancyLabeler:
    """Builds ``semantics``, ``mask_lidar`` and ``mask_camera`` for one key frame.

    Args:
        ray_step: sampling step (m) along LiDAR rays for the free-space carving.
        carve_stride: use every ``carve_stride``-th LiDAR ray for carving (all returns are marked).
    """

    def __init__(self, ray_step: float = 0.4, carve_stride: int = 4) -> None:
        self.ray_step, self.carve_stride = ray_step, carve_stride
        idx = [np.arange(n) for n in GRID_SHAPE]
        self.axes = [GRID_LOWER[k] + VOXEL_SIZE * (idx[k] + 0.5) for k in range(3)]
        grid = np.stack(np.meshgrid(*self.axes, indexing="ij"), -1)  # (200, 200, 16, 3)
        self.centers = grid.reshape(-1, 3)
        self.centers32 = self.centers.astype(np.float32)
        self.ground_layer = int(np.floor((0.0 - GRID_LOWER[2]) / VOXEL_SIZE))
        self._wedges: dict[tuple, np.ndarray] = {}

    def semantics(self, ego2global: np.ndarray, prims: PrimitiveSet, ground: GroundRaster) -> np.ndarray:
        """(200, 200, 16) uint8 labels at the key frame.

        Args:
            ego2global: (4, 4) ego pose (level: roll = pitch = 0).
            prims: boxes of the world at the key-frame time (static structures and actors' parts).
            ground: ground materials.
        """
        labels = np.full(GRID_SHAPE, OCC_FREE, dtype=np.uint8)
        rot, trans = ego2global[:3, :3], ego2global[:3, 3]
        gx, gy = np.meshgrid(self.axes[0], self.axes[1], indexing="ij")
        ground_xy = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], -1) @ rot.T + trans
        material = ground.lookup(ground_xy[:, 0], ground_xy[:, 1]).reshape(gx.shape)
        labels[:, :, self.ground_layer] = MATERIAL_OCC_LABEL[material]

        ego_yaw = np.arctan2(rot[1, 0], rot[0, 0])
        centers = (prims.centers - trans) @ rot
        yaws = prims.yaws - ego_yaw
        corners = box_corners(centers, 2.0 * prims.half_sizes, yaws)
        lo_idx = np.floor((corners.min(1) - GRID_LOWER) / VOXEL_SIZE).astype(np.int64)
        hi_idx = np.floor((corners.max(1) - GRID_LOWER) / VOXEL_SIZE).astype(np.int64)
        lo_idx = np.maximum(lo_idx, 0)
        hi_idx = np.minimum(hi_idx, np.array(GRID_SHAPE) - 1)
        inside = np.all(hi_idx >= lo_idx, axis=1)
        # Static structures first, then actors, so actors win where they touch a structure.
        order = np.flatnonzero(inside)
        order = order[np.argsort(prims.owners[order] >= 0, kind="stable")]
        half_voxel = VOXEL_SIZE / 2.0
        for i in order:
            ii, jj, kk = (np.arange(lo_idx[i, k], hi_idx[i, k] + 1) for k in range(3))
            cx = self.axes[0][ii][:, None, None] - centers[i, 0]
            cy = self.axes[1][jj][None, :, None] - centers[i, 1]
            cz = self.axes[2][kk][None, None, :] - centers[i, 2]
            c, s = np.cos(yaws[i]), np.sin(yaws[i])
            lx, ly = c * cx + s * cy, -s * cx + c * cy
            h = prims.half_sizes[i]
            # A voxel is labelled when it overlaps the box (the box grown by half a voxel holds its centre).
            hit = (np.abs(lx) < h[0] + half_voxel) & (np.abs(ly) < h[1] + half_voxel)
            hit = hit & (np.abs(cz) < h[2] + half_voxel)
            block = labels[ii[0] : ii[-1] + 1, jj[0] : jj[-1] + 1, kk[0] : kk[-1] + 1]
            block[hit] = prims.occ_labels[i]
        return labels

    def lidar_mask(
        self, ego2global: np.ndarray, origin: np.ndarray, directions: np.ndarray, ranges: np.ndarray
    ) -> np.ndarray:
        """(200, 200, 16) uint8: voxels crossed by the LiDAR rays or holding a return.

        Args:
            ego2global: (4, 4) ego pose of the key frame.
            origin: (3,) LiDAR position (global frame).
            directions: (N, 3) unit directions of the returned rays (global frame).
            ranges: (N,) measured ranges (m).
        """
        mask = np.zeros(GRID_SHAPE, dtype=bool)
        rot, trans = ego2global[:3, :3], ego2global[:3, 3]
        o = (origin - trans) @ rot
        d = directions @ rot
        self._mark(mask, o[None] + d * ranges[:, None])
        carve = slice(None, None, self.carve_stride)
        d_c, r_c = d[carve], np.minimum(ranges[carve], 60.0)
        steps = np.arange(self.ray_step, 60.0, self.ray_step)
        chunk = max(1, 2_000_000 // len(steps))
        for start in range(0, len(d_c), chunk):
            dd, rr = d_c[start : start + chunk], r_c[start : start + chunk]
            before = steps[None, :] < rr[:, None] - 0.2  # free space in front of the return
            samples = o[None, None] + dd[:, None, :] * steps[None, :, None]
            self._mark(mask, samples[before])
        return mask.astype(np.uint8)

    def camera_mask(self, ego2global: np.ndarray, views: list[CameraView]) -> np.ndarray:
        """(200, 200, 16) uint8: voxels visible in at least one camera (z-buffer test on voxel centres).

        A voxel is seen when it projects into the image and is not behind the visible surface of
        that pixel (the voxel holding the surface counts as seen).
        """
        visible = np.zeros(len(self.centers), dtype=bool)
        tolerance = VOXEL_SIZE * np.sqrt(3.0) / 2.0
        for view in views:
            # Voxel centres (ego frame of the key frame) -> camera frame at the camera's own time.
            ego2cam = np.linalg.inv(view.cam2global) @ ego2global
            idx = self._wedge(ego2cam, view.intrinsic, view.depth.shape)
            cam = self.centers32[idx] @ ego2cam[:3, :3].T.astype(np.float32) + ego2cam[:3, 3].astype(np.float32)
            z = cam[:, 2]
            front = z > 0.1
            z = np.where(front, z, np.float32(1.0))
            u = view.intrinsic[0, 0] * cam[:, 0] / z + view.intrinsic[0, 2]
            v = view.intrinsic[1, 1] * cam[:, 1] / z + view.intrinsic[1, 2]
            h, w = view.depth.shape
            inside = np.flatnonzero(front & (u >= 0) & (u < w) & (v >= 0) & (v < h))
            reach = view.depth[v[inside].astype(np.int64), u[inside].astype(np.int64)] + tolerance
            p = cam[inside]
            seen = np.einsum("ij,ij->i", p, p) <= reach * reach
            visible[idx[inside[seen]]] = True
        return visible.reshape(GRID_SHAPE).astype(np.uint8)

    def _wedge(self, ego2cam: np.ndarray, intrinsic: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Indices of the voxels (above the ground) within a camera's horizontal field of view.

        Cached per camera mounting: the wedge is computed with a 10 degree margin, which covers the
        ego motion between the key frame and the camera's capture time.
        """
        key = (np.round(ego2cam[:3, :3], 1).tobytes(), np.round(intrinsic, 0).tobytes(), shape)
        if key not in self._wedges:
            cam2ego = np.linalg.inv(ego2cam)
            forward = cam2ego[:3, 2]
            heading = np.arctan2(forward[1], forward[0])
            half_fov = np.arctan2(max(intrinsic[0, 2], shape[1] - intrinsic[0, 2]), intrinsic[0, 0])
            rel = self.centers[:, :2] - cam2ego[:2, 3]
            angle = np.abs((np.arctan2(rel[:, 1], rel[:, 0]) - heading + np.pi) % (2 * np.pi) - np.pi)
            near = np.linalg.norm(rel, axis=1) < 2.0
            keep = ((angle < half_fov + np.deg2rad(10.0)) | near) & (self.centers[:, 2] > -VOXEL_SIZE)
            if len(self._wedges) > 64:
                self._wedges.clear()
            self._wedges[key] = np.flatnonzero(keep)
        return self._wedges[key]

    @staticmethod
    def _mark(mask: np.ndarray, points_ego: np.ndarray) -> None:
        idx = np.floor((points_ego - GRID_LOWER) / VOXEL_SIZE).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.array(GRID_SHAPE)), axis=1)
        idx = idx[ok]
        mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
