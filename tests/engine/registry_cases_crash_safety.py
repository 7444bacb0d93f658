"""Registry cases for the crash-safety hooks of issue 27 (RNGStateHook, NonFiniteGuardHook)."""

from types import SimpleNamespace

import torch

from perception_mtl.registry import HOOKS
from perception_mtl.testing import RegistryCase


def check_rng_state_hook(hook):
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = torch.rand(3)
    hook.after_load_checkpoint(SimpleNamespace(_resume=True, cfg={}), checkpoint)
    hook.before_train(SimpleNamespace(cfg={}))
    assert torch.equal(torch.rand(3), expected)


CASES = {
    "RNGStateHook": RegistryCase(HOOKS, dict(type="RNGStateHook"), check_rng_state_hook),
}
