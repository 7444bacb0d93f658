"""Task-oriented channel scaling (M3Net's TCS): a learned per-task channel gate on the shared BEV feature."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.model import BaseModule
from timm.layers import Mlp
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class TaskChannelScaling(BaseModule):
    """``feat * max_scale * sigmoid(Linear(GELU(Linear(GlobalAvgPool(feat)))))``, one gate per task.

    Sits between the shared decoder and the heads: every task reads the same shared feature, and its
    gate (computed from that feature, per sample) rescales the channels for that task's head, so tasks
    can favour different channels of one shared map without separate decoders (M3Net's TCS; its
    ``TCSLayer`` gates transformer tokens with ``Linear(GELU(Linear(x)))``, optionally sigmoided).

    Initialisation: each gate's last Linear starts with a bias of zero and weights drawn with a small
    standard deviation (``init_std``), so every gate starts at about ``max_scale / 2``. With the default
    ``max_scale=2`` that is about 1 (within a few per cent): a head sees the shared feature as it was
    before the gate existed. This matters for staged training (M3Net trains detection alone first, then
    adds tasks and the gates): a detection head loaded from the first stage keeps its input scale, and
    the gate sits where the sigmoid's slope is largest. ``max_scale=1`` gives a plain sigmoid gate that
    starts at 0.5 and can only suppress channels. The weights are small but not zero, so every parameter
    gets a gradient from the first step (a zero last layer would leave the first one without gradient).

    Exportable for a fixed task: a mean over (Y, X), two Linear layers, GELU, sigmoid and a multiply.

    Args:
        channels: channels C of the shared feature.
        hidden_channels: width of each gate's hidden layer.
        tasks: the tasks that get a gate (the model sets them to its own ``tasks``).
        max_scale: upper bound of a gate; gates start at ``max_scale / 2``.
        init_std: standard deviation of the last Linear's initial weights.
        init_cfg: MMEngine init config; when given, it replaces the near-constant initialisation above.

    State-dict layout: ``gates.<task>.fc1`` / ``gates.<task>.fc2`` (timm ``Mlp``).
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        tasks: Sequence[str] = ("det", "map", "occ"),
        max_scale: float = 2.0,
        init_std: float = 0.01,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tasks = tuple(tasks)
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"task_scaling.tasks: name each task once, got {list(tasks)}")
        if max_scale <= 0:
            raise ValueError(f"task_scaling.max_scale must be positive, got {max_scale}")
        self.channels = channels
        self.max_scale = float(max_scale)
        self.init_std = init_std
        self.gates = nn.ModuleDict({t: Mlp(channels, hidden_channels, channels, act_layer=nn.GELU) for t in self.tasks})
        self.reset_gates()

    def reset_gates(self) -> None:
        """Each gate's last Linear: weights ~ N(0, init_std^2), bias 0 (gates start near ``max_scale / 2``)."""
        for gate in self.gates.values():
            nn.init.normal_(gate.fc2.weight, std=self.init_std)
            nn.init.zeros_(gate.fc2.bias)

    def init_weights(self) -> None:
        # A parent's init_cfg (e.g. Kaiming on every Linear) runs before this; keep the gates near max_scale / 2
        # unless this module has its own init_cfg.
        super().init_weights()
        if self.init_cfg is None:
            self.reset_gates()

    def gate(self, feat: Tensor, task: str) -> Tensor:
        """Args: feat (B, C, Y, X), task. Returns the (B, C) gate of ``task`` in (0, max_scale)."""
        if task not in self.gates:
            raise KeyError(f"task_scaling has no gate for task {task!r}; its tasks are {list(self.tasks)}")
        if feat.shape[1] != self.channels:
            raise ValueError(f"task_scaling.channels={self.channels} but the feature has {feat.shape[1]}")
        return self.gates[task](feat.mean((2, 3))).sigmoid() * self.max_scale

    def forward(self, feat: Tensor, task: str) -> Tensor:
        """Args: feat, the shared (B, C, Y, X) feature; task, a name in ``tasks``.
        Returns feat scaled per sample and channel by the task's gate, (B, C, Y, X)."""
        return feat * self.gate(feat, task)[:, :, None, None]

    def forward_all(self, feat: Tensor) -> dict[str, Tensor]:
        """``{task: forward(feat, task)}`` for every task."""
        return {t: self.forward(feat, t) for t in self.tasks}
