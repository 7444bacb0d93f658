"""Task-routed mixture-of-experts BEV decoder: SECOND's conv stages, an MoE feed-forward over the cells
after each, SECONDFPN's merge. The driving model's M³ViT-style per-task specialisation."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from perception_mtl.registry import MODELS

from ..moe.moe_feed_forward import MoEFeedForward


@MODELS.register_module()
class MoEBEVDecoder(nn.Module):
    """BEV decoder whose convolutions are dense and shared and whose feed-forward parts are task-routed.

    Stage ``i`` is SECOND's block ``i`` (strided 3x3 convolutions, dense, shared by every task) followed
    by a residual mixture-of-experts feed-forward over the stage's cells as tokens:
    ``x + MoE(LayerNorm(x), task)``, one (B*H_i*W_i, C_i) token matrix, top-k of E experts per cell,
    routed by the task's own gate (``PerTaskRouter``). SECONDFPN then upsamples and concatenates the
    stages. The model runs this decoder once per task on the fused BEV map (the fuser output is the
    last layer all tasks share), so a single-task copy (``extract_task_model``) keeps only that task's
    gates and the experts they can reach, and computes ``k/E`` of the all-expert feed-forward.

    Args:
        backbone: an mmdet3d ``SECOND`` config (its ``blocks`` are run one by one).
        neck: an mmdet3d ``SECONDFPN`` config over the backbone's stages.
        tasks: the tasks that route (set by ``MultiTaskBEVModel``).
        num_experts: E experts per MoE layer.
        top_k: k experts per cell.
        mlp_ratio: each expert's hidden width as a multiple of the stage's channels.
        moe_stages: indices of the stages followed by an MoE layer (default: every stage).
        router: router config for ``MoEFeedForward`` (default ``PerTaskRouter``).
        dispatch: ``MoEFeedForward`` dispatch ('bucketed', 'gather' = exportable, 'dense').

    Input (B, C_in, Y, X) fused BEV map; output (B, sum(neck.out_channels), Y', X').
    """

    task_conditioned = True

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        tasks: Sequence[str],
        num_experts: int = 8,
        top_k: int = 2,
        mlp_ratio: float = 1.0,
        moe_stages: Sequence[int] | None = None,
        router: dict | None = None,
        dispatch: str = "bucketed",
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("MoEBEVDecoder: tasks must name at least one task (MultiTaskBEVModel fills them in)")
        self.tasks = tuple(tasks)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        channels = list(backbone["out_channels"])
        stages = range(len(channels)) if moe_stages is None else [int(i) for i in moe_stages]
        bad = [i for i in stages if not 0 <= i < len(channels)]
        if bad:
            raise ValueError(f"MoEBEVDecoder: moe_stages {bad} outside the backbone's {len(channels)} stages")
        self.moe_stages = tuple(sorted(set(stages)))
        self.norms = nn.ModuleDict({str(i): nn.LayerNorm(channels[i]) for i in self.moe_stages})
        self.moes = nn.ModuleDict(
            {
                str(i): MoEFeedForward(
                    channels[i],
                    max(1, round(channels[i] * mlp_ratio)),
                    num_experts=num_experts,
                    top_k=top_k,
                    tasks=self.tasks,
                    router=router,
                    dispatch=dispatch,
                )
                for i in self.moe_stages
            }
        )

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        """Args: x (B, C_in, Y, X); task: the routing task. Returns the merged (B, C_out, Y', X') map."""
        outs = []
        for i, block in enumerate(self.backbone.blocks):
            x = block(x)
            key = str(i)
            if key in self.moes:
                cells = x.permute(0, 2, 3, 1)  # (B, H, W, C): one token per BEV cell
                x = x + self.moes[key](self.norms[key](cells), task).permute(0, 3, 1, 2)
            outs.append(x)
        out = self.neck(outs)
        return out[0] if isinstance(out, (list, tuple)) else out
