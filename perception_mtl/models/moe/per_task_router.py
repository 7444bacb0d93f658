"""Multi-gate routing (M³ViT ``multi_gate=True``): one noisy top-k gate per task."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .noisy_top_k_gate import NoisyTopKGate, RoutingOutput


@MODELS.register_module()
class PerTaskRouter(nn.Module):
    """One independent ``NoisyTopKGate`` per task; a token is routed by its task's gate.

    Args:
        in_dim: token width D.
        num_experts: E.
        top_k: k experts per token.
        tasks: task names, one gate each.
        gate_type: see ``NoisyTopKGate``.
        noise: see ``NoisyTopKGate``.
        noise_std: see ``NoisyTopKGate``.
        task_experts: optional task -> allowed expert ids (a static task x expert mask, as in
            M³ViT's ``regu_experts_fromtask`` or HoME's hierarchy mask); tasks not listed may use
            every expert.
    """

    task_dependent = True

    def __init__(
        self,
        in_dim: int,
        num_experts: int,
        top_k: int,
        tasks: Sequence[str] | None = None,
        gate_type: str = "top_k_softmax",
        noise: str = "learned",
        noise_std: float = 1.0,
        task_experts: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("PerTaskRouter: tasks must name at least one task")
        unknown = set(task_experts or {}) - set(tasks)
        if unknown:
            raise ValueError(f"task_experts: unknown tasks {sorted(unknown)}; tasks are {list(tasks)}")
        self.tasks = tuple(tasks)
        self.num_experts = num_experts
        self.top_k = top_k
        self.gates = nn.ModuleDict(
            {
                t: NoisyTopKGate(
                    in_dim,
                    num_experts,
                    top_k,
                    gate_type=gate_type,
                    noise=noise,
                    noise_std=noise_std,
                    allowed_experts=(task_experts or {}).get(t),
                )
                for t in self.tasks
            }
        )

    def _gate(self, task: str | None) -> NoisyTopKGate:
        if task not in self.gates:
            raise KeyError(f"PerTaskRouter: no gate for task {task!r}; tasks are {list(self.tasks)}")
        return self.gates[task]

    def forward(self, x: Tensor, task: str | None = None) -> RoutingOutput:
        """Routes (N, D) tokens of ``task`` with that task's gate."""
        return self._gate(task).route(x)

    def allowed_experts(self, task: str | None) -> list[int]:
        return self._gate(task).allowed_experts()

    def task_gate(self, task: str | None) -> NoisyTopKGate:
        """A copy of ``task``'s gate: the whole router of a single-task model."""
        return copy.deepcopy(self._gate(task))
