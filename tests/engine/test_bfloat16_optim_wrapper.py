"""BFloat16OptimWrapper: the training forward runs in bfloat16 on the CPU, weights and the update stay float32."""

import torch
from mmengine.registry import init_default_scope
from torch import nn

from perception_mtl.registry import OPTIM_WRAPPERS


def _wrapper(model, **kwargs):
    init_default_scope("perception_mtl")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return OPTIM_WRAPPERS.build(dict(type="BFloat16OptimWrapper", optimizer=optimizer, **kwargs))


def test_forward_is_bfloat16_inside_the_context_only_and_the_step_is_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    wrapper = _wrapper(model)
    x = torch.randn(2, 3, 8, 8)
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    assert model(x).dtype == torch.float32
    wrapper.update_params(out.float().pow(2).mean())
    for p, b in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and p.grad is None  # zero_grad(set_to_none) after the step
        assert not torch.equal(p, b)


def test_disabled_wrapper_is_a_plain_float32_forward():
    model = nn.Linear(3, 2)
    wrapper = _wrapper(model, enabled=False)
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3)).dtype == torch.float32
