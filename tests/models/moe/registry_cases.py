import logging
from types import SimpleNamespace

import torch
from mmengine.logging import MessageHub

from perception_mtl.models.moe import moe_layers
from perception_mtl.registry import HOOKS, MODELS
from perception_mtl.testing import RegistryCase

TASKS = ("det", "map")


def check_gate(gate):
    gate.train()
    out = gate(torch.randn(20, 8))
    assert out.indices.shape == out.weights.shape == (20, 2) and out.load.shape == (4,)
    (out.weights.sum() + out.load.sum()).backward()
    assert gate.proj.weight.grad.abs().sum() > 0 and gate.noise_proj.weight.grad.abs().sum() > 0


def check_task_router(router):
    router.train()
    x = torch.randn(20, 8)
    for task in TASKS:
        out = router(x, task)
        assert out.indices.shape == (20, 2) and out.probs.shape == (20, 4)
        (out.weights.sum() + out.load.sum()).backward()
    grads = [p.grad for p in router.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def check_moe_layer(layer):
    layer.train()
    x = torch.randn(2, 30, 8, requires_grad=True)
    y = layer(x, "map")
    assert y.shape == x.shape
    (y.square().mean() + layer.aux_loss).backward()
    routed = layer.stat_load.sum(0) > 0
    assert torch.equal((layer.experts.w1.grad != 0).flatten(1).any(1), routed)
    assert x.grad.abs().sum() > 0


def check_stage(stage):
    x = torch.randn(1, 8, 5, 6)
    y = stage(x, "det")
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(layer.aux_loss is not None for _, layer in moe_layers(stage))


def check_stats_hook(hook):
    layer = MODELS.build(dict(type="MoEFeedForward", in_dim=8, hidden_dim=8, num_experts=4, top_k=2, tasks=TASKS))
    hub = MessageHub.get_instance("moe_stats_hook_registry_case")
    runner = SimpleNamespace(
        model=layer, message_hub=hub, logger=logging.getLogger(__name__), iter=0, max_iters=1, epoch=0, log_dir="."
    )
    hook.before_train_epoch(runner)
    layer.train()(torch.randn(10, 8), "det")
    hook.after_train_iter(runner, 0)
    assert "train/moe.det.entropy" in hub.log_scalars


_MOE = dict(num_experts=4, top_k=2)
CASES = {
    "NoisyTopKGate": RegistryCase(MODELS, dict(type="NoisyTopKGate", in_dim=8, num_experts=4, top_k=2), check_gate),
    "PerTaskRouter": RegistryCase(
        MODELS, dict(type="PerTaskRouter", in_dim=8, num_experts=4, top_k=2, tasks=TASKS), check_task_router
    ),
    "TaskConditionedRouter": RegistryCase(
        MODELS,
        dict(type="TaskConditionedRouter", in_dim=8, num_experts=4, top_k=2, tasks=TASKS, task_embed_dim=4),
        check_task_router,
    ),
    "MoEFeedForward": RegistryCase(
        MODELS, dict(type="MoEFeedForward", in_dim=8, hidden_dim=12, tasks=TASKS, **_MOE), check_moe_layer
    ),
    "MoETransformerStage": RegistryCase(
        MODELS,
        dict(type="MoETransformerStage", in_channels=8, depth=2, num_heads=2, moe_cfg=_MOE, tasks=TASKS, window_size=4),
        check_stage,
    ),
    "MoEStatsHook": RegistryCase(HOOKS, dict(type="MoEStatsHook", interval=1), check_stats_hook),
}
