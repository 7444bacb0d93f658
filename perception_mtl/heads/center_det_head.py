"""Center-based 3D detection head: mmdet3d's CenterHead behind the multi-task head contract."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet3d.models.dense_heads import CenterHead
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .center_point_targets import center_point_targets
from .packed_separate_head import PackedSeparateHead


@MODELS.register_module()
class CenterDetHead(CenterHead):
    """CenterPoint head (class-group heatmaps + per-group box regression, circle NMS) for BEV features.

    mmdet3d's ``CenterHead`` does the work: per class group ("task" in mmdet3d, e.g. nuScenes'
    six groups car | truck, construction_vehicle | bus, trailer | barrier | motorcycle, bicycle |
    pedestrian, traffic_cone) a Gaussian-focal heatmap and L1 regression of centre offset, height,
    log size, (sin, cos) yaw and velocity; decoding by top-k, then circle NMS (or rotated NMS). This
    class adapts it to the multi-task model's head contract:

    * ``loss(feat, data_samples)`` -> losses keyed ``'<group>.loss_heatmap'`` / ``'<group>.loss_bbox'``
      with the group's class names (the model prefixes the task, e.g. ``'det.car.loss_heatmap'``);
    * ``predict(feat, data_samples)`` writes ``pred_instances_3d`` (``bboxes_3d``
      LiDARInstance3DBoxes (K, 9) with bottom-centre z and velocity, ``scores_3d``, ``labels_3d``)
      into each sample and returns the samples;
    * ``export_outputs(feat)`` -> a flat tuple of the raw maps for export (decoding and NMS stay
      outside the graph).

    Label order: dataset label ``i`` must be the ``i``-th name of the concatenated groups; pass
    ``class_names`` (the dataset's) to have that checked at build time.

    Args:
        class_names: the dataset's class names, checked against the groups' concatenation.
        **kwargs: ``mmdet3d.CenterHead`` arguments (``in_channels``, ``tasks``, ``bbox_coder``,
            ``common_heads``, ``separate_head``, ``loss_cls``, ``loss_bbox``, ``train_cfg``, ``test_cfg``,
            ...). The BEV input is (B, C, Y, X), rows along LiDAR y, as CenterHead's targets assume.
    """

    def __init__(self, class_names: Sequence[str] | None = None, **kwargs) -> None:
        for key in ("train_cfg", "test_cfg", "tasks", "bbox_coder"):
            if kwargs.get(key) is None:
                raise ValueError(f"heads.det.{key} is required by CenterDetHead")
        super().__init__(**kwargs)
        flat = [name for group in self.class_names for name in group]
        if class_names is not None and list(class_names) != flat:
            raise ValueError(
                f"heads.det.tasks: the class groups concatenate to {flat}, but the dataset classes are "
                f"{list(class_names)}; CenterHead maps labels by that order, so they must match"
            )
        self.group_names = ["_".join(group) for group in self.class_names]

    def init_weights(self) -> None:
        """Also initialises the per-group heads, which sit in a plain ``nn.ModuleList`` that MMEngine's
        recursive ``init_weights`` skips (mmdet3d's heatmap prior, bias -2.19, would be lost). The
        last heatmap conv then gets small weights (std 0.01), as in RetinaNet's focal-loss prior:
        with Kaiming weights the initial heatmap logits spread by several units and the first
        focal losses are in the thousands."""
        super().init_weights()
        for task_head in self.task_heads:
            task_head.init_weights()
            if isinstance(task_head, PackedSeparateHead):
                with torch.no_grad():
                    task_head.output_weight("heatmap").normal_(std=0.01)
            else:
                nn.init.normal_(task_head.heatmap[-1].weight, std=0.01)

    def forward(self, feats: Tensor | Sequence[Tensor]) -> tuple[list[dict[str, Tensor]], ...]:
        """Args: feats, the (B, C, Y, X) BEV map (or a one-element list of it). Returns CenterHead's
        raw outputs: per class group a one-element list of a dict of (B, k, Y, X) maps."""
        return super().forward([feats] if isinstance(feats, Tensor) else list(feats))

    def forward_single(self, x: Tensor) -> list[dict[str, Tensor]]:
        """CenterHead's shared conv and per-group branches; packed branches of all groups in one conv."""
        if all(isinstance(task_head, PackedSeparateHead) for task_head in self.task_heads):
            return PackedSeparateHead.forward_many(self.task_heads, self.shared_conv(x))
        return super().forward_single(x)

    def export_outputs(self, feat: Tensor) -> tuple[Tensor, ...]:
        """Raw maps as a flat tuple: for each group, heatmap (sigmoid), reg, height, dim, rot, vel."""
        outs = []
        for (group,) in self(feat):
            outs.append(group["heatmap"].sigmoid())
            outs.extend(group[key] for key in ("reg", "height", "dim", "rot", "vel") if key in group)
        return tuple(outs)

    def loss(self, feat: Tensor, data_samples: Sequence, *args, **kwargs) -> dict[str, Tensor]:
        """Losses from ``data_samples[i].gt_instances_3d`` (bboxes_3d with velocity, labels_3d)."""
        gts = [sample.gt_instances_3d for sample in data_samples]
        losses = self.loss_by_feat(self(feat), gts)
        renamed = {}
        for key, value in losses.items():
            task_id, name = key.split(".", 1)  # mmdet3d names them 'task{i}.loss_*'
            renamed[f"{self.group_names[int(task_id[4:])]}.{name}"] = value
        return renamed

    def get_targets_single(self, gt_instances_3d: InstanceData) -> tuple[list[Tensor], ...]:
        """CenterHead's targets of one sample (heatmaps, boxes, indices, masks per group), computed
        for all objects at once instead of in a Python loop over them (equal values, tested)."""
        bboxes = gt_instances_3d.bboxes_3d
        labels = gt_instances_3d.labels_3d
        boxes = torch.cat((bboxes.gravity_center, bboxes.tensor[:, 3:]), dim=1).to(labels.device)
        group_sizes = [len(group) for group in self.class_names]
        return center_point_targets(boxes, labels, group_sizes, self.train_cfg, self.norm_bbox)

    def predict(self, feat: Tensor, data_samples: Sequence, *args, **kwargs) -> list:
        """Decodes boxes into ``pred_instances_3d`` of each sample (in the input LiDAR frame)."""
        return self.predict_by_outputs(self(feat), data_samples)

    def predict_by_outputs(self, preds: Sequence[list[dict[str, Tensor]]], data_samples: Sequence) -> list:
        """Decodes raw outputs (:meth:`forward`'s per-group dicts) into ``pred_instances_3d`` of each sample;
        shared by :meth:`predict` and the ONNX Runtime runner (box decoding and NMS stay outside graphs)."""
        metas = []
        for sample in data_samples:
            meta = dict(sample.metainfo)
            meta.setdefault("box_type_3d", LiDARInstance3DBoxes)
            metas.append(meta)
        results = self.predict_by_feat(preds, metas)
        for sample, result in zip(data_samples, results):
            sample.pred_instances_3d = result
            sample.pred_instances = InstanceData()
        return list(data_samples)
