"""Task-conditioned routing (M³ViT's alternative): one shared gate over ``concat(token, task embedding)``."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .noisy_top_k_gate import NoisyTopKGate, RoutingOutput, task_expert_masks


@MODELS.register_module()
class TaskConditionedRouter(nn.Module):
    """A single gate shared by all tasks, conditioned on a learned task embedding.

    The embedding is ``LayerNorm(MLP(one_hot(task)))`` (M³ViT's ``gate_task_represent``); the gate
    reads ``concat(token, embedding)``, so its input width is ``in_dim + task_embed_dim``.

    Args:
        in_dim: token width D.
        num_experts: E.
        top_k: k experts per token.
        tasks: task names.
        task_embed_dim: width of the task embedding.
        gate_type: see ``NoisyTopKGate``.
        noise: see ``NoisyTopKGate``.
        noise_std: see ``NoisyTopKGate``.
        task_experts: optional task -> allowed expert ids (static task x expert mask).
    """

    task_dependent = True

    def __init__(
        self,
        in_dim: int,
        num_experts: int,
        top_k: int,
        tasks: Sequence[str] | None = None,
        task_embed_dim: int = 64,
        gate_type: str = "top_k_softmax",
        noise: str = "learned",
        noise_std: float = 1.0,
        task_experts: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("TaskConditionedRouter: tasks must name at least one task")
        if task_embed_dim < 1:
            raise ValueError(f"router.task_embed_dim must be >= 1, got {task_embed_dim}")
        self.tasks = tuple(tasks)
        self.num_experts = num_experts
        self.top_k = top_k
        self.task_embed = nn.Sequential(
            nn.Linear(len(self.tasks), task_embed_dim),
            nn.GELU(),
            nn.Linear(task_embed_dim, task_embed_dim),
            nn.LayerNorm(task_embed_dim),
        )
        self.gate = NoisyTopKGate(
            in_dim,
            num_experts,
            top_k,
            gate_type=gate_type,
            noise=noise,
            noise_std=noise_std,
            bias=True,
            extra_dim=task_embed_dim,
        )
        self.register_buffer("one_hot", torch.eye(len(self.tasks)), persistent=False)
        self.register_buffer("task_masks", task_expert_masks(self.tasks, num_experts, top_k, task_experts))

    def _index(self, task: str | None) -> int:
        if task not in self.tasks:
            raise KeyError(f"TaskConditionedRouter: unknown task {task!r}; tasks are {list(self.tasks)}")
        return self.tasks.index(task)

    def task_embedding(self, task: str | None) -> Tensor:
        """(1, task_embed_dim) embedding of ``task``."""
        t = self._index(task)
        return self.task_embed(self.one_hot[t : t + 1])

    def forward(self, x: Tensor, task: str | None = None) -> RoutingOutput:
        """Routes (N, D) tokens of ``task``."""
        t = self._index(task)
        return self.gate.route(x, extra=self.task_embedding(task), logit_mask=self.task_masks[t])

    def allowed_experts(self, task: str | None) -> list[int]:
        return torch.nonzero(torch.isfinite(self.task_masks[self._index(task)])).flatten().tolist()

    def task_gate(self, task: str | None) -> NoisyTopKGate:
        """The shared gate with ``task``'s embedding and expert mask frozen in.

        The embedding is stored, not folded into the bias, so the gate computes exactly the same
        ``concat(token, embedding) @ W`` as the full router (outputs stay bit-identical).
        """
        t = self._index(task)
        gate = copy.deepcopy(self.gate)
        with torch.no_grad():
            gate.extra_input = self.task_embedding(task)[0].detach().clone()
            gate.logit_mask.copy_(self.task_masks[t])
        return gate
