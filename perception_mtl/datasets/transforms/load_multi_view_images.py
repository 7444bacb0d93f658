"""Multi-view camera loading with the calibration that goes with each image."""

from __future__ import annotations

import os

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.datasets.converters.nuscenes_schema import CAMERA_CHANNELS
from perception_mtl.registry import TRANSFORMS

NUSCENES_CAMERAS = CAMERA_CHANNELS  # the six cameras in the devkit's / mmdet3d's order


@TRANSFORMS.register_module()
class LoadMultiViewImages(BaseTransform):
    """Reads the six camera images (RGB, HxWx3 uint8) in a fixed order with their calibration.

    Adds ``img`` (list of N arrays), ``img_shape`` / ``ori_shape`` (H, W), ``cam_names``,
    ``cam2img`` (N, 3, 3), ``lidar2cam`` (N, 4, 4) and ``img_aug`` (N, 4, 4, identity: the image-
    augmentation matrices, see ``perception_mtl.structures.SensorCalibration``).

    Args:
        cameras: camera names in the order the model sees them.
    """

    def __init__(self, cameras: tuple[str, ...] = NUSCENES_CAMERAS) -> None:
        self.cameras = tuple(cameras)

    def transform(self, results: dict) -> dict:
        token = results.get("token")
        images, cam2img, lidar2cam = [], [], []
        for cam in self.cameras:
            info = results["images"].get(cam)
            if info is None or "img_path" not in info:
                raise BadSampleError(f"no {cam} entry in the info record", results.get("lidar_path"), token)
            path = info["img_path"]
            image = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
            if image is None:
                raise BadSampleError(f"{cam} image is missing or unreadable", path, token)
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            cam2img.append(np.asarray(info["cam2img"], dtype=np.float32)[:3, :3])
            lidar2cam.append(np.asarray(info["lidar2cam"], dtype=np.float32))
        shapes = {im.shape[:2] for im in images}
        if len(shapes) != 1:
            raise BadSampleError(f"camera images differ in size: {sorted(shapes)}", None, token)
        results["img"] = images
        results["img_shape"] = results["ori_shape"] = images[0].shape[:2]
        results["cam_names"] = list(self.cameras)
        results["cam2img"] = np.stack(cam2img)
        results["lidar2cam"] = np.stack(lidar2cam)
        results["img_aug"] = np.tile(np.eye(4, dtype=np.float32), (len(images), 1, 1))
        return results
