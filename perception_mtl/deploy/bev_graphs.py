"""The exported graphs of :class:`MultiTaskBEVModel`, as thin modules over its export boundaries.

Each graph's forward calls the model's own methods (``camera_encoder``, ``lidar_encoder``, ``fuse``,
``bev_decode``, ``head_forward``), so the exported graph is the PyTorch code; only the BEV pooling is
swapped for the plan-based pooling of :mod:`perception_mtl.deploy.bev_pool_plan` (no scatter-add).

Graphs, their inputs and outputs (B = batch, dynamic except in the LiDAR graph):

* ``camera_encoder``: ``img`` (B, N, 3, H, W) normalised images [+ ``pool_level*``, ``pool_cells``, the
  :class:`PoolPlan` of the rig, unless baked with ``fixed_rig``] -> ``camera_bev`` (B, C_cam, Y, X).
* ``lidar_encoder``: one sample's voxels ``voxels`` (V, P, C_pt), ``num_points`` (V,), ``coors`` (V, 4)
  int32 [0, z, y, x] (V dynamic; mmcv voxelisation stays outside) -> ``lidar_bev`` (1, C_lidar, Y, X).
* ``bev_heads``: ``camera_bev`` / ``lidar_bev`` [+ ``lidar2ego`` (B, 4, 4) with the occupancy task] ->
  (fuser, decoder -- once, or per task for a task-conditioned decoder -- and heads)
  the raw head outputs: ``det.<group>.<key>`` (B, k, Y', X') per class group and branch,
  ``map.logits`` (B, K, H, W), ``occ.logits`` (B, K, X, Y, Z). Decoding (box coder, NMS, sigmoid,
  argmax) stays outside, in the heads' own ``predict_by_*`` methods.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .bev_pool_plan import PoolPlan, planned_bev_pool

# Tasks whose head takes extra inputs beyond the shared feature, and how the graph names them.
HEAD_EXTRA_INPUTS = {"occ": ("lidar2ego",)}


def flatten_head_outputs(task: str, outputs) -> list[tuple[str, Tensor]]:
    """Named graph outputs of one head's raw forward output."""
    if task == "det":
        return [(f"det.{g}.{key}", value) for g, (group,) in enumerate(outputs) for key, value in group.items()]
    if isinstance(outputs, Tensor):
        return [(f"{task}.logits", outputs)]
    raise TypeError(f"bev_heads: cannot export the outputs of task {task!r} ({type(outputs).__name__})")


def unflatten_head_outputs(task: str, named: dict[str, Tensor], det_layout: Sequence[Sequence[str]] | None):
    """Inverse of :func:`flatten_head_outputs` (the structure the heads' decoders take)."""
    if task == "det":
        if det_layout is None:
            raise KeyError("manifest: det_layout is missing (needed to decode detection outputs)")
        return tuple([{key: named[f"det.{g}.{key}"] for key in keys}] for g, keys in enumerate(det_layout))
    return named[f"{task}.logits"]


class CameraEncoderGraph(nn.Module):
    """``model.camera_encoder`` with the plan-based BEV pooling; returns the camera BEV map only.

    Args:
        model: the :class:`MultiTaskBEVModel` (eval mode).
        plan: the rig's :class:`PoolPlan`, baked as constants (``fixed_rig``); None makes the plan's
            tensors graph inputs (``PoolPlan.input_names``) after ``img``.
        num_points: frustum points per sample (N * D * fH * fW).
    """

    def __init__(self, model: nn.Module, num_points: int, plan: PoolPlan | None = None) -> None:
        super().__init__()
        self.model = model
        self.num_points = num_points
        self.fixed = plan is not None
        if plan is not None:
            for k, rows in enumerate(plan.levels):
                self.register_buffer(f"pool_level{k}", rows, persistent=False)
            self.register_buffer("pool_cells", plan.cell_rows, persistent=False)
            self.num_levels = len(plan.levels)
        self.register_buffer("_unused_index", torch.zeros(1, dtype=torch.long), persistent=False)

    def forward(self, img: Tensor, *plan_tensors: Tensor) -> Tensor:
        if self.fixed:
            levels = [getattr(self, f"pool_level{k}") for k in range(self.num_levels)]
            cells = self.pool_cells
        else:
            *levels, cells = plan_tensors
        with planned_bev_pool(list(levels), cells, self.num_points):
            bev, _ = self.model.camera_encoder(img, pool_index=self._unused_index)
        return bev


class LidarEncoderGraph(nn.Module):
    """``model.lidar_encoder`` on one sample's voxels (batch index 0 in ``coors``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, voxels: Tensor, num_points: Tensor, coors: Tensor) -> Tensor:
        return self.model.lidar_encoder(voxels, num_points, coors, 1)


class BEVHeadsGraph(nn.Module):
    """``fuse`` -> ``bev_decode`` -> ``head_forward`` of each task; outputs flattened in task order.

    Forward inputs: one (B, C_m, Y, X) map per modality in ``model.modalities`` order, then the tasks'
    extra inputs (:data:`HEAD_EXTRA_INPUTS`) in task order.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tuple(tasks)

    def extra_input_names(self) -> list[str]:
        return [name for task in self.tasks for name in HEAD_EXTRA_INPUTS.get(task, ())]

    def named_outputs(self, *inputs: Tensor) -> list[tuple[str, Tensor]]:
        """(name, tensor) of every head output, in graph output order."""
        modalities = self.model.modalities
        feats = dict(zip(modalities, inputs[: len(modalities)]))
        extras = list(inputs[len(modalities) :])
        fused = self.model.fuse(feats)
        # A task-conditioned decoder runs per task inside head_forward (task_feat); otherwise once here.
        shared = fused if getattr(self.model, "task_decoder", False) else self.model.bev_decode(fused)
        named = []
        for task in self.tasks:
            count = len(HEAD_EXTRA_INPUTS.get(task, ()))
            head_inputs, extras = extras[:count], extras[count:]
            named.extend(flatten_head_outputs(task, self.model.head_forward(task, shared, *head_inputs)))
        return named

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(value for _, value in self.named_outputs(*inputs))

    def output_names(self, *inputs: Tensor) -> list[str]:
        """Output names for the given example inputs (runs the graph once)."""
        with torch.no_grad():
            return [name for name, _ in self.named_outputs(*inputs)]
