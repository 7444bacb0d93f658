"""LiDAR key frame + sweeps loading with validation."""

from __future__ import annotations

import os

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.structures.points import LiDARPoints

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import TRANSFORMS


def read_points(path: str, load_dim: int, token: str | None) -> np.ndarray:
    """Reads an (N, load_dim) float32 ``.pcd.bin``; raises BadSampleError naming the file and token."""
    if not os.path.isfile(path):
        raise BadSampleError("LiDAR file not found", path, token)
    size = os.path.getsize(path)
    if size == 0 or size % (4 * load_dim):
        raise BadSampleError(f"LiDAR file is truncated or not {load_dim} float32 per point ({size} bytes)", path, token)
    points = np.fromfile(path, dtype=np.float32).reshape(-1, load_dim)
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points)).any(1).sum())
        raise BadSampleError(f"{bad} LiDAR points hold NaN or inf", path, token)
    return points


@TRANSFORMS.register_module()
class LoadLidarPointsWithSweeps(BaseTransform):
    """Loads the key-frame point cloud and up to ``sweeps_num`` earlier sweeps in the key LiDAR frame.

    Reads the mmdet3d v2 info fields ``lidar_points.lidar_path`` and ``lidar_sweeps[i]`` (with
    ``lidar_points.lidar_path``, ``lidar_points.lidar2sensor`` and ``timestamp``). Each sweep is moved
    into the key frame as mmdet3d does; a last channel holds the time lag in seconds
    (0 for the key frame). Points within ``remove_close`` metres of a sweep's sensor are dropped
    (they hit the ego vehicle).

    Adds ``results['points']`` as ``LiDARPoints`` of dims ``len(use_dim) + 1``.

    Args:
        load_dim: floats per point on disk (5 for nuScenes: x, y, z, intensity, ring).
        use_dim: which of them to keep.
        sweeps_num: how many sweeps to add (0 = key frame only).
        remove_close: radius in metres around each sweep's sensor to drop.
        test_mode: take the newest sweeps (deterministic) instead of a random subset in training.
    """

    def __init__(
        self,
        load_dim: int = 5,
        use_dim: tuple[int, ...] = (0, 1, 2, 3),
        sweeps_num: int = 9,
        remove_close: float = 1.0,
        test_mode: bool = False,
    ) -> None:
        if max(use_dim) >= load_dim or min(use_dim) < 0:
            raise ValueError(f"LoadLidarPointsWithSweeps: use_dim {use_dim} outside load_dim {load_dim}")
        self.load_dim = load_dim
        self.use_dim = list(use_dim)
        self.sweeps_num = sweeps_num
        self.remove_close = remove_close
        self.test_mode = test_mode

    def transform(self, results: dict) -> dict:
        token = results.get("token")
        key = read_points(results["lidar_points"]["lidar_path"], self.load_dim, token)[:, self.use_dim]
        clouds = [np.concatenate([key, np.zeros((len(key), 1), np.float32)], 1)]
        sweeps = results.get("lidar_sweeps", [])
        chosen = self._choose(len(sweeps))
        for i in chosen:
            sweep = sweeps[i]
            pts = read_points(sweep["lidar_points"]["lidar_path"], self.load_dim, token)[:, self.use_dim]
            pts = pts[np.linalg.norm(pts[:, :2], axis=1) >= self.remove_close]
            # mmdet3d's v2 infos store ``lidar2sensor`` as [R^T | -t] for the sweep->key transform (R, t),
            # not as a true inverse; decode it the way mmdet3d's own loader does so its infos stay valid.
            encoded = np.asarray(sweep["lidar_points"]["lidar2sensor"], dtype=np.float32)
            pts[:, :3] = pts[:, :3] @ encoded[:3, :3] - encoded[:3, 3]
            lag = np.full((len(pts), 1), results["timestamp"] - sweep["timestamp"], np.float32)
            clouds.append(np.concatenate([pts, lag], 1))
        points = np.concatenate(clouds).astype(np.float32)
        names = ["x", "y", "z", "intensity", "ring"]
        attribute_dims = {names[d]: j for j, d in enumerate(self.use_dim) if j >= 3 and d < len(names)}
        attribute_dims["time_lag"] = points.shape[1] - 1
        results["points"] = LiDARPoints(points, points_dim=points.shape[1], attribute_dims=attribute_dims)
        return results

    def _choose(self, available: int) -> list[int]:
        if available <= self.sweeps_num:
            return list(range(available))
        if self.test_mode:
            return list(range(self.sweeps_num))
        return sorted(np.random.choice(available, self.sweeps_num, replace=False).tolist())
