"""Routing: top-k indices and weights against a dense reference; noise; task masks; smooth load."""

import math

import pytest
import torch

from perception_mtl.models.moe import NoisyTopKGate, PerTaskRouter, TaskConditionedRouter


def _reference_routing(logits: torch.Tensor, k: int, gate_type: str):
    """Dense reference: sort every token's logits, keep k, weight per the gate type (loops, no topk)."""
    indices, weights = [], []
    for row in logits.tolist():
        order = sorted(range(len(row)), key=lambda e: -row[e])[:k]
        if gate_type == "top_k_softmax":
            z = [math.exp(row[e] - row[order[0]]) for e in order]
            w = [v / sum(z) for v in z]
        else:
            finite = [v for v in row if v != float("-inf")]
            denom = sum(math.exp(v - max(finite)) for v in finite)
            w = [math.exp(row[e] - max(finite)) / denom for e in order]
        indices.append(order)
        weights.append(w)
    return torch.tensor(indices), torch.tensor(weights, dtype=torch.float64)


@pytest.mark.parametrize("gate_type", ["top_k_softmax", "softmax_top_k"])
@pytest.mark.parametrize("k", [1, 3])
def test_top_k_indices_and_weights_match_dense_reference(gate_type, k):
    torch.manual_seed(0)
    gate = NoisyTopKGate(12, 7, k, gate_type=gate_type, noise="learned").eval()
    with torch.no_grad():
        gate.proj.weight.normal_()  # spread logits so there are no near ties
    x = torch.randn(50, 12)
    out = gate(x)
    ref_idx, ref_w = _reference_routing(gate.proj(x).double(), k, gate_type)
    assert torch.equal(out.indices, ref_idx)
    torch.testing.assert_close(out.weights.double(), ref_w, rtol=1e-5, atol=1e-6)
    if gate_type == "top_k_softmax":
        torch.testing.assert_close(out.weights.sum(-1), torch.ones(50))
    # Without noise the load is the hard count of routed slots.
    assert torch.equal(out.load, torch.bincount(ref_idx.flatten(), minlength=7).float())


def test_noise_only_in_training_and_only_reorders_by_noise():
    torch.manual_seed(0)
    gate = NoisyTopKGate(8, 6, 2, noise="fixed", noise_std=6.0)  # std = 1 per logit
    x = torch.randn(200, 8)
    gate.eval()
    assert torch.equal(gate(x).indices, gate(x).indices)
    gate.train()
    a, b = gate(x).indices, gate(x).indices
    assert not torch.equal(a, b)  # noisy routing differs between draws
    gate.noise = "none"
    assert torch.equal(gate(x).indices, gate.eval()(x).indices)


def test_allowed_experts_are_the_only_candidates():
    torch.manual_seed(0)
    router = PerTaskRouter(8, 6, 2, tasks=("a", "b"), task_experts=dict(a=[1, 4, 5]))
    x = torch.randn(300, 8)
    router.train()
    idx_a = router(x, "a").indices
    assert set(idx_a.unique().tolist()) <= {1, 4, 5}
    assert set(router(x, "b").indices.unique().tolist()) == set(range(6))
    out = router(x, "a")
    assert out.load[[0, 2, 3]].abs().sum() == 0 and torch.isfinite(out.load).all()
    assert out.probs[:, [0, 2, 3]].abs().sum() == 0
    assert router.allowed_experts("a") == [1, 4, 5]
    with pytest.raises(ValueError, match="top_k=2"):
        PerTaskRouter(8, 6, 2, tasks=("a",), task_experts=dict(a=[3]))
    with pytest.raises(ValueError, match="unknown tasks"):
        PerTaskRouter(8, 6, 2, tasks=("a",), task_experts=dict(c=[0, 1]))
    with pytest.raises(KeyError, match="no gate for task 'c'"):
        router(x, "c")


def test_smooth_load_is_the_probability_of_being_in_the_top_k():
    """Shazeer's smooth load equals, in expectation, the hard load under the noise it models."""
    torch.manual_seed(0)
    gate = NoisyTopKGate(4, 5, 2, noise="fixed", noise_std=5.0).train()  # std 1
    x = torch.randn(64, 4)
    with torch.no_grad():
        gate.proj.weight.normal_(std=0.5)
        smooth = gate(x.repeat(400, 1)).load / 400  # 400 noise draws per token in one call
        clean = gate.proj(x)
        noisy = clean + torch.randn(4000, *clean.shape)  # 4000 noise draws at once
        hard = torch.bincount(noisy.topk(2, -1).indices.flatten(), minlength=5) / 4000
    torch.testing.assert_close(smooth, hard, rtol=0.05, atol=0.5)


def test_smooth_load_carries_gradient_to_the_learned_noise():
    torch.manual_seed(0)
    gate = NoisyTopKGate(8, 6, 2, noise="learned").train()
    with torch.no_grad():
        gate.noise_proj.weight.normal_(std=0.1)
    gate(torch.randn(32, 8)).load.square().sum().backward()
    assert gate.noise_proj.weight.grad.abs().sum() > 0 and gate.proj.weight.grad.abs().sum() > 0


def test_task_conditioned_router_routes_by_task_embedding():
    torch.manual_seed(0)
    router = TaskConditionedRouter(8, 6, 2, tasks=("a", "b"), task_embed_dim=4).eval()
    with torch.no_grad():
        router.gate.proj.weight.normal_()
    x = torch.randn(100, 8)
    out_a, out_b = router(x, "a"), router(x, "b")
    assert not torch.equal(out_a.indices, out_b.indices)  # same tokens, different task -> different experts
    emb = router.task_embedding("a").expand(100, -1)
    ref_idx, _ = _reference_routing(router.gate.proj(torch.cat([x, emb], -1)).double(), 2, "top_k_softmax")
    assert torch.equal(out_a.indices, ref_idx)
    with pytest.raises(KeyError, match="unknown task"):
        router(x, "c")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gate_type="softmax"), "gate_type"),
        (dict(noise="gumbel"), "noise"),
        (dict(top_k=7), "top_k"),
        (dict(allowed_experts=[0, 0, 1]), "distinct"),
    ],
)
def test_bad_gate_settings_name_the_key(kwargs, match):
    args = dict(in_dim=4, num_experts=6, top_k=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        NoisyTopKGate(**args)
