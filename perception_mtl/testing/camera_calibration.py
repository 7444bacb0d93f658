"""Shared helpers of the camera-calibration tests: a tiny CVGL directory and tiny model configs."""

from __future__ import annotations

import functools
import tempfile

import torch
from mmengine.structures import BaseDataElement

from perception_mtl.synthetic.stereo import SyntheticCVGLWriter

TINY_SIZE = (48, 32)  # width, height


@functools.cache
def tiny_cvgl_root(num_samples: int = 12) -> str:
    """A tiny synthetic CVGL directory (48x32 images), written once per process."""
    root = tempfile.mkdtemp(prefix="tiny_cvgl_")
    SyntheticCVGLWriter(root, num_samples, *TINY_SIZE, test_ratio=0.25, seed=3).run()
    return root


def tiny_head_cfg(**overrides) -> dict:
    cfg = dict(
        type="CameraCalibrationHead",
        hidden_channels=(16,),
        param_stats=dict(
            fx=(40.0, 8.0), fy=(40.0, 8.0), u0=(23.5, 2.0), v0=(15.5, 2.0), baseline=(0.5, 0.2),
            disparity=(1.5, 1.0), tx=(0.0, 1.5), ty=(1.5, 0.5), tz=(14.0, 3.5), pitch=(0.07, 0.06),
        ),
    )  # fmt: skip
    cfg.update(overrides)
    return cfg


def tiny_model_cfg(**overrides) -> dict:
    cfg = dict(
        type="UGCLStereoNet",
        backbone=dict(type="TimmBackbone", model_name="test_resnet", out_indices=(1, 3), zero_init_last=False),
        head=tiny_head_cfg(),
        corr_level=0,
        max_disp=4,
        fusion_channels=16,
        pool_size=(2, 2),
    )
    cfg.update(overrides)
    return cfg


def random_samples(n: int, seed: int = 0, img_shape=(32, 48)) -> list[BaseDataElement]:
    """Samples with plausible random ``gt_calib`` (consistent disparity) for the head tests."""
    g = torch.Generator().manual_seed(seed)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=g)

    fx = u(30, 50)
    baseline, tz, pitch = u(0.2, 0.8), u(8, 20), u(-0.03, 0.17)
    params = torch.stack([fx, fx, u(21, 26), u(13, 18), baseline, fx * baseline / tz, u(-2, 2), u(1, 2), tz, pitch], 1)
    samples = []
    for p in params:
        s = BaseDataElement(metainfo=dict(img_shape=img_shape))
        s.gt_calib = p
        samples.append(s)
    return samples
