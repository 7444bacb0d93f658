"""Multi-task dense image model: one backbone (e.g. ViT-MoE), one dense head per task (M³ViT setting)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from ..moe.moe_utils import moe_layers, pop_moe_aux_loss

TRUNK_MODES = ("per_task", "shared")


@MODELS.register_module()
class MultiTaskDensePredictor(BaseModel):
    """Image -> per-pixel predictions for several tasks (e.g. segmentation, depth, edges).

    ``trunk_mode`` says how the backbone runs:

    - ``'per_task'`` (M³ViT's one-by-one training): one backbone forward per task with that task
      routing the MoE layers; each head reads its own task's features. Training sums every task's
      loss (plus the balance loss) into one backward, which gives the same gradient as M³ViT's
      backward-per-task accumulation.
    - ``'shared'``: one backbone forward whose features all heads read (a dense backbone, or MoE
      layers with a task-agnostic router); a task-routed backbone is rejected. In 'per_task'
      mode a backbone that does not route by task also runs once (its features would be equal).

    Losses are namespaced by task (``seg.loss_ce``) plus ``moe.loss_balance``, the MoE layers'
    ``cv²(importance) + cv²(load)`` summed over layers and tasks, times ``moe_loss_weight``.

    Args:
        backbone: backbone config; it must expose timm's ``feature_info`` and return a list of
            (B, C_i, H_i, W_i) maps. ``tasks`` is filled in when it has a ``moe_cfg``.
        heads: task -> head config (``DenseSemSegHead``, ``DenseDepthHead``, ``DenseEdgeHead``, ...);
            ``in_channels`` is filled in from the backbone's ``feature_info``.
        tasks: the tasks to run, in order (default: the keys of ``heads``).
        trunk_mode: 'per_task' or 'shared'.
        loss_weights: task -> factor on that task's losses (default 1).
        moe_loss_weight: factor on the load-balancing loss.
        data_preprocessor: MMEngine data preprocessor config (normalises and stacks images).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        backbone: dict,
        heads: Mapping[str, dict],
        tasks: Sequence[str] | None = None,
        trunk_mode: str = "per_task",
        loss_weights: Mapping[str, float] | None = None,
        moe_loss_weight: float = 0.01,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        tasks = tuple(tasks if tasks is not None else heads)
        if not tasks:
            raise ValueError("MultiTaskDensePredictor: heads must define at least one task")
        missing = [t for t in tasks if t not in heads]
        if missing:
            raise ValueError(f"MultiTaskDensePredictor: tasks {missing} have no entry in heads {list(heads)}")
        if trunk_mode not in TRUNK_MODES:
            raise ValueError(f"MultiTaskDensePredictor: trunk_mode must be one of {TRUNK_MODES}, got {trunk_mode!r}")
        loss_weights = dict(loss_weights or {})
        unknown = set(loss_weights) - set(tasks)
        if unknown:
            raise ValueError(f"MultiTaskDensePredictor: loss_weights names unknown tasks {sorted(unknown)}")
        if moe_loss_weight < 0:
            raise ValueError(f"MultiTaskDensePredictor: moe_loss_weight must be >= 0, got {moe_loss_weight}")
        self.tasks = tasks
        self.trunk_mode = trunk_mode
        self.loss_weights = {t: float(loss_weights.get(t, 1.0)) for t in tasks}
        self.moe_loss_weight = float(moe_loss_weight)

        backbone = dict(backbone)
        if backbone.get("moe_cfg") is not None:
            backbone.setdefault("tasks", tasks)
        self.backbone = MODELS.build(backbone)
        self.task_routed = any(layer.router.task_dependent for _, layer in moe_layers(self.backbone))
        if trunk_mode == "shared" and self.task_routed:
            raise ValueError(
                "MultiTaskDensePredictor: trunk_mode='shared' runs the backbone once for all tasks, but its MoE "
                "layers route by task; use trunk_mode='per_task' or a task-agnostic router (type='NoisyTopKGate')"
            )
        channels = list(self.backbone.feature_info.channels())
        self.heads = nn.ModuleDict()
        for task in tasks:
            head = dict(heads[task])
            head.setdefault("in_channels", channels)
            self.heads[task] = MODELS.build(head)

    # ----------------------------------------------------------------------------- export boundaries
    def extract_feats(self, img: Tensor, task: str | None = None) -> list[Tensor]:
        """Backbone features (list of (B, C_i, H_i, W_i)); ``task`` routes the MoE layers in per-task mode."""
        if self.trunk_mode == "per_task" and self.task_routed:
            return self.backbone(img, task=task)
        return self.backbone(img)

    def head_forward(self, task: str, feats: Sequence[Tensor], out_size: tuple[int, int]) -> Tensor:
        """Raw output of ``task``'s head at ``out_size``: (B, K, H, W) logits, log depth or edge logits."""
        return self.heads[task](feats, out_size)

    def task_forward(self, img: Tensor, task: str) -> Tensor:
        """Normalised image (B, 3, H, W) -> ``task``'s raw output (B, K, H, W). The single-task export boundary."""
        if task not in self.heads:
            raise KeyError(f"MultiTaskDensePredictor: unknown task {task!r}; tasks are {list(self.tasks)}")
        return self.head_forward(task, self.extract_feats(img, task), img.shape[-2:])

    def keep_tasks(self, tasks: Sequence[str]) -> None:
        """Drops every head not in ``tasks`` (used by ``extract_task_model``)."""
        unknown = set(tasks) - set(self.tasks)
        if unknown:
            raise KeyError(f"MultiTaskDensePredictor: keep_tasks got unknown tasks {sorted(unknown)}")
        self.tasks = tuple(t for t in self.tasks if t in tasks)
        for task in list(self.heads):
            if task not in self.tasks:
                del self.heads[task]
        self.loss_weights = {t: self.loss_weights[t] for t in self.tasks}

    # ----------------------------------------------------------------------------- MMEngine contract
    def _task_features(self, img: Tensor) -> Iterator[tuple[str, list[Tensor]]]:
        if self.trunk_mode == "per_task" and self.task_routed:
            for task in self.tasks:
                yield task, self.backbone(img, task=task)
        else:
            feats = self.extract_feats(img)
            for task in self.tasks:
                yield task, feats

    def forward(
        self,
        inputs: Tensor | Sequence[Tensor],
        data_samples: Sequence[BaseDataElement] | None = None,
        mode: str = "tensor",
    ) -> dict[str, Tensor] | Sequence[BaseDataElement]:
        """Args: inputs (B, 3, H, W) normalised images (or a list of (3, H, W)). Returns per ``mode``:
        'tensor' task -> raw head output; 'loss' a loss dict; 'predict' the samples with
        ``pred_sem_seg`` / ``pred_depth`` / ``pred_edge`` as the heads define."""
        img = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
        img = img.float()
        out_size = tuple(img.shape[-2:])
        if mode == "tensor":
            return {task: self.head_forward(task, feats, out_size) for task, feats in self._task_features(img)}
        if mode == "loss":
            if data_samples is None:
                raise ValueError("MultiTaskDensePredictor: mode='loss' needs data_samples with the targets")
            return self.loss(img, data_samples)
        if mode == "predict":
            samples = data_samples if data_samples is not None else [BaseDataElement() for _ in range(len(img))]
            for task, feats in self._task_features(img):
                self.heads[task].predict(feats, samples, out_size)
            return samples
        raise ValueError(f"MultiTaskDensePredictor: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")

    def loss(self, img: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Every task's losses (``<task>.<loss>``) and the MoE balance loss (``moe.loss_balance``)."""
        pop_moe_aux_loss(self.backbone)  # drop anything left over from a forward outside this loss
        losses = {}
        out_size = tuple(img.shape[-2:])
        for task, feats in self._task_features(img):
            for name, value in self.heads[task].loss(feats, data_samples, out_size).items():
                losses[f"{task}.{name}"] = value * self.loss_weights[task]
        aux = pop_moe_aux_loss(self.backbone)
        if aux is not None:
            losses["moe.loss_balance"] = aux * self.moe_loss_weight
        return losses
