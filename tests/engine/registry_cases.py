from types import SimpleNamespace

import torch
from torch import nn

from perception_mtl.registry import HOOKS
from perception_mtl.testing import RegistryCase


def check_channels_last_hook(hook):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 3))
    runner = SimpleNamespace(model=model)
    for stage in (hook.before_train, hook.before_val, hook.before_test):
        model[0].weight.data = model[0].weight.data.contiguous()
        stage(runner)
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2, 4, 4)


CASES = {"ChannelsLastHook": RegistryCase(HOOKS, dict(type="ChannelsLastHook"), check_channels_last_hook)}
