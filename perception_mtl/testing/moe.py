"""Test helper for models with MoE layers: gradients must reach exactly the experts that were routed to.

``perception_mtl.testing.check_model_trains`` asks for a gradient on every parameter, which an MoE
model cannot give: an expert that no token chose in the batch has no gradient, by design. This
check asks for exactly that instead.
"""

from __future__ import annotations

import torch
from torch import nn

from perception_mtl.models.moe.moe_feed_forward import MoEFeedForward
from perception_mtl.models.moe.moe_utils import moe_layers, reset_moe_stats

_EXPERT_PARAMS = ("w1", "b1", "w2", "b2", "norm_weight", "norm_bias")


def check_moe_model_trains(model: nn.Module, batch: dict, loss_key: str = "loss") -> dict:
    """Runs ``mode='loss'`` on a batch, backpropagates and checks the gradients.

    Every parameter outside the expert banks must get a non-zero gradient; inside an expert bank,
    an expert's slices must be non-zero if and only if some token was routed to it (read from the
    layer's routing statistics). Returns the loss dict.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    reset_moe_stats(model)
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode="loss")
    total = sum(v.sum() for k, v in losses.items() if loss_key in k)
    assert torch.isfinite(total), f"non-finite loss: {losses}"
    total.backward()
    layers = moe_layers(model)
    assert layers, "the model has no MoE layer; use perception_mtl.testing.check_model_trains"
    expert_params = {}
    for name, layer in layers:
        for pname in _EXPERT_PARAMS:
            if hasattr(layer.experts, pname):
                expert_params[f"{name}.experts.{pname}"] = (layer, getattr(layer.experts, pname))
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and name not in expert_params and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert not missing, f"parameters without gradient: {missing}"
    for name, (layer, param) in expert_params.items():
        routed = _routed_experts(layer)
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        has_grad = (grad != 0).flatten(1).any(1)
        assert torch.equal(has_grad, routed), (
            f"{name}: experts with gradient {has_grad.nonzero().flatten().tolist()} != routed "
            f"{routed.nonzero().flatten().tolist()}"
        )
    return losses


def _routed_experts(layer: MoEFeedForward) -> torch.Tensor:
    """(E_resident,) bool: experts that received at least one token since the last stats reset."""
    return (layer.stat_load.sum(0) > 0).cpu()
