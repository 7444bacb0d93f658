"""Packs a multi-task sample: points, images and calibration as inputs; boxes, map and occupancy as targets."""

from __future__ import annotations

import numpy as np
import torch
from mmdet3d.datasets.transforms import Pack3DDetInputs

from perception_mtl.registry import TRANSFORMS
from perception_mtl.structures import SensorCalibration

MTL_META_KEYS = (
    "token",
    "sample_idx",
    "scene_token",
    "map_location",
    "timestamp",
    "lidar_path",
    "img_path",
    "ori_shape",
    "img_shape",
    "num_pts_feats",
    "box_mode_3d",
    "box_type_3d",
    "ego2global",
    "cam_names",
)


@TRANSFORMS.register_module()
class PackMTLInputs(Pack3DDetInputs):
    """mmdet3d's packing plus the multi-task fields.

    ``inputs``: ``points`` (P, C), ``img`` (N, 3, H, W) uint8 and ``calib``, a
    :class:`SensorCalibration` batch of one built once here (cam2img, lidar2cam, img_aug,
    lidar_aug), so no model converts calibration from metainfo on every forward.
    ``data_samples``: ``gt_instances_3d`` as mmdet3d, plus ``gt_bev_seg`` (K, H, W) uint8 tensor
    and ``gt_occ`` (dict of (X, Y, Z) tensors: semantics, mask_lidar, mask_camera) when loaded.
    """

    def __init__(
        self,
        keys: tuple[str, ...] = ("points", "img", "gt_bboxes_3d", "gt_labels_3d"),
        meta_keys: tuple[str, ...] = MTL_META_KEYS,
    ) -> None:
        super().__init__(keys=keys, meta_keys=meta_keys)

    def pack_single_results(self, results: dict) -> dict:
        packed = super().pack_single_results(results)
        if "cam2img" in results:
            packed["inputs"]["calib"] = SensorCalibration.from_single(
                results["cam2img"],
                results["lidar2cam"],
                results.get("img_aug"),
                np.asarray(results.get("lidar_aug", np.eye(4)), np.float32),
            )
        sample = packed["data_samples"]
        if "lidar2ego" in results.get("lidar_points", {}):  # the occupancy head maps ego voxels to the LiDAR frame
            sample.set_metainfo(dict(lidar2ego=np.asarray(results["lidar_points"]["lidar2ego"], np.float32)))
        if "gt_bev_seg" in results:
            sample.gt_bev_seg = torch.from_numpy(np.ascontiguousarray(results["gt_bev_seg"]))
        if "gt_occ" in results:
            sample.gt_occ = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in results["gt_occ"].items()}
        return packed
