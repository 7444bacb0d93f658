import torch
from mmengine.dataset import pseudo_collate

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS, TASK_UTILS
from perception_mtl.testing import RegistryCase
from perception_mtl.testing.two_modality import two_modality_net_cfg

# Gram matrix of g1 = (1, 0), g2 = (-1, 1): a conflicting pair with hand-derived answers.
_GRAM = torch.tensor([[1.0, -1.0], [-1.0, 2.0]], dtype=torch.float64)
_LOSSES = torch.tensor([2.0, 0.5], dtype=torch.float64)


def _weights_check(expected, gram=True, atol=1e-6):
    def check(rule):
        out = rule(_GRAM if gram else None, _LOSSES)
        assert torch.allclose(out.weights, torch.tensor(expected, dtype=torch.float64), atol=atol), out.weights

    return check


def _check_uncertainty(rule):
    out = rule(None, _LOSSES)
    assert torch.allclose(out.weights, torch.ones(2, dtype=torch.float64))
    out.objective.backward()
    assert torch.allclose(rule.log_vars.grad, 1 - _LOSSES.float())  # d/ds (exp(-s) L + s) at s = 0


def _check_gradnorm(rule):
    out = rule(_GRAM, _LOSSES)
    assert torch.allclose(out.weights, torch.ones(2, dtype=torch.float64))
    out.objective.backward()
    assert rule.logits.grad[0] < 0 < rule.logits.grad[1]  # the smaller gradient norm gains weight


def _check_nash(rule):
    weights = rule(_GRAM, _LOSSES).weights
    update = weights @ torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    # Bargaining condition a_t (g_t . d) = c for every task (c = 1 with the Gram matrix normalised
    # by its norm, before the update, norm 2.30 here, is scaled to max_norm = 1).
    gains = weights * (_GRAM @ weights)
    assert torch.allclose(gains, gains[0].expand(2), atol=1e-9) and gains[0] > 0
    assert abs(float(update.norm()) - 1.0) < 1e-9


def _check_fuller(rule):
    _weights_check([2 - 2**0.5, 2**0.5 - 1])(rule)  # IMTL-G on the pair
    assert rule.modality_balancer is not None and rule.modality_balancer.target == "mean"


def _wrapper_case(wrapper_type, **extra):
    torch.manual_seed(0)
    model = MODELS.build(two_modality_net_cfg(branch_channels=4, shared_channels=8))
    if torch.cuda.is_available():  # the AMP wrapper's scaler lives on the accelerator when there is one
        model = model.cuda()
    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=2, grid_size=16))
    data = pseudo_collate([dataset[0], dataset[1]])
    cfg = dict(
        type=wrapper_type,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        balancer=dict(type="FULLER"),
        clip_grad=dict(max_norm=10.0),
        **extra,
    )

    def check(wrapper):
        before = [p.detach().clone() for p in model.parameters()]
        log_vars = model.train_step(data, wrapper)
        assert torch.isfinite(log_vars["loss"])
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        assert abs(wrapper.last_stats["grad_balance/camera_lidar_ratio.after"] - 1.0) < 1e-5

    return RegistryCase(OPTIM_WRAPPERS, cfg, check)


CASES = {
    "EqualWeighting": RegistryCase(TASK_UTILS, dict(type="EqualWeighting"), _weights_check([1, 1], gram=False)),
    "UncertaintyWeighting": RegistryCase(TASK_UTILS, dict(type="UncertaintyWeighting"), _check_uncertainty),
    "DWA": RegistryCase(TASK_UTILS, dict(type="DWA", period=5), _weights_check([1, 1], gram=False)),
    "GradNorm": RegistryCase(TASK_UTILS, dict(type="GradNorm"), _check_gradnorm),
    "MGDA": RegistryCase(TASK_UTILS, dict(type="MGDA"), _weights_check([0.6, 0.4])),  # min w^2 + ... at 0.6
    "PCGrad": RegistryCase(TASK_UTILS, dict(type="PCGrad"), _weights_check([2.0, 1.5])),
    "CAGrad": RegistryCase(TASK_UTILS, dict(type="CAGrad", c=0.0), _weights_check([0.5, 0.5])),
    "IMTLG": RegistryCase(TASK_UTILS, dict(type="IMTLG"), _weights_check([2 - 2**0.5, 2**0.5 - 1])),
    "NashMTL": RegistryCase(TASK_UTILS, dict(type="NashMTL", ridge=0.0), _check_nash),
    "FULLER": RegistryCase(TASK_UTILS, dict(type="FULLER"), _check_fuller),
    "GradBalanceOptimWrapper": _wrapper_case("GradBalanceOptimWrapper"),
    "GradBalanceAmpOptimWrapper": _wrapper_case("GradBalanceAmpOptimWrapper", loss_scale=dict(init_scale=256.0)),
}
