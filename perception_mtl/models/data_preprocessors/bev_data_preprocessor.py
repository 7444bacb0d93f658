"""Batches multi-modal samples: normalised image stack, concatenated calibration, points, voxels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.ops import Voxelization
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from perception_mtl.registry import MODELS
from perception_mtl.structures import SensorCalibration


@MODELS.register_module()
class BEVDataPreprocessor(BaseDataPreprocessor):
    """Turns a ``pseudo_collate`` batch of packed samples into model inputs on the model's device.

    Input (lists of length B, from ``PackMTLInputs``): ``inputs['img']`` (N, 3, H, W) uint8 RGB,
    ``inputs['calib']`` SensorCalibration batches of one, ``inputs['points']`` (P_b, C) float.

    Output ``inputs``:
        * ``img``: (B, N, 3, H, W) float, ``(img - mean) / std``.
        * ``calib``: one SensorCalibration of batch B (``SensorCalibration.cat``).
        * ``points``: list of B (P_b, C) float tensors (kept as a list: counts differ).
        * ``voxels`` (when ``voxelize`` is set): dict with ``voxels`` (V, max_num_points, C),
          ``num_points`` (V,), ``coors`` (V, 4) int32 [batch, z, y, x] and ``batch_size``,
          from mmcv's hard voxelisation of each sample.

    Args:
        mean: per-channel RGB mean subtracted from the images (0-255 scale).
        std: per-channel RGB std the images are divided by.
        voxelize: mmcv ``Voxelization`` arguments: ``voxel_size``, ``point_cloud_range``,
            ``max_num_points`` and ``max_voxels`` (an int or a (train, test) pair). None = no
            voxelisation (camera-only models).
        non_blocking: non-blocking host-to-device copies.
    """

    def __init__(
        self,
        mean: Sequence[float] = (123.675, 116.28, 103.53),
        std: Sequence[float] = (58.395, 57.12, 57.375),
        voxelize: dict | None = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.voxel_layer = None
        if voxelize is not None:
            required = {"voxel_size", "point_cloud_range", "max_num_points", "max_voxels"}
            missing = required - set(voxelize)
            if missing:
                raise ValueError(f"data_preprocessor.voxelize lacks {sorted(missing)}")
            self.voxel_layer = Voxelization(**voxelize)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data["inputs"]
        samples = data.get("data_samples")
        out: dict = {}
        if "img" in inputs:
            images = inputs["img"]
            images = torch.stack(list(images)) if isinstance(images, (list, tuple)) else images
            images = images.to(self.device, non_blocking=self._non_blocking).float()
            out["img"] = (images - self.mean) / self.std
        if "calib" in inputs:
            calibs = inputs["calib"]
            calib = SensorCalibration.cat(list(calibs)) if isinstance(calibs, (list, tuple)) else calibs
            out["calib"] = calib.to(self.device)
        if "points" in inputs:
            points = [p.to(self.device, non_blocking=self._non_blocking).float() for p in inputs["points"]]
            out["points"] = points
            if self.voxel_layer is not None:
                out["voxels"] = self.voxelize(points, training)
        if samples is not None:
            samples = self.cast_data(samples)
        return dict(inputs=out, data_samples=samples)

    @torch.no_grad()
    def voxelize(self, points: Sequence[Tensor], training: bool) -> dict:
        """Hard-voxelises each cloud (mmcv op) and prepends the batch index to the coordinates."""
        self.voxel_layer.train(training)  # mmcv picks max_voxels[0] in training, [1] otherwise
        voxels, coors, counts = [], [], []
        for b, pts in enumerate(points):
            vox, coor, num = self.voxel_layer(pts.contiguous())
            voxels.append(vox)
            coors.append(torch.nn.functional.pad(coor, (1, 0), value=b))
            counts.append(num)
        return dict(
            voxels=torch.cat(voxels), num_points=torch.cat(counts), coors=torch.cat(coors), batch_size=len(points)
        )
