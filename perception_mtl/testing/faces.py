"""Tiny MOS models and batches shared by the face tests and registry cases."""

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

TINY_HEAD = dict(type="FacePoseHead", stitch_channels=16, pose_channels=8, pose_kernel=1)


def tiny_model_cfg(backbone: dict | None = None) -> dict:
    return dict(
        type="MOSFaceNet",
        data_preprocessor=dict(type="ImgDataPreprocessor", mean=[104.0, 117.0, 123.0], std=[58.0, 57.0, 57.5]),
        backbone=backbone or dict(type="TimmBackbone", model_name="mobilenetv2_035", out_indices=(2, 3, 4)),
        neck=dict(type="FPNSSH", out_channels=16),
        head=TINY_HEAD,
    )


def face_sample(boxes, img_size: int = 64, with_pose: bool = True) -> DetDataSample:
    """A sample with the given xyxy faces, landmarks inside each box and a fixed pose."""
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    sample = DetDataSample(metainfo=dict(img_shape=(img_size, img_size), scale_factor=(1.0, 1.0)))
    gt = InstanceData()
    gt.bboxes = boxes
    gt.labels = torch.zeros(len(boxes), dtype=torch.long)
    rel = torch.tensor([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    gt.landmarks = boxes[:, None, :2] + rel[None] * (boxes[:, None, 2:] - boxes[:, None, :2])
    gt.landmarks_valid = torch.ones(len(boxes), dtype=torch.bool)
    pose = torch.tensor([20.0, -10.0, 5.0]) if with_pose else torch.full((3,), float("nan"))
    gt.poses = pose.expand(len(boxes), 3).clone()
    sample.gt_instances = gt
    return sample


def face_batch(img_size: int = 256) -> dict:
    """Two random 256 px images whose faces (20, 80 and 220 px) match anchors of all three levels."""
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, img_size, img_size), generator=gen, dtype=torch.uint8) for _ in range(2)]
    samples = [face_sample([[8, 8, 28, 30], [30, 20, 110, 100]], img_size), face_sample([[20, 16, 240, 236]], img_size)]
    return dict(inputs=inputs, data_samples=samples)
