"""NonFiniteGuardHook: a NaN/Inf loss or gradient is named (task, loss term, parameter group), the
step is skipped or training stops, with the plain OptimWrapper and GradBalanceOptimWrapper, and a
checkpoint already written survives."""

import math
import pathlib
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import perception_mtl  # noqa: F401  (safe torch.load of MMEngine checkpoints)
from perception_mtl.engine.hooks.non_finite_guard_hook import NonFiniteGuardHook, NonFiniteTrainingError
from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing.two_modality import two_modality_net_cfg

TINY_CONFIG = pathlib.Path(__file__).resolve().parent / "configs" / "kill_resume_tiny.py"


@pytest.fixture(scope="module", autouse=True)
def _scope():
    init_default_scope("perception_mtl")


@pytest.fixture(scope="module")
def data():
    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=4, grid_size=16))
    return pseudo_collate([dataset[i] for i in range(4)])


def _model():
    torch.manual_seed(0)
    return MODELS.build(two_modality_net_cfg(branch_channels=4, shared_channels=8, norm="GN", heatmap_radius=3))


def _wrapper(kind, model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if kind == "plain":
        return OptimWrapper(optimizer)
    # monitor=True: per-task head backwards on a detached leaf (the full balancing path).
    return OPTIM_WRAPPERS.build(
        dict(
            type="GradBalanceOptimWrapper",
            optimizer=optimizer,
            balancer=dict(type="EqualWeighting"),
            tasks=("det", "map"),
            monitor=True,
        )
    )


class _Poison:
    """Makes ``det.loss_heatmap`` NaN (``loss=True``) or the gradient of one map-head parameter NaN
    (``grad=True``) while switched on."""

    def __init__(self, model):
        self.loss = self.grad = False
        det = model.heads["det"]
        original = det.loss

        def loss(*args, **kwargs):
            out = original(*args, **kwargs)
            if self.loss:
                out["loss_heatmap"] = out["loss_heatmap"] * float("nan")
            return out

        det.loss = loss
        self.param_name, param = next((n, p) for n, p in model.named_parameters() if n.startswith("heads.map."))
        param.register_hook(lambda g: g * float("inf") if self.grad else g)


class _Trainer:
    """The hook on a stand-in runner, stepping with MMEngine's own train_step."""

    def __init__(self, kind, data, **hook_kwargs):
        self.model = _model()
        self.poison = _Poison(self.model)
        self.wrapper = _wrapper(kind, self.model)
        self.hook = NonFiniteGuardHook(**hook_kwargs)
        self.runner = SimpleNamespace(model=self.model, optim_wrapper=self.wrapper, iter=0, epoch=0)
        self.hook.before_train(self.runner)
        self.data = data

    def step(self):
        self.hook.before_train_iter(self.runner, self.runner.iter)
        out = self.model.train_step(self.data, self.wrapper)
        self.runner.iter += 1
        return out

    def weights(self):
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["plain", "grad_balance"])
def test_nan_loss_is_named_skipped_then_stops(kind, data, monkeypatch):
    logged = []
    monkeypatch.setattr(
        "perception_mtl.engine.hooks.non_finite_guard_hook.print_log", lambda msg, *a, **k: logged.append(msg)
    )
    t = _Trainer(kind, data, action="skip", max_consecutive=3)
    t.step()  # a good step moves the weights
    before = t.weights()
    t.poison.loss = True
    t.step()
    t.step()
    assert _same(before, t.weights()), "a non-finite step changed the weights"
    assert all(p.grad is None or not p.grad.any() for p in t.model.parameters())
    text = "\n".join(logged)
    assert "non-finite loss at epoch 1, global iteration 2: task 'det', term det.loss_heatmap=nan" in text
    assert "step skipped (2 in a row, training stops at 3)" in text
    with pytest.raises(NonFiniteTrainingError, match=r"task 'det', term det.loss_heatmap=nan.*3 non-finite steps"):
        t.step()
    assert _same(before, t.weights())
    assert t.hook.skipped == [2, 3]


@pytest.mark.parametrize("kind", ["plain", "grad_balance"])
def test_inf_gradient_names_task_group_and_parameter(kind, data):
    t = _Trainer(kind, data, action="stop")
    before = t.weights()
    t.poison.grad = True
    with pytest.raises(NonFiniteTrainingError) as err:
        t.step()
    msg = str(err.value)
    assert "non-finite gradient at epoch 1, global iteration 1: task 'map'" in msg
    assert f"parameter group 0 (lr 0.1): {t.poison.param_name}" in msg
    assert "map.loss_bce=" in msg  # the finite loss terms of that task, for context
    assert _same(before, t.weights())


def test_a_finite_step_resets_the_count(data):
    t = _Trainer("plain", data, action="skip", max_consecutive=2)
    for poisoned in (True, False, True, False):
        t.poison.loss = poisoned
        t.step()  # never two in a row: never stops
    assert t.hook.skipped == [1, 3] and t.hook.consecutive == 0
    assert all(math.isfinite(p.sum().item()) for p in t.model.parameters())


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="action must be 'skip' or 'stop'"):
        NonFiniteGuardHook(action="continue")
    with pytest.raises(ValueError, match="max_consecutive must be >= 1"):
        NonFiniteGuardHook(max_consecutive=0)


class _PoisonFromEpoch2(Hook):
    """Turns every loss NaN from the second epoch on (for the end-to-end run)."""

    priority = "VERY_LOW"

    def before_train_epoch(self, runner):
        if runner.epoch == 1:
            poison = _Poison.__new__(_Poison)
            poison.loss = True
            det = runner.model.heads["det"]
            original = det.loss

            def loss(*args, **kwargs):
                return {k: v * float("nan") for k, v in original(*args, **kwargs).items()}

            det.loss = loss


def test_runner_stops_and_keeps_the_last_checkpoint(tmp_path):
    """The base default hooks guard a real Runner: NaN from epoch 2 stops training after 3 steps in a
    row; epoch_1.pth (written before) is untouched and finite."""
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_PoisonFromEpoch2())
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 2, global iteration 19: task 'det', term det.loss_"):
        runner.train()
    ckpt = torch.load(tmp_path / "epoch_1.pth", map_location="cpu")
    assert ckpt["meta"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert not (tmp_path / "epoch_2.pth").exists()
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
