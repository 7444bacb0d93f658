"""Batched calibration of the synthetic nuScenes-like rig, augmented as the demo pipeline does.

For tests and benchmarks that need real camera geometry (six nuScenes-mounted cameras with their
per-log jitter) without reading a dataset: :class:`SensorRig` intrinsics and extrinsics, image
augmentation from :class:`MultiViewImageAug` and a BEV rotation / scale / flip as ``BEVAug`` draws them.
"""

from __future__ import annotations

import numpy as np

from perception_mtl.datasets.converters.nuscenes_schema import CAMERA_CHANNELS
from perception_mtl.datasets.transforms.multi_view_image_aug import MultiViewImageAug
from perception_mtl.structures import SensorCalibration
from perception_mtl.synthetic.driving.sensor_rig import SensorRig


def rig_calibration(
    batch: int = 1,
    seed: int = 0,
    image_width: int = 400,
    final_hw: tuple[int, int] = (64, 176),
    resize_lim: tuple[float, float] = (0.40, 0.48),
    random_aug: bool = False,
) -> SensorCalibration:
    """(B, 6) calibration of the synthetic rig (LiDAR frame = LIDAR_TOP), images resized to ``final_hw``.

    Defaults are the demo configs' camera pipeline (400 x 225 renders -> 64 x 176). BEVFusion's
    size: ``image_width=1600, final_hw=(256, 704), resize_lim=(0.38, 0.55)``.

    Args:
        batch: samples; each gets its own draw of the augmentation (one rig for all).
        seed: seed of the rig's calibration jitter and of the augmentation draws.
        image_width: rendered image width (height keeps nuScenes' 9:16).
        final_hw: augmented image (H, W).
        resize_lim: resize range of the image augmentation.
        random_aug: train-time random image aug (resize, crop, flip, rotation) and BEV aug (yaw
            +-22.5 deg, scale 0.95-1.05, flips); otherwise the test-time fixed resize and crop.
    """
    rng = np.random.default_rng(seed)
    rig = SensorRig(rng, image_width=image_width)
    height = rig.image_height
    aug = MultiViewImageAug(final_size=final_hw, resize_lim=resize_lim, is_train=random_aug)
    lidar2ego = rig.lidar.sensor2ego
    cam2img = np.stack([rig.camera(ch).intrinsic for ch in CAMERA_CHANNELS])
    lidar2cam = np.stack([np.linalg.inv(rig.camera(ch).sensor2ego) @ lidar2ego for ch in CAMERA_CHANNELS])
    calibs = []
    for _ in range(batch):
        img_aug = np.tile(np.eye(4), (len(CAMERA_CHANNELS), 1, 1))
        for i in range(len(CAMERA_CHANNELS)):
            img_aug[i, :3, :3] = aug.sample_affine(height, image_width, rng)
        lidar_aug = np.eye(4)
        if random_aug:
            yaw, scale = rng.uniform(-0.3925, 0.3925), rng.uniform(0.95, 1.05)
            flip = np.diag([rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])])
            rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            lidar_aug[:2, :2] = flip @ rot * scale
            lidar_aug[2, 2] = scale
        calibs.append(SensorCalibration.from_single(cam2img, lidar2cam, img_aug, lidar_aug))
    return SensorCalibration.cat(calibs)
