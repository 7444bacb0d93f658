"""mmdet3d's ground-truth database sampler, usable with numpy 1.x."""

from __future__ import annotations

import numpy as np
from mmdet3d.datasets.transforms.dbsampler import DataBaseSampler

from perception_mtl.registry import TRANSFORMS


@TRANSFORMS.register_module()
class GTPasteSampler(DataBaseSampler):
    """``DataBaseSampler`` (the ``db_sampler`` of ``mmdet3d.ObjectSample``) that runs on numpy < 2.

    mmdet3d 1.4.0 builds the sampled labels with ``dtype=np.long``, an alias numpy 1.24-1.26 does
    not have (numpy 2 brought it back), so every paste raised AttributeError. ``np.long`` is
    provided only for the duration of the call. Arguments are ``DataBaseSampler``'s; the database
    comes from ``perception_mtl.datasets.converters.gt_database_writer.write_gt_database``. Classes
    whose database is empty (after the ``prepare`` filters) are not sampled, instead of failing.
    A drawn object that sits exactly on a box already in the scene (the scene's own object, drawn
    back from the database) is dropped: mmdet3d's corner/edge collision test misses coincident
    boxes, which would leave duplicate ground truth.

    Pasted objects exist only in the LiDAR points, not in the images, so camera depth
    supervision must not see them. With ``key_frame_lag`` = (column, value), pasted points whose
    time lag in that column is 0 get ``value`` instead (1e-6 s: the LiDAR encoder cannot tell the
    difference, but ``LSSDepthTransform``, which supervises with lag == 0 points only, skips them).

    Args:
        *args, **kwargs: ``DataBaseSampler``'s.
        key_frame_lag: (time-lag column, replacement lag) for pasted key-frame points, or None to
            leave pasted points as they are.
    """

    def __init__(self, *args, key_frame_lag: tuple[int, float] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if key_frame_lag is not None and not key_frame_lag[1] > 0:
            raise ValueError(f"db_sampler.key_frame_lag must be (column, lag > 0), got {key_frame_lag}")
        self.key_frame_lag = key_frame_lag
        keep = [i for i, name in enumerate(self.sample_classes) if self.db_infos.get(name)]
        self.sample_classes = [self.sample_classes[i] for i in keep]
        self.sample_max_nums = [self.sample_max_nums[i] for i in keep]

    def sample_all(self, gt_bboxes, gt_labels, img=None, ground_plane=None):
        if "long" in np.__dict__:
            sampled = super().sample_all(gt_bboxes, gt_labels, img, ground_plane)
        else:
            np.long = np.int64
            try:
                sampled = super().sample_all(gt_bboxes, gt_labels, img, ground_plane)
            finally:
                del np.long
        if sampled is not None and self.key_frame_lag is not None:
            column, lag = self.key_frame_lag
            points = sampled["points"].tensor
            if not 0 <= column < points.shape[1]:
                raise ValueError(
                    f"db_sampler.key_frame_lag column {column} is outside the database points' "
                    f"{points.shape[1]} features (db_sampler.points_loader.use_dim)"
                )
            lags = points[:, column]
            lags[lags == 0] = lag
        return sampled

    def sample_class_v2(self, name: str, num: int, gt_bboxes: np.ndarray) -> list[dict]:
        sampled = super().sample_class_v2(name, num, gt_bboxes)
        if not sampled or len(gt_bboxes) == 0:
            return sampled
        centres = np.stack([s["box3d_lidar"][:2] for s in sampled])
        gap = np.linalg.norm(centres[:, None] - np.asarray(gt_bboxes)[None, :, :2], axis=-1).min(1)
        return [s for s, d in zip(sampled, gap) if d > 1e-3]
