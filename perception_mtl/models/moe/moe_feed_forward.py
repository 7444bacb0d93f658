"""Task-conditioned mixture-of-experts feed-forward layer (M³ViT's MoE MLP), usable in any block."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .balance_loss import load_balancing_loss
from .expert_bank import ExpertBank

DISPATCH_MODES = ("bucketed", "gather", "dense")


@MODELS.register_module()
class MoEFeedForward(nn.Module):
    """E feed-forward experts, k per token, chosen by a (task-conditioned) router.

    Input (..., D) -> output (..., D): every leading dimension is flattened into N tokens, routed
    independently. The routing task is the ``task`` argument, else ``default_task`` (which
    ``routing_task(module, task)`` sets on every layer, so decoders that do not pass a task can
    still route by one).

    While training, each forward adds its load-balancing loss (``cv²(importance) + cv²(load)``
    over the experts the task may use) to ``aux_loss``; the model collects and clears it with
    ``pop_moe_aux_loss``. While training, or when ``track_stats`` is set, per-task statistics
    accumulate in non-persistent buffers (read with ``read_moe_stats``): routed token slots per
    expert, hidden activations <= 0 per expert (the zero-activation rate: HoME's collapse signal;
    exact zeros for ReLU), and the summed gate entropy.

    Args:
        in_dim: token width D.
        hidden_dim: hidden width of each expert.
        num_experts: E.
        top_k: k experts per token.
        tasks: task names the router knows (needed by task-dependent routers).
        router: router config (``PerTaskRouter`` by default when tasks are given, else the
            task-agnostic ``NoisyTopKGate``); ``in_dim``, ``num_experts``, ``top_k`` and ``tasks``
            are filled in.
        act: expert activation ('gelu', 'silu', 'relu').
        expert_norm: per-expert output LayerNorm before mixing.
        dispatch: 'bucketed' (default), 'gather' (exportable) or 'dense' (reference).
        exportable: shorthand for ``dispatch='gather'`` (timm's ``exportable`` switch).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        num_experts: int = 16,
        top_k: int = 4,
        tasks: Sequence[str] | None = None,
        router: dict | None = None,
        act: str = "gelu",
        expert_norm: bool = False,
        dispatch: str = "bucketed",
        exportable: bool = False,
    ) -> None:
        super().__init__()
        if dispatch not in DISPATCH_MODES:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {dispatch!r}")
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")
        self.tasks = tuple(tasks or ())
        router_cfg = dict(router or dict(type="PerTaskRouter" if self.tasks else "NoisyTopKGate"))
        for key, value in dict(in_dim=in_dim, num_experts=num_experts, top_k=top_k).items():
            if router_cfg.setdefault(key, value) != value:
                raise ValueError(f"router.{key}={router_cfg[key]} disagrees with the layer's {key}={value}")
        router_cfg["tasks"] = self.tasks or None
        self.router = MODELS.build(router_cfg)
        self.experts = ExpertBank(num_experts, in_dim, hidden_dim, act=act, expert_norm=expert_norm)
        self.in_dim, self.hidden_dim = in_dim, hidden_dim
        self.num_experts, self.top_k = num_experts, top_k
        self.dispatch = "gather" if exportable else dispatch
        self.default_task: str | None = None
        self.track_stats = False
        self.aux_loss: Tensor | None = None
        # Resident experts (global ids) and the global -> local map; a pruned single-task layer
        # keeps a subset, the router still speaks global ids.
        self.register_buffer("expert_ids", torch.arange(num_experts))
        self.register_buffer("global_to_local", torch.arange(num_experts))
        self._reset_stat_buffers()

    # ----------------------------------------------------------------------------- statistics
    @property
    def stat_rows(self) -> tuple[str, ...]:
        """Row names of the statistics: one per task, plus 'all' (task=None) when routing is task-agnostic."""
        if self.router.task_dependent or len(self.tasks) == 1:
            return self.tasks
        return self.tasks + ("all",)

    def _reset_stat_buffers(self) -> None:
        rows, experts = len(self.stat_rows), len(self.expert_ids)
        device = self.expert_ids.device
        for name, shape in (
            ("stat_load", (rows, experts)),
            ("stat_zero", (rows, experts)),
            ("stat_hidden", (rows, experts)),
            ("stat_entropy", (rows,)),
            ("stat_tokens", (rows,)),
        ):
            self.register_buffer(name, torch.zeros(shape, dtype=torch.float64, device=device), persistent=False)

    def reset_stats(self) -> None:
        for name in ("stat_load", "stat_zero", "stat_hidden", "stat_entropy", "stat_tokens"):
            getattr(self, name).zero_()

    def _row(self, task: str | None) -> int:
        rows = self.stat_rows
        if task in rows:
            return rows.index(task)
        if "all" in rows:
            return rows.index("all")
        if len(rows) == 1:
            return 0
        raise KeyError(f"MoEFeedForward: no statistics row for task {task!r}; rows are {list(rows)}")

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        """Args: x (..., D) tokens; task: routing task (default ``default_task``). Returns (..., D)."""
        task = task if task is not None else self.default_task
        if self.router.task_dependent and task is None:
            raise ValueError(
                f"MoEFeedForward: router {type(self.router).__name__} needs a task; pass task=... or set one "
                "with perception_mtl.models.moe.routing_task(model, task)"
            )
        shape = x.shape
        tokens = x.reshape(-1, self.in_dim)
        routing = self.router(tokens, task)
        local = self.global_to_local[routing.indices]
        if self.training:
            importance = torch.zeros_like(routing.load).index_add(
                0, routing.indices.reshape(-1), routing.weights.reshape(-1).to(routing.load.dtype)
            )
            aux = load_balancing_loss(importance, routing.load, routing.allowed)
            self.aux_loss = aux if self.aux_loss is None else self.aux_loss + aux
        record = (self.training or self.track_stats) and self.dispatch != "gather"
        zero_counts = None
        if record:
            row = self._row(task)
            zero_counts = (self.stat_zero[row], self.stat_hidden[row])
            self._record_routing(row, local, routing.probs, routing.allowed)
        if self.dispatch == "bucketed":
            out = self.experts.bucketed(tokens, local, routing.weights, zero_counts)
        elif self.dispatch == "gather":
            out = self.experts.gather(tokens, local, routing.weights)
        else:
            out = self.experts.dense(tokens, local, routing.weights, zero_counts)
        return out.reshape(shape)

    @torch.no_grad()
    def _record_routing(self, row: int, local: Tensor, probs: Tensor, allowed: Tensor) -> None:
        self.stat_load[row] += torch.bincount(local.reshape(-1), minlength=len(self.expert_ids)).to(torch.float64)
        entropy = -torch.special.xlogy(probs, probs).sum(-1)  # nats per token; 0 log 0 = 0
        self.stat_entropy[row] += entropy.sum().double() / max(math.log(max(int(allowed.sum()), 2)), 1e-12)
        self.stat_tokens[row] += local.shape[0]

    # ----------------------------------------------------------------------------- single-task extraction
    def allowed_experts(self, task: str | None) -> list[int]:
        """Global ids of the experts ``task`` can route to (all its top-k candidates) that are resident."""
        resident = set(self.expert_ids.tolist())
        return [e for e in self.router.allowed_experts(task) if e in resident]

    def restrict_to_task(self, task: str, experts: Sequence[int] | None = None) -> None:
        """Turns this layer, in place, into ``task``'s inference layer.

        Keeps only ``task``'s gate and the listed experts (default: every expert the task can route
        to). Experts dropped beyond the task's candidates are masked in the gate, so their tokens
        go to the best kept experts instead.

        Args:
            task: the task to keep.
            experts: global ids to keep; at least ``top_k`` of them, all routable by ``task``.
        """
        candidates = self.allowed_experts(task)
        keep = sorted(candidates if experts is None else {int(e) for e in experts})
        outside = set(keep) - set(candidates)
        if outside:
            raise ValueError(f"restrict_to_task({task!r}): experts {sorted(outside)} are not routable by the task")
        gate = self.router.task_gate(task)
        if keep != candidates:
            gate.restrict_experts(keep)
        local = [self.expert_ids.tolist().index(e) for e in keep]
        self.router = gate.eval()
        self.experts = self.experts.select(local)
        device = self.expert_ids.device
        self.expert_ids = torch.as_tensor(keep, dtype=torch.long, device=device)
        g2l = torch.zeros(self.num_experts, dtype=torch.long, device=device)  # masked experts are never chosen
        g2l[self.expert_ids] = torch.arange(len(keep), device=device)
        self.global_to_local = g2l
        self.tasks = (task,)
        self.default_task = task
        self.aux_loss = None
        self._reset_stat_buffers()

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, num_experts={self.num_experts}, "
            f"resident={len(self.expert_ids)}, top_k={self.top_k}, tasks={self.tasks}, dispatch={self.dispatch!r}"
        )
