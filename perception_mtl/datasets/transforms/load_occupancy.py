"""Occ3D occupancy ground truth, resampled to follow the BEV augmentation."""

from __future__ import annotations

import os
import zipfile

import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import TRANSFORMS

FREE_LABEL = 17


@TRANSFORMS.register_module()
class LoadOccupancy(BaseTransform):
    """Loads ``labels.npz`` (``semantics`` (X, Y, Z) uint8 with 17 = free, ``mask_lidar``,
    ``mask_camera``) from ``results['occ_path']`` into ``results['gt_occ']``.

    Occ3D grids live in the ego frame (x, y in [-40, 40] m, z in [-1, 5.4] m, 0.4 m voxels). When
    a BEV augmentation was applied (``lidar_aug`` != I), the grid is resampled (nearest voxel
    centre) under the same motion expressed in the ego frame,
    ``lidar2ego @ lidar_aug @ inv(lidar2ego)``; voxels that come from outside the grid become free
    and unobserved (both masks 0).

    Args:
        point_cloud_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the grid in metres.
        grid_size: voxels per axis (X, Y, Z).
    """

    def __init__(
        self,
        point_cloud_range: tuple[float, ...] = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4),
        grid_size: tuple[int, int, int] = (200, 200, 16),
    ) -> None:
        self.lo = np.asarray(point_cloud_range[:3], np.float64)
        self.hi = np.asarray(point_cloud_range[3:], np.float64)
        self.grid_size = tuple(grid_size)
        self.voxel = (self.hi - self.lo) / np.asarray(grid_size)

    def transform(self, results: dict) -> dict:
        token = results.get("token")
        path = results.get("occ_path")
        if not path:
            raise BadSampleError("info record has no occ_path (no Occ3D labels for this sample)", None, token)
        labels = self._read(path, token)
        aug = np.asarray(results.get("lidar_aug", np.eye(4)), np.float64)
        if not np.allclose(aug, np.eye(4)):
            lidar2ego = np.asarray(results["lidar_points"]["lidar2ego"], np.float64)
            labels = self.resample(labels, lidar2ego @ aug @ np.linalg.inv(lidar2ego))
        results["gt_occ"] = labels
        return results

    def _read(self, path: str, token: str | None) -> dict[str, np.ndarray]:
        if not os.path.isfile(path):
            raise BadSampleError("occupancy labels not found", path, token)
        try:
            with np.load(path) as data:
                labels = {k: np.asarray(data[k]) for k in ("semantics", "mask_lidar", "mask_camera")}
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
            raise BadSampleError(f"occupancy labels unreadable or missing a key: {err}", path, token) from err
        for key, value in labels.items():
            if value.shape != self.grid_size:
                raise BadSampleError(
                    f"occupancy '{key}' has shape {value.shape}, expected {self.grid_size}", path, token
                )
        if labels["semantics"].max() > FREE_LABEL:
            raise BadSampleError(f"occupancy semantics above {FREE_LABEL}", path, token)
        return {
            "semantics": labels["semantics"].astype(np.uint8),
            "mask_lidar": labels["mask_lidar"].astype(bool),
            "mask_camera": labels["mask_camera"].astype(bool),
        }

    def resample(self, labels: dict[str, np.ndarray], ego_aug: np.ndarray) -> dict[str, np.ndarray]:
        """Nearest-neighbour resampling of every grid under the ego-frame transform ``ego_aug``."""
        inverse = np.linalg.inv(ego_aug)
        size = np.asarray(self.grid_size)
        axes = [self.lo[i] + (np.arange(n) + 0.5) * self.voxel[i] for i, n in enumerate(self.grid_size)]
        if np.allclose(inverse[:2, 2], 0) and np.allclose(inverse[2, :2], 0):
            # BEV augmentations never mix z with x/y: map the (X, Y) plane once and z once.
            gx, gy = np.meshgrid(axes[0], axes[1], indexing="ij")
            sx = inverse[0, 0] * gx + inverse[0, 1] * gy + inverse[0, 3]
            sy = inverse[1, 0] * gx + inverse[1, 1] * gy + inverse[1, 3]
            sz = inverse[2, 2] * axes[2] + inverse[2, 3]
            ix = np.floor((sx - self.lo[0]) / self.voxel[0]).astype(np.int64)[:, :, None]
            iy = np.floor((sy - self.lo[1]) / self.voxel[1]).astype(np.int64)[:, :, None]
            iz = np.floor((sz - self.lo[2]) / self.voxel[2]).astype(np.int64)[None, None, :]
        else:
            centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
            source = centres @ inverse[:3, :3].T + inverse[:3, 3]
            index = np.floor((source - self.lo) / self.voxel).astype(np.int64)
            ix, iy, iz = index[..., 0], index[..., 1], index[..., 2]
        inside = (ix >= 0) & (ix < size[0]) & (iy >= 0) & (iy < size[1]) & (iz >= 0) & (iz < size[2])
        ix, iy, iz = np.clip(ix, 0, size[0] - 1), np.clip(iy, 0, size[1] - 1), np.clip(iz, 0, size[2] - 1)
        out = {}
        for key, grid in labels.items():
            empty = FREE_LABEL if key == "semantics" else False
            out[key] = np.where(inside, grid[ix, iy, iz], empty).astype(grid.dtype)
        return out
