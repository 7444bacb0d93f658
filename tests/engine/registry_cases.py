from types import SimpleNamespace

import torch
from torch import nn

from perception_mtl.registry import HOOKS, OPTIM_WRAPPERS
from perception_mtl.testing import RegistryCase


def check_channels_last_hook(hook):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 3))
    runner = SimpleNamespace(model=model)
    for stage in (hook.before_train, hook.before_val, hook.before_test):
        model[0].weight.data = model[0].weight.data.contiguous()
        stage(runner)
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2, 4, 4)


def bfloat16_optim_wrapper_case() -> RegistryCase:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))

    def check(wrapper):
        before = [p.detach().clone() for p in model.parameters()]
        with wrapper.optim_context(model):
            out = model(torch.randn(2, 3, 8, 8))
        assert out.dtype == torch.bfloat16
        wrapper.update_params(out.float().square().mean())
        assert all(p.dtype == torch.float32 and not torch.equal(p, b) for p, b in zip(model.parameters(), before))

    cfg = dict(type="BFloat16OptimWrapper", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    return RegistryCase(OPTIM_WRAPPERS, cfg, check)


CASES = {
    "ChannelsLastHook": RegistryCase(HOOKS, dict(type="ChannelsLastHook"), check_channels_last_hook),
    "BFloat16OptimWrapper": bfloat16_optim_wrapper_case(),
}


def check_atomic_checkpoint_hook(hook):
    import os
    import tempfile

    from perception_mtl.engine.hooks.atomic_checkpoint_hook import atomic_save_checkpoint

    assert hook.interval == 1
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "epoch_1.pth")
        atomic_save_checkpoint({"meta": {"epoch": 1}}, path)
        assert torch.load(path)["meta"]["epoch"] == 1 and os.listdir(folder) == ["epoch_1.pth"]


CASES["AtomicCheckpointHook"] = RegistryCase(
    HOOKS, dict(type="AtomicCheckpointHook", interval=1), check_atomic_checkpoint_hook
)
