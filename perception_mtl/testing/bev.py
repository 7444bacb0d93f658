"""Tiny BEV-detection configs and hand-made batches for the model, head and registry tests.

Sizes are chosen for speed: six 32x88 cameras, a 32x32 BEV grid of 3.2 m cells over +-51.2 m.
"""

from __future__ import annotations

import numpy as np
import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

from perception_mtl.structures import SensorCalibration

CLASSES = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
TASKS = [
    dict(num_class=1, class_names=["car"]),
    dict(num_class=2, class_names=["truck", "construction_vehicle"]),
    dict(num_class=2, class_names=["bus", "trailer"]),
    dict(num_class=1, class_names=["barrier"]),
    dict(num_class=2, class_names=["motorcycle", "bicycle"]),
    dict(num_class=2, class_names=["pedestrian", "traffic_cone"]),
]
PCR = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
CELL = 3.2
GRID = 32
IMAGE_HW = (32, 88)


def ring_calibration(image_hw=IMAGE_HW, num_cams: int = 6, batch: int = 1) -> SensorCalibration:
    """Cameras at the LiDAR origin looking outwards every 360/num_cams degrees (90-degree FOV)."""
    h, w = image_hw
    cam2img = np.array([[w / 2, 0, (w - 1) / 2], [0, w / 2, (h - 1) / 2], [0, 0, 1]], np.float32)
    lidar2cam = []
    for i in range(num_cams):
        yaw = 2 * np.pi * i / num_cams
        forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        cam2lidar = np.eye(4)
        cam2lidar[:3, :3] = np.stack([right, [0.0, 0.0, -1.0], forward], 1)
        lidar2cam.append(np.linalg.inv(cam2lidar))
    one = SensorCalibration.from_single(np.stack([cam2img] * num_cams), np.stack(lidar2cam))
    return SensorCalibration.cat([one] * batch)


def random_boxes(rng: np.random.Generator, labels: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(K, 9) LiDAR boxes (bottom centre, velocity) within 40 m of the given labels (default: one per class)."""
    sizes = [(4.5, 1.9, 1.6), (7, 2.5, 3), (6, 2.8, 3), (11, 2.9, 3.5), (12, 2.3, 3.8),
             (0.5, 2.5, 1), (2.1, 0.8, 1.5), (1.7, 0.6, 1.3), (0.7, 0.7, 1.8), (0.4, 0.4, 1)]  # fmt: skip
    labels = list(range(len(sizes))) if labels is None else labels
    boxes = []
    for label in labels:
        length, width, height = sizes[label]
        x, y = rng.uniform(-40, 40, 2)
        boxes.append([x, y, -1.8, length, width, height, rng.uniform(-np.pi, np.pi), *rng.uniform(-3, 3, 2)])
    return np.array(boxes, np.float32), np.array(labels, np.int64)


def random_batch(batch: int = 2, seed: int = 0, num_points: int = 3000) -> dict:
    """A ``pseudo_collate``-style batch: uint8 images, calibration, points (x, y, z, intensity, lag)
    sampled on the GT boxes and the ground, and Det3DDataSamples with boxes of every class."""
    rng = np.random.default_rng(seed)
    images, calibs, points, samples = [], [], [], []
    for b in range(batch):
        # Every class in sample 0; sample 1 adds one box to each two-class group, so each group's box
        # count is odd and the L1 loss's sign gradients cannot cancel exactly on any head bias.
        boxes, labels = random_boxes(rng, None if b % 2 == 0 else [1, 3, 6, 8])
        images.append(torch.from_numpy(rng.integers(0, 255, (6, 3, *IMAGE_HW), dtype=np.uint8)))
        calibs.append(ring_calibration())
        ground = np.concatenate([rng.uniform(-50, 50, (num_points, 2)), np.full((num_points, 1), -1.8)], 1)
        on_boxes = boxes[rng.integers(0, len(boxes), num_points), :3] + rng.normal(0, 0.3, (num_points, 3))
        xyz = np.concatenate([ground, on_boxes])
        lag = np.zeros((len(xyz), 1))
        lag[::3] = 0.05
        pts = np.concatenate([xyz, rng.uniform(0, 1, (len(xyz), 1)), lag], 1)
        points.append(torch.from_numpy(pts.astype(np.float32)))
        sample = Det3DDataSample(metainfo=dict(token=f"tok{b}", box_type_3d=LiDARInstance3DBoxes))
        sample.gt_instances_3d = InstanceData(
            bboxes_3d=LiDARInstance3DBoxes(torch.from_numpy(boxes), box_dim=9), labels_3d=torch.from_numpy(labels)
        )
        samples.append(sample)
    return dict(inputs=dict(img=images, calib=calibs, points=points), data_samples=samples)


def head_cfg(in_channels: int, channels: int = 16) -> dict:
    """CenterDetHead on the 32x32 grid: nuScenes' six class groups, velocity, circle NMS."""
    voxel = [CELL, CELL]
    return dict(
        type="CenterDetHead",
        class_names=CLASSES,
        in_channels=in_channels,
        tasks=TASKS,
        common_heads=dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
        share_conv_channel=channels,
        bbox_coder=dict(
            type="mmdet3d.CenterPointBBoxCoder",
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_num=100,
            score_threshold=0.0,
            out_size_factor=1,
            voxel_size=voxel,
            pc_range=PCR[:2],
            code_size=9,
        ),
        separate_head=dict(type="mmdet3d.SeparateHead", init_bias=-2.19, final_kernel=3, head_conv=channels),
        loss_cls=dict(type="mmdet.GaussianFocalLoss", reduction="mean"),
        loss_bbox=dict(type="mmdet.L1Loss", reduction="mean", loss_weight=0.25),
        norm_bbox=True,
        train_cfg=dict(
            grid_size=[GRID, GRID, 1],
            voxel_size=[CELL, CELL, 8.0],
            out_size_factor=1,
            dense_reg=1,
            gaussian_overlap=0.1,
            max_objs=100,
            min_radius=2,
            point_cloud_range=PCR,
            code_weights=[1.0] * 8 + [0.2, 0.2],
        ),
        test_cfg=dict(
            post_center_limit_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            max_per_img=100,
            max_pool_nms=False,
            min_radius=[4, 12, 10, 1, 0.85, 0.175],
            score_threshold=0.0,
            out_size_factor=1,
            voxel_size=voxel,
            pc_range=PCR[:2],
            nms_type="circle",
            pre_max_size=100,
            post_max_size=50,
            nms_thr=0.2,
        ),
    )


def camera_encoder_cfg(out_channels: int = 16, depth_loss_weight: float = 1.0) -> dict:
    bound = [PCR[0], PCR[3], CELL]
    return dict(
        # zero_init_last=False: with timm's zero-initialised residual BNs a first step has no gradient.
        backbone=dict(type="TimmBackbone", model_name="resnet18", out_indices=(2, 3, 4), zero_init_last=False),
        neck=dict(type="LSSFPN", in_channels=[128, 256, 512], out_channels=32),
        view_transform=dict(
            type="LSSDepthTransform",
            in_channels=32,
            out_channels=out_channels,
            xbound=bound,
            ybound=bound,
            zbound=[-10.0, 10.0, 20.0],
            dbound=[1.0, 60.0, 2.0],
            depth_loss_weight=depth_loss_weight,
        ),
    )


def lidar_encoder_cfg(out_channels: int = 16) -> dict:
    return dict(
        type="PillarLidarEncoder",
        in_channels=5,
        feat_channels=16,
        out_channels=out_channels,
        voxel_size=[CELL / 2, CELL / 2, 8.0],
        point_cloud_range=PCR,
        out_stride=2,
    )


def model_cfg(modalities=("camera", "lidar"), fuser: str | None = "ConvFuser") -> dict:
    """A tiny MultiTaskBEVModel: the given modalities, fuser, SECOND + SECONDFPN, CenterDetHead."""
    encoders, channels = {}, []
    if "camera" in modalities:
        encoders["camera"] = camera_encoder_cfg(16)
        channels.append(16)
    if "lidar" in modalities:
        encoders["lidar"] = lidar_encoder_cfg(24)
        channels.append(24)
    voxelize = None
    if "lidar" in modalities:
        voxelize = dict(voxel_size=[CELL / 2, CELL / 2, 8.0], point_cloud_range=PCR, max_num_points=10,
                        max_voxels=(4096, 4096))  # fmt: skip
    fuser_cfg = None if fuser is None else dict(type=fuser, in_channels=channels, out_channels=24)
    decoder_in = 24 if fuser is not None else channels[0]
    return dict(
        type="MultiTaskBEVModel",
        data_preprocessor=dict(type="BEVDataPreprocessor", voxelize=voxelize),
        encoders=encoders,
        fuser=fuser_cfg,
        decoder=dict(
            backbone=dict(
                type="mmdet3d.SECOND",
                in_channels=decoder_in,
                out_channels=[16, 32],
                layer_nums=[1, 1],
                layer_strides=[1, 2],
            ),
            neck=dict(type="mmdet3d.SECONDFPN", in_channels=[16, 32], out_channels=[16, 16], upsample_strides=[1, 2]),
        ),  # fmt: skip
        heads=dict(det=head_cfg(32)),
        tasks=("det",),
    )


def moe_model_cfg(tasks=("det", "map")) -> dict:
    """The LiDAR-only tiny model with a task-routed ``MoEBEVDecoder`` (4 experts, top 2) and det + map heads."""
    cfg = model_cfg(("lidar",), None)
    cfg["decoder"] = dict(
        backbone=dict(
            type="MoEBEVDecoder",
            backbone=dict(type="mmdet3d.SECOND", in_channels=24, out_channels=[16, 32], layer_nums=[1, 1],
                          layer_strides=[1, 2]),
            neck=dict(type="mmdet3d.SECONDFPN", in_channels=[16, 32], out_channels=[16, 16], upsample_strides=[1, 2]),
            num_experts=4,
            top_k=2,
        )
    )  # fmt: skip
    cfg["heads"] = dict(
        det=head_cfg(32),
        map=dict(type="BEVMapSegHead", in_channels=32, bev_range=PCR, xbound=[-50.0, 50.0, 5.0],
                 ybound=[-50.0, 50.0, 5.0], feat_channels=8, num_convs=1),
    )  # fmt: skip
    cfg["tasks"] = tuple(tasks)
    return cfg
