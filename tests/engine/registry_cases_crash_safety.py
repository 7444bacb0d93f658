"""Registry cases for the crash-safety hooks of issue 27 (RNGStateHook, NonFiniteGuardHook, BadSampleReportHook)."""

from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

from perception_mtl.registry import HOOKS
from perception_mtl.testing import RegistryCase


def check_rng_state_hook(hook):
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = torch.rand(3)
    hook.after_load_checkpoint(SimpleNamespace(_resume=True, cfg={}), checkpoint)
    hook.before_train(SimpleNamespace(cfg={}))
    assert torch.equal(torch.rand(3), expected)


class _ScaleModel(BaseModel):
    """loss = scale * w^2 (scale NaN makes the loss NaN)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, inputs, data_samples=None, mode="tensor"):
        return {"toy.loss": (inputs * self.w**2).sum()}


def check_non_finite_guard_hook(hook):
    from perception_mtl.engine import NonFiniteTrainingError

    model = _ScaleModel()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper, iter=0, epoch=0)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    model.train_step(dict(inputs=torch.tensor(1.0)), wrapper)
    assert not torch.equal(model.w.detach(), torch.ones(2))
    with pytest.raises(NonFiniteTrainingError, match="task 'toy', term toy.loss=nan"):
        model.train_step(dict(inputs=torch.tensor(float("nan"))), wrapper)


def check_bad_sample_report_hook(hook):
    import tempfile

    dataset = SimpleNamespace(bad_sample_log=None)
    work = tempfile.mkdtemp()
    runner = SimpleNamespace(train_loop=SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset)), work_dir=work)
    hook.before_train(runner)
    assert dataset.bad_sample_log == f"{work}/bad_samples_train.log"
    hook.after_train(runner)  # nothing skipped: nothing to report, no error


CASES = {
    "RNGStateHook": RegistryCase(HOOKS, dict(type="RNGStateHook"), check_rng_state_hook),
    "BadSampleReportHook": RegistryCase(HOOKS, dict(type="BadSampleReportHook"), check_bad_sample_report_hook),
    "NonFiniteGuardHook": RegistryCase(
        HOOKS, dict(type="NonFiniteGuardHook", action="stop"), check_non_finite_guard_hook
    ),
}
