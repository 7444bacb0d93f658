"""GradBalanceOptimWrapper on a tiny two-modality model: the gradients it writes equal a brute-force
reference built from autograd per task, and it works with MMEngine's train step, clipping, AMP
loss scaling, gradient accumulation, checkpoints and clear errors."""

import copy
from unittest import mock

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS, TASK_UTILS
from perception_mtl.testing.two_modality import two_modality_net_cfg

TASKS = ("det", "map")


@pytest.fixture(scope="module", autouse=True)
def _scope():
    init_default_scope("perception_mtl")


def tiny_model(**kwargs):
    """The same tiny GroupNorm model on every call (seed 0)."""
    torch.manual_seed(0)
    cfg = dict(branch_channels=4, shared_channels=8, norm="GN", heatmap_radius=3)
    cfg.update(kwargs)
    return MODELS.build(two_modality_net_cfg(**cfg))


_DATASET = None


def batch(n=4, offset=0):
    global _DATASET
    if _DATASET is None:
        _DATASET = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=16, grid_size=16))
    return pseudo_collate([_DATASET[i] for i in range(offset, offset + n)])


def build_wrapper(model, balancing, lr=0.0, **kwargs):
    cfg = dict(
        type=kwargs.pop("type", "GradBalanceOptimWrapper"),
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        balancer=balancing,
        tasks=TASKS,
    )
    cfg.update(kwargs)
    return OPTIM_WRAPPERS.build(cfg)


def balanced_grads(model, wrapper, data):
    """Runs the balancing forward inside optim_context and the balanced backward (no step)."""
    model.zero_grad()
    with wrapper.optim_context(model):
        inputs = model.data_preprocessor(data, True)
        losses = model(**inputs, mode="loss")
    wrapper.backward(sum(v for k, v in losses.items() if "loss" in k))
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def _task_losses(losses):
    return [sum(v for k, v in losses.items() if k.startswith(f"{t}.") and "loss" in k) for t in TASKS]


def reference_grads(model, data, balancing):
    """Brute force: every task's gradient by autograd, the rule applied to their Gram matrix (float64),
    the combination back-propagated explicitly, and the modality rescaling done by hand."""
    rule = TASK_UTILS.build(copy.deepcopy(balancing))
    inputs = model.data_preprocessor(data, True)
    shared = model.extract_shared(inputs["inputs"], inputs["data_samples"])
    losses = _task_losses(model.loss_by_shared(shared.feat, inputs["data_samples"]))
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    per_task = []
    for loss in losses:
        got = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        per_task.append([torch.zeros_like(p) if g is None else g for g, p in zip(got, params)])
    rep = [torch.autograd.grad(loss, shared.feat, retain_graph=True)[0] for loss in losses]
    shared_idx = [i for i, n in enumerate(names) if not n.startswith("heads.")]
    if getattr(rule, "mode", None) == "param":
        flat = torch.stack([torch.cat([per_task[t][i].reshape(-1) for i in shared_idx]) for t in range(2)]).double()
    else:
        flat = torch.stack([g.reshape(-1) for g in rep]).double()
    gram = flat @ flat.T
    stat_losses = torch.stack([loss.detach() for loss in losses]).double()
    w = rule(gram if rule.uses_gradients else None, stat_losses).weights.float()
    head_w = w if rule.weights_heads else torch.ones(2)
    expected = {}
    for i, n in enumerate(names):
        coef = head_w if n.startswith("heads.") else w
        expected[n] = coef[0] * per_task[0][i] + coef[1] * per_task[1][i]
    balancer = rule.modality_balancer
    if balancer is not None and balancer.target is not None:
        combined = w[0] * rep[0] + w[1] * rep[1]
        feats = list(shared.modality_feats.values())
        branch = torch.autograd.grad(shared.feat, feats, combined, retain_graph=True)
        norms = torch.stack([g.norm() for g in branch])
        target = norms.mean() if balancer.target == "mean" else norms.max()
        rescaled = [g * target / g.norm() for g in branch]
        for m, g in zip(shared.modality_feats, rescaled):
            enc = [(n, p) for n, p in model.named_parameters() if n.startswith(f"encoders.{m}.")]
            for (n, _), eg in zip(
                enc, torch.autograd.grad(shared.modality_feats[m], [p for _, p in enc], g, retain_graph=True)
            ):
                expected[n] = eg
    return expected, w


BALANCERS = [
    dict(type="FULLER", inter="pcgrad", intra="mean"),
    dict(type="FULLER", inter="imtl_g", intra="max"),
    dict(type="FULLER", inter="cagrad", intra=None),
    dict(type="MGDA"),
    dict(type="MGDA", mode="param", normalize="l2"),
    dict(type="PCGrad", mode="param", shuffle=False),
    dict(type="IMTLG", mode="param"),
    dict(type="CAGrad", c=0.4),
    dict(type="NashMTL", mode="param"),
    dict(type="GradNorm"),
    dict(type="UncertaintyWeighting", init_log_var=[0.3, -0.2]),
    dict(type="DWA", period=1),
    dict(type="EqualWeighting"),
]


@pytest.mark.parametrize("balancing", BALANCERS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_combined_gradient_equals_brute_force_reference(balancing):
    model = tiny_model()
    data = batch()
    got = balanced_grads(model, build_wrapper(model, balancing), data)
    expected, weights = reference_grads(model, data, balancing)
    for name, g in got.items():
        # float32 summation order differs between the two paths: absolute noise up to ~2e-6 of the
        # tensor's largest gradient; a wrong weighting is off by whole percents.
        atol = 1e-5 * expected[name].abs().max().item()
        assert torch.allclose(g, expected[name], rtol=1e-4, atol=atol), name


def test_equal_weights_equal_the_summed_loss_with_and_without_monitoring():
    model = tiny_model()
    data = batch()
    model.zero_grad()
    inputs = model.data_preprocessor(data, True)
    sum(v for v in model(**inputs, mode="loss").values()).backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    for monitor in (False, True):
        wrapper = build_wrapper(model, dict(type="EqualWeighting"), monitor=monitor)
        got = balanced_grads(model, wrapper, data)
        assert all(torch.allclose(got[n], plain[n], rtol=1e-5, atol=1e-8) for n in plain)
        if monitor:  # task cosine and modality ratio logged, the update unchanged
            assert {"grad_balance/cos.det.map", "grad_balance/camera_lidar_ratio.before"} <= set(wrapper.last_stats)


def test_train_step_logs_statistics_through_the_message_hub():
    model = tiny_model()
    wrapper = build_wrapper(model, dict(type="FULLER"), lr=0.01)
    log_vars = model.train_step(batch(), wrapper)
    assert set(log_vars) >= {"loss", "det.loss_heatmap", "det.loss_offset", "map.loss_bce"}
    hub = MessageHub.get_current_instance()
    for key in (
        "grad_balance/grad_norm.det",
        "grad_balance/grad_norm.map",
        "grad_balance/cos.det.map",
        "grad_balance/weight.det",
        "grad_balance/modality_grad_norm.camera.before",
        "grad_balance/camera_lidar_ratio.before",
        "grad_balance/camera_lidar_ratio.after",
    ):
        assert f"train/{key}" in hub.log_scalars, key
    assert hub.get_scalar("train/grad_balance/camera_lidar_ratio.after").current() == pytest.approx(1.0)
    weights = [hub.get_scalar(f"train/grad_balance/weight.{t}").current() for t in TASKS]
    assert sum(weights) == pytest.approx(1.0)  # IMTL-G weights sum to one


def test_single_modality_model_makes_intra_balancing_a_no_op():
    data = batch()
    got = {}
    for intra in ("mean", None):
        model = tiny_model(modalities=("lidar",))
        wrapper = build_wrapper(model, dict(type="FULLER", intra=intra))
        got[intra] = balanced_grads(model, wrapper, data)
        assert not any("ratio" in k for k in wrapper.last_stats)
    assert all(torch.equal(got["mean"][n], got[None][n]) for n in got[None])


def test_clipping_sees_the_combined_gradient():
    data = batch()
    model = tiny_model()
    direction = balanced_grads(model, build_wrapper(model, dict(type="FULLER", inter="pcgrad")), data)
    total = torch.cat([g.reshape(-1) for g in direction.values()]).norm()
    wrapper = build_wrapper(model, dict(type="FULLER", inter="pcgrad"), lr=0.1, clip_grad=dict(max_norm=1e-3))
    seen = {}
    step = wrapper.optimizer.step

    def record_and_step(*args, **kwargs):
        seen.update({n: p.grad.clone() for n, p in model.named_parameters()})
        return step(*args, **kwargs)

    model.zero_grad()
    with mock.patch.object(wrapper.optimizer, "step", record_and_step):
        model.train_step(data, wrapper)
    assert total > 1e-3
    # The optimizer steps on the balanced gradient, clipped to max_norm as a whole.
    for n in direction:
        assert torch.allclose(seen[n], direction[n] * (1e-3 / total), rtol=1e-4, atol=1e-10), n
    assert torch.cat([g.reshape(-1) for g in seen.values()]).norm().item() == pytest.approx(1e-3, rel=1e-4)


class FakeScaler:
    """A GradScaler-like loss scaler with a scale we control."""

    def __init__(self, scale):
        self.value = scale

    def is_enabled(self):
        return True

    def scale(self, tensor):
        return tensor * self.value


def test_loss_scale_is_removed_before_comparing_gradients():
    data = batch()
    balancing = dict(type="FULLER", inter="imtl_g", intra="ema")
    model = tiny_model()
    plain = build_wrapper(model, balancing)
    reference = balanced_grads(model, plain, data)
    scaled_wrapper = build_wrapper(model, balancing)
    scaled_wrapper.loss_scaler = FakeScaler(1024.0)
    scaled = balanced_grads(model, scaled_wrapper, data)
    # Weights, norms and cosines are computed on unscaled gradients ...
    for key, value in plain.last_stats.items():
        assert scaled_wrapper.last_stats[key] == pytest.approx(value, rel=1e-4), key
    ema = scaled_wrapper.balancer.intra.ema_norm.item()
    assert ema == pytest.approx(plain.balancer.intra.ema_norm.item(), rel=1e-4)
    # ... while the written gradients carry the scale for the scaler to remove.
    for n in reference:
        assert torch.allclose(scaled[n], 1024.0 * reference[n], rtol=1e-4, atol=1e-6)


def test_amp_wrapper_trains_and_skips_non_finite_steps():
    """The real AMP path: on CPU bfloat16 autocast and torch's CPU GradScaler, else the GPU's."""
    model = tiny_model().to("cuda" if torch.cuda.is_available() else "cpu")
    wrapper = build_wrapper(
        model,
        dict(type="FULLER"),
        lr=0.1,
        type="GradBalanceAmpOptimWrapper",
        loss_scale=dict(init_scale=2.0**10),
        clip_grad=dict(max_norm=5.0),
    )
    assert wrapper.cast_dtype == torch.bfloat16 or torch.cuda.is_available()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train_step(batch(), wrapper)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert all(torch.isfinite(torch.tensor(v)) for v in wrapper.last_stats.values())
    assert wrapper.last_stats["grad_balance/weight.det"] + wrapper.last_stats[
        "grad_balance/weight.map"
    ] == pytest.approx(1.0)
    # A non-finite input: every gradient is NaN, the weights fall back, and the scaler skips the step.
    broken = batch()
    broken["inputs"]["camera"][0][0, 0, 0] = float("nan")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    scale = wrapper.loss_scaler.get_scale()
    model.train_step(broken, wrapper)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert wrapper.loss_scaler.get_scale() < scale
    assert "loss_scaler" in wrapper.state_dict()


@pytest.mark.gpu
def test_amp_on_gpu_matches_fp32_statistics():
    data = batch(8)
    stats = {}
    for kind, extra in (("fp32", {}), ("amp", dict(type="GradBalanceAmpOptimWrapper", dtype="float16"))):
        model = tiny_model(norm="BN").cuda()
        wrapper = build_wrapper(model, dict(type="FULLER"), lr=0.01, **extra)
        model.train_step(data, wrapper)
        stats[kind] = wrapper.last_stats
    assert stats["amp"]["grad_balance/cos.det.map"] == pytest.approx(
        stats["fp32"]["grad_balance/cos.det.map"], abs=0.05
    )
    for key in ("grad_balance/grad_norm.det", "grad_balance/grad_norm.map", "grad_balance/weight.det"):
        assert stats["amp"][key] == pytest.approx(stats["fp32"][key], rel=0.05), key


def test_gradient_accumulation_averages_balanced_gradients():
    data = batch()
    model = tiny_model()
    single = balanced_grads(model, build_wrapper(model, dict(type="FULLER")), data)
    wrapper = build_wrapper(model, dict(type="FULLER"), lr=0.0, accumulative_counts=2)
    model.zero_grad()
    model.train_step(data, wrapper)  # no step yet: half the gradient accumulated
    assert all(torch.allclose(p.grad, 0.5 * single[n], rtol=1e-4, atol=1e-8) for n, p in model.named_parameters())
    model.train_step(data, wrapper)  # step and zero_grad
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_uncertainty_weights_are_optimised_and_checkpointed():
    model = tiny_model()
    wrapper = build_wrapper(model, dict(type="UncertaintyWeighting"), lr=0.5)
    log_vars = wrapper.balancer.log_vars
    assert any(log_vars is p for group in wrapper.optimizer.param_groups for p in group["params"])
    for _ in range(3):
        model.train_step(batch(), wrapper)
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L < 0 while L > 1: s rises towards log L.
    assert (log_vars.detach() != 0).all()
    state = wrapper.state_dict()
    fresh = build_wrapper(tiny_model(), dict(type="UncertaintyWeighting"), lr=0.5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.balancer.log_vars, log_vars)
    assert fresh.optimizer.state_dict()["param_groups"][1]["params"] == state["param_groups"][1]["params"]


def test_pcgrad_and_dwa_state_survive_a_checkpoint():
    model = tiny_model()
    for balancing in (dict(type="PCGrad"), dict(type="DWA", period=1)):
        wrapper = build_wrapper(model, balancing)
        for _ in range(3):
            model.train_step(batch(), wrapper)
        fresh = build_wrapper(model, balancing)
        fresh.load_state_dict(wrapper.state_dict())
        gram = torch.tensor([[1.0, -0.5, 0.2], [-0.5, 1.0, -0.3], [0.2, -0.3, 1.0]], dtype=torch.float64)
        if balancing["type"] == "PCGrad":
            a, b = wrapper.balancer(gram, torch.ones(3)), fresh.balancer(gram, torch.ones(3))
        else:
            losses = torch.tensor([0.4, 0.7], dtype=torch.float64)
            a, b = wrapper.balancer(None, losses), fresh.balancer(None, losses)
        assert torch.equal(a.weights, b.weights)


class _NoContractModel(BaseModel):
    """An MMEngine model with only forward (no extract_shared / loss_by_shared)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 1, 1)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        return self.conv(inputs)


def test_models_without_the_contract_fail_with_the_missing_method():
    model = _NoContractModel()
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type="GradBalanceOptimWrapper",
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            balancer=dict(type="FULLER"),
        )
    )
    with pytest.raises(TypeError, match="missing method 'extract_shared'"):
        with wrapper.optim_context(model):
            pass


def test_contract_violations_and_bad_config_are_named():
    model = tiny_model()
    data = batch()
    with pytest.raises(ValueError, match="optim_wrapper.tasks"):
        model.train_step(data, build_wrapper(model, dict(type="FULLER"), tasks=("det", "occ")))
    with pytest.raises(ValueError, match="optim_wrapper.balancer.type"):
        build_wrapper(model, dict(type="NoSuchRule"))
    with pytest.raises(RuntimeError, match="nothing to back-propagate"):
        build_wrapper(model, dict(type="FULLER")).update_params(torch.zeros(()))
    # A model that skips the modality hook would silently lose intra-gradient balancing.
    original = model.extract_shared
    with mock.patch.object(model, "extract_shared", lambda i, d, modality_hook=None: original(i, d)):
        with pytest.raises(RuntimeError, match="modality_hook"):
            model.train_step(data, build_wrapper(model, dict(type="FULLER")))
    # Loss keys must say which task they belong to.
    with mock.patch.object(model, "loss_by_shared", lambda f, d: {"loss_all": f.mean()}):
        with pytest.raises(ValueError, match="namespaced by task"):
            model.train_step(data, build_wrapper(model, dict(type="PCGrad"), tasks=None))
    # The wrapper restores the model's own forward after the context.
    wrapper = build_wrapper(model, dict(type="FULLER"))
    with wrapper.optim_context(model):
        assert "forward" in model.__dict__
    assert "forward" not in model.__dict__
    assert isinstance(model(**model.data_preprocessor(data, False), mode="tensor"), dict)


def test_plain_optim_wrapper_still_trains_the_model():
    model = tiny_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert "loss" in model.train_step(batch(), wrapper)
