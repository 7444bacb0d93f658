"""What a multi-task model hands to gradient balancing: its shared feature and modality features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

# Called by the model on its modality features right before the fuser; it returns the tensors the
# fuser must consume (identity in value; gradient balancing acts on them in backward).
ModalityHook = Callable[[dict[str, Tensor]], dict[str, Tensor]]


@dataclass
class SharedFeatures:
    """Output of ``model.extract_shared(inputs, data_samples, modality_hook)``.

    Attributes:
        feat: output of the last shared layer, still in the autograd graph: one tensor, e.g. the
            BEV feature (B, C, H, W), or a list/tuple of tensors for multi-scale decoders. Every
            task head reads only this.
        modality_feats: each modality's feature as the fuser consumed it, e.g.
            ``{'camera': (B, C_cam, H, W), 'lidar': (B, C_lidar, H, W)}`` (after ``modality_hook``).
            One entry for a single-modality model; may be empty.
        aux_losses: losses computed inside the shared layers (depth supervision of a view
            transform, an MoE balance loss), namespaced like task losses (``'depth.loss_bce'``).
            They are back-propagated unweighted and are not balanced.
    """

    feat: Tensor | list[Tensor] | tuple[Tensor, ...]
    modality_feats: dict[str, Tensor] = field(default_factory=dict)
    aux_losses: dict[str, Tensor] = field(default_factory=dict)

    def feat_tensors(self) -> list[Tensor]:
        """The shared feature as a list of tensors (one element for a single tensor)."""
        return [self.feat] if isinstance(self.feat, Tensor) else list(self.feat)
