"""LiDAR key frame + sweeps loading with validation, for infos written by our converter or mmdet3d's."""

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
    if size == 0:
        raise BadSampleError("LiDAR file is empty (0 bytes, no points)", path, token)
    if size % (4 * load_dim):
        raise BadSampleError(f"LiDAR file is truncated or not {load_dim} float32 per point ({size} bytes)", path, token)
    points = np.fromfile(path, dtype=np.float32).reshape(-1, load_dim)
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points)).any(1).sum())
        raise BadSampleError(f"{bad} LiDAR points hold NaN or inf", path, token)
    if load_dim == 5 and len(points) >= 8:
        # nuScenes' 5th column is the ring index (a small whole number). A file of another width whose
        # size happens to divide by 20 bytes reads as shuffled coordinates there: mostly fractions.
        ring = points[:, 4]
        fractional = float(np.mean((ring != np.round(ring)) | (ring < 0) | (ring > 255)))
        if fractional > 0.5:
            raise BadSampleError(
                f"LiDAR file does not look like {load_dim} float32 per point: column 4 (ring index) is not a whole "
                f"number 0..255 in {fractional:.0%} of the points (wrong width? check load_dim)",
                path,
                token,
            )
    return points


# How far (metres; rotation entries) a sweep's ``lidar2sensor`` may sit from its poses' transform.
# Poses stored as float32 would cost ~1e-4 m at nuScenes' global coordinates; the two encodings
# differ by |(R^T - I) t|, metres on a turning ego.
SWEEP_CODE_TOL = 0.01


def _matrix(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(4, 4)


def sweep_to_key_from_poses(sweep: dict, results: dict) -> np.ndarray | None:
    """(4, 4) sweep LiDAR -> key LiDAR from the poses both converters write, or None without them.

    ``inv(ego2global_key @ lidar2ego_key) @ ego2global_sweep @ lidar2ego_sweep``: the sweep's
    ``lidar_points.lidar2ego`` and ``ego2global`` and the key frame's.
    """
    mats = [
        _matrix(results.get("lidar_points", {}).get("lidar2ego")),
        _matrix(results.get("ego2global")),
        _matrix(sweep["lidar_points"].get("lidar2ego")),
        _matrix(sweep.get("ego2global")),
    ]
    if any(m is None for m in mats):
        return None
    key_l2e, key_e2g, sweep_l2e, sweep_e2g = mats
    return np.linalg.inv(key_e2g @ key_l2e) @ sweep_e2g @ sweep_l2e


def decode_sweep_code(
    code, sweep2key: np.ndarray | None = None, path: str | None = None, token: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) of the sweep -> key LiDAR transform, ``p_key = R p + t``, from ``lidar2sensor``.

    Two writers, two encodings of the same (R, t), both with ``code[:3, :3] = R^T``:

    - ours (``NuScenesInfoConverter``, so also the synthetic writer): ``[R^T | -t]``, the layout
      mmdet3d's ``LoadPointsFromMultiSweeps`` decodes (``p @ code[:3, :3] - code[:3, 3]``);
    - mmdet3d 1.4's ``update_infos_to_v2.py``: ``[R^T | -R^T t]``, the true inverse, which that
      same loader misplaces by ``(R^T - I) t`` (metres when the ego turns between sweep and key).

    The code alone cannot say which it is, so it is checked against ``sweep2key`` (from the
    poses, :func:`sweep_to_key_from_poses`): the encoding whose ``t`` agrees with the poses' to
    ``SWEEP_CODE_TOL`` is used. Both converters write those poses into every info, so this also
    reads infos written before the check existed; a writer's mark in the file's metainfo would
    not (and the metainfo does not reach the pipeline's transforms). Where the two agree with each other (no turn,
    or no translation) either is exact. A code that matches neither raises ``BadSampleError``.
    Without poses (hand-made infos) the code is read as ``[R^T | -t]``, as mmdet3d's loader reads it.
    """
    code = np.asarray(code, dtype=np.float64).reshape(4, 4)
    rot, shift = code[:3, :3].T, code[:3, 3]
    t_ours, t_mmdet3d = -shift, -rot @ shift
    if sweep2key is None:
        return rot, t_ours
    err_rot = float(np.abs(rot - sweep2key[:3, :3]).max())
    err_ours = float(np.linalg.norm(t_ours - sweep2key[:3, 3]))
    err_mmdet3d = float(np.linalg.norm(t_mmdet3d - sweep2key[:3, 3]))
    if err_rot > SWEEP_CODE_TOL or min(err_ours, err_mmdet3d) > SWEEP_CODE_TOL:
        raise BadSampleError(
            f"sweep lidar2sensor disagrees with the sweep's and key frame's poses (rotation off by "
            f"{err_rot:.3g}, translation off by {err_ours:.3g} m read as [R^T | -t], {err_mmdet3d:.3g} m "
            "read as [R^T | -R^T t])",
            path,
            token,
        )
    return rot, (t_ours if err_ours <= err_mmdet3d else t_mmdet3d)


@TRANSFORMS.register_module()
class LoadLidarPointsWithSweeps(BaseTransform):
    """Loads the key-frame point cloud and up to ``sweeps_num`` earlier sweeps in the key LiDAR frame.

    Reads the mmdet3d v2 info fields ``lidar_points.lidar_path`` and ``lidar_sweeps[i]`` (with
    ``lidar_points.lidar_path``, ``lidar_points.lidar2sensor`` and ``timestamp``, and the poses
    ``lidar_points.lidar2ego``, ``ego2global`` of sweep and key frame where present). Each sweep
    is moved into the key LiDAR frame exactly, whichever converter wrote the info (ours or
    mmdet3d's, which encode ``lidar2sensor`` differently; see :func:`decode_sweep_code`); a last
    channel holds the time lag in seconds (0 for the key frame). Points within ``remove_close``
    metres of a sweep's sensor are dropped (they hit the ego vehicle).

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
            record = sweep.get("lidar_points", {})
            missing = [k for k in ("lidar_path", "lidar2sensor") if k not in record] + [
                k for k in ("timestamp",) if k not in sweep
            ]
            if missing:  # a bare KeyError would escape skip_bad_samples
                raise BadSampleError(f"LiDAR sweep {i} record lacks {missing}", record.get("lidar_path"), token)
            path = record["lidar_path"]
            pts = read_points(path, self.load_dim, token)[:, self.use_dim]
            pts = pts[np.linalg.norm(pts[:, :2], axis=1) >= self.remove_close]
            rot, trans = decode_sweep_code(
                sweep["lidar_points"]["lidar2sensor"], sweep_to_key_from_poses(sweep, results), path, token
            )
            pts[:, :3] = (pts[:, :3] @ rot.T + trans).astype(np.float32)  # rows: R p + t
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
