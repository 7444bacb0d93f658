"""BFloat16OptimWrapper outside its context and switched off (the registry case checks the bfloat16
forward inside it and the float32 update)."""

import torch
from mmengine.registry import init_default_scope
from torch import nn

from perception_mtl.registry import OPTIM_WRAPPERS


def _wrapper(model, **kwargs):
    init_default_scope("perception_mtl")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return OPTIM_WRAPPERS.build(dict(type="BFloat16OptimWrapper", optimizer=optimizer, **kwargs))


def test_only_the_training_forward_is_bfloat16():
    model = nn.Linear(3, 2)
    wrapper = _wrapper(model)
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3)).dtype == torch.bfloat16
    assert model(torch.randn(4, 3)).dtype == torch.float32  # validation / test run outside the context


def test_disabled_wrapper_is_a_plain_float32_forward():
    model = nn.Linear(3, 2)
    wrapper = _wrapper(model, enabled=False)
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3)).dtype == torch.float32
