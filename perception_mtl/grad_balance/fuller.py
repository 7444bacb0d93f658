"""FULLER-inspired multi-level gradient balancing (Huang et al., ICCV 2023)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .modality_grad_balancer import ModalityGradBalancer
from .task_weighting import Combination, TaskWeighting

# Short names for the conflict-aware rules FULLER combines task gradients with.
INTER_RULES = {"imtl_g": "IMTLG", "mgda": "MGDA", "pcgrad": "PCGrad", "cagrad": "CAGrad"}


@TASK_UTILS.register_module()
class FULLER(TaskWeighting):
    """Two-level balancing: inter-task at the last shared layer, intra-gradient per modality.

    * Inter-gradient: the task gradients with respect to the shared feature (one head backward
      per task, no backbone pass) are combined by a conflict-aware rule; the combination then
      goes through the backbone in ONE backward pass.
    * Intra-gradient: during that pass, the gradients entering the camera and LiDAR branches
      are rescaled to a common norm (``ModalityGradBalancer``), so neither modality starves.

    The paper's equations are not public (nor is its code); this follows its description
    (abstract, Fig. 2) and is labelled FULLER-inspired. Both levels are configurable.

    Args:
        inter: the rule, a short name ('imtl_g', 'mgda', 'pcgrad', 'cagrad') or a config of any
            gradient rule, e.g. ``dict(type='CAGrad', c=0.4)``. It runs in 'rep' mode.
        intra: the modality target, 'mean' (default), 'max' or 'ema', or a config
            ``dict(target='ema', momentum=0.9)``; None switches the modality balancing off.
        mode: only 'rep' (FULLER is defined at the last shared layer).
    """

    param_mode: ClassVar[bool] = False

    def __init__(
        self, inter: str | dict = "imtl_g", intra: str | dict | None = "mean", mode: str | None = None
    ) -> None:
        super().__init__(mode)
        if isinstance(inter, str):
            if inter not in INTER_RULES:
                raise ValueError(
                    f"FULLER: balancer.inter must be one of {sorted(INTER_RULES)} or a config dict, got {inter!r}"
                )
            inter = dict(type=INTER_RULES[inter])
        inter = dict(inter)
        cls = TASK_UTILS.get(inter.get("type")) if isinstance(inter.get("type"), str) else inter.get("type")
        gradient_rule = isinstance(cls, type) and issubclass(cls, TaskWeighting) and cls.uses_gradients
        if not gradient_rule or issubclass(cls, FULLER):
            raise ValueError(
                "FULLER: balancer.inter must be a gradient rule (e.g. IMTLG, MGDA, PCGrad, CAGrad), got "
                f"{inter.get('type')!r}"
            )
        if inter.setdefault("mode", "rep") != "rep":
            raise ValueError(
                f"FULLER: balancer.inter runs at the shared feature; its mode must be 'rep', got {inter['mode']!r}"
            )
        rule = TASK_UTILS.build(inter)
        self.inter = rule
        if isinstance(intra, str):
            intra = dict(target=intra)
        if intra is not None and not isinstance(intra, dict):
            raise ValueError(f"FULLER: balancer.intra must be a target name, a dict or None, got {intra!r}")
        self.intra = ModalityGradBalancer(**intra) if intra is not None else None

    @property
    def uses_losses(self) -> bool:
        return self.inter.uses_losses

    @property
    def modality_balancer(self) -> ModalityGradBalancer | None:
        return self.intra

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T) at the shared feature; losses (T,). Returns the inter rule's weights."""
        return self.inter(gram, losses)
