"""Expert-bucketed dispatch against the gather (exportable) and dense (reference) paths; gradients; statistics."""

import pytest
import torch

from perception_mtl.models.moe import MoEFeedForward, pop_moe_aux_loss, read_moe_stats, set_moe_dispatch


def _layer(expert_norm=False, act="gelu", **kwargs) -> MoEFeedForward:
    torch.manual_seed(0)
    layer = MoEFeedForward(16, 24, num_experts=6, top_k=2, tasks=("a", "b"), act=act, expert_norm=expert_norm, **kwargs)
    with torch.no_grad():
        for gate in layer.router.gates.values():
            gate.proj.weight.normal_()
        if expert_norm:
            layer.experts.norm_weight.normal_()
            layer.experts.norm_bias.normal_()
    return layer.eval()


def _reference(layer: MoEFeedForward, x: torch.Tensor, task: str) -> torch.Tensor:
    """Token by token, expert by expert, straight from the definition."""
    routing = layer.router(x, task)
    bank = layer.experts
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for e, w in zip(routing.indices[n].tolist(), routing.weights[n]):
            y = bank.act(x[n] @ bank.w1[e] + bank.b1[e]) @ bank.w2[e] + bank.b2[e]
            if bank.expert_norm:
                y = torch.nn.functional.layer_norm(y, (16,), bank.norm_weight[e], bank.norm_bias[e])
            out[n] += w * y
    return out


@pytest.mark.parametrize("expert_norm, act", [(False, "gelu"), (True, "silu"), (False, "relu")])
def test_all_dispatch_paths_equal_the_definition(expert_norm, act):
    layer = _layer(expert_norm, act)
    x = torch.randn(3, 11, 16)
    ref = _reference(layer, x.reshape(-1, 16), "b").reshape(x.shape)
    for dispatch in ("bucketed", "gather", "dense"):
        set_moe_dispatch(layer, dispatch)
        torch.testing.assert_close(layer(x, "b"), ref, rtol=1e-5, atol=1e-6)
    exportable = _layer(expert_norm, act, exportable=True)
    assert exportable.dispatch == "gather"


def test_gradients_reach_exactly_the_selected_experts_and_match_the_dense_path():
    layer = _layer()
    layer.train()
    layer.router.gates["a"].noise = "none"  # deterministic routing for the comparison
    x = torch.randn(2, 16, requires_grad=True)  # 2 tokens x top-2: at most 4 of the 6 experts
    selected = set(layer.router(x, "a").indices.flatten().tolist())
    assert 0 < len(selected) < 6, "the test needs some unselected experts"
    grads = {}
    for dispatch in ("bucketed", "dense"):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        set_moe_dispatch(layer, dispatch)
        layer(x, "a").square().sum().backward()
        pop_moe_aux_loss(layer)
        grads[dispatch] = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
        grads[dispatch]["x"] = x.grad.clone()
    bucketed = grads["bucketed"]
    for name in ("experts.w1", "experts.b1", "experts.w2", "experts.b2"):
        has_grad = {e for e in range(6) if bucketed[name][e].abs().sum() > 0}
        assert has_grad == selected, name
    assert bucketed["router.gates.a.proj.weight"].abs().sum() > 0  # through the combine weights
    assert "router.gates.b.proj.weight" not in bucketed  # the other task's gate is untouched
    for name, grad in bucketed.items():
        torch.testing.assert_close(grad, grads["dense"][name], rtol=1e-4, atol=1e-6)


def test_statistics_count_routed_slots_zero_activations_and_entropy():
    layer = _layer()
    layer.track_stats = True
    x = torch.randn(40, 16)
    layer(x, "a")
    routing = layer.router(x, "a")
    stats = read_moe_stats(layer, reset=True)[0]
    assert stats["rows"] == ("a", "b")
    assert torch.equal(stats["load"][0], torch.bincount(routing.indices.flatten(), minlength=6).double())
    assert stats["load"][1].sum() == 0
    bank = layer.experts
    zero = torch.zeros(6, dtype=torch.float64)
    for n, experts in enumerate(routing.indices.tolist()):
        for e in experts:
            zero[e] += ((x[n] @ bank.w1[e] + bank.b1[e]) <= 0).sum()
    assert torch.equal(stats["zero"][0], zero)
    assert torch.equal(stats["hidden"][0], stats["load"][0] * 24)
    probs = routing.probs.double()
    entropy = -(probs * probs.log()).sum(-1).sum() / torch.log(torch.tensor(6.0, dtype=torch.float64))
    assert stats["entropy"][0].item() == pytest.approx(entropy.item(), rel=1e-5)
    assert stats["tokens"][0] == 40
    assert read_moe_stats(layer)[0]["load"].sum() == 0  # reset


def test_bucketed_dispatch_runs_one_matmul_per_used_expert():
    layer = _layer()
    x = torch.randn(30, 16)
    used = len(layer.router(x, "a").indices.unique())
    calls = []
    original = torch.addmm

    def counting_addmm(*args, **kwargs):
        calls.append(args[1].shape[0])
        return original(*args, **kwargs)

    torch.addmm = counting_addmm
    try:
        layer(x, "a")
    finally:
        torch.addmm = original
    assert len(calls) == 2 * used  # two layers per expert, one call each, no all-experts product
    assert sum(calls) == 2 * 30 * 2  # every token appears in exactly k buckets


def test_task_is_required_and_routing_task_context_sets_it():
    from perception_mtl.models.moe import routing_task

    layer = _layer()
    x = torch.randn(4, 16)
    with pytest.raises(ValueError, match="needs a task"):
        layer(x)
    with routing_task(layer, "b"):
        torch.testing.assert_close(layer(x), layer(x, "b"))
    assert layer.default_task is None


def test_bad_layer_settings_name_the_key():
    with pytest.raises(ValueError, match="dispatch"):
        MoEFeedForward(8, 8, 4, 2, dispatch="loop")
    with pytest.raises(ValueError, match="router.top_k"):
        MoEFeedForward(8, 8, 4, 2, router=dict(type="NoisyTopKGate", top_k=3))
    with pytest.raises(ValueError, match="act"):
        MoEFeedForward(8, 8, 4, 2, act="tanh")
