"""The load-balancing loss cv²(importance) + cv²(load) against hand-computed values."""

import pytest
import torch

from perception_mtl.models.moe import MoEFeedForward, cv_squared, load_balancing_loss


def test_uniform_gates_give_zero():
    assert load_balancing_loss(torch.full((8,), 3.0), torch.full((8,), 5.0)).item() == 0.0


def test_collapsed_gates_give_twice_the_expert_count():
    # All N tokens on expert 0 with weight 1 (k = 1): importance = load = (N, 0, ..., 0).
    # mean = N/E; unbiased var = N²/E  ->  cv² = E for each term.
    for experts in (2, 4, 16):
        collapsed = torch.zeros(experts)
        collapsed[0] = 10.0
        assert load_balancing_loss(collapsed, collapsed).item() == pytest.approx(2 * experts, rel=1e-6)


def test_hand_computed_partial_collapse():
    # E = 4, 6 tokens, k = 2, every token on experts {0, 1} with weights (0.75, 0.25):
    # importance = (4.5, 1.5, 0, 0): mean 1.5, unbiased var = (9 + 0 + 2.25 + 2.25) / 3 = 4.5 -> cv² = 2.
    # load = (6, 6, 0, 0): mean 3, var = 4 * 9 / 3 = 12 -> cv² = 4/3.
    loss = load_balancing_loss(torch.tensor([4.5, 1.5, 0.0, 0.0]), torch.tensor([6.0, 6.0, 0.0, 0.0]))
    assert loss.item() == pytest.approx(2.0 + 4.0 / 3.0, rel=1e-6)


def test_mask_restricts_to_a_tasks_experts():
    x = torch.tensor([2.0, 0.0, 2.0, 0.0])
    mask = torch.tensor([True, False, True, False])
    assert cv_squared(x, mask).item() == 0.0  # balanced over the two experts the task may use
    assert cv_squared(x).item() == pytest.approx(4.0 / 3.0 / 1.0, rel=1e-6)  # mean 1, var 4/3
    assert cv_squared(torch.tensor([5.0])).item() == 0.0


def _layer_with_fixed_logits(experts: int, top_k: int, logits: torch.Tensor) -> MoEFeedForward:
    """An MoE layer whose gate returns exactly ``logits`` (tokens are one-hot rows)."""
    layer = MoEFeedForward(
        logits.shape[0], 4, num_experts=experts, top_k=top_k, router=dict(type="NoisyTopKGate", noise="none")
    )
    with torch.no_grad():
        layer.router.proj.weight.copy_(logits.t())
    return layer.train()


def test_layer_loss_for_uniform_and_collapsed_routing():
    # Uniform: token i prefers expert i (k = 1) -> importance = load = 1 each -> loss 0.
    uniform = _layer_with_fixed_logits(4, 1, 5 * torch.eye(4))
    uniform(torch.eye(4))
    assert uniform.aux_loss.item() == pytest.approx(0.0, abs=1e-6)
    # Collapsed: every token prefers expert 0 -> importance = load = (4, 0, 0, 0) -> loss 2E = 8.
    logits = torch.zeros(4, 4)
    logits[:, 0] = 5.0
    collapsed = _layer_with_fixed_logits(4, 1, logits)
    collapsed(torch.eye(4))
    assert collapsed.aux_loss.item() == pytest.approx(8.0, rel=1e-5)
    # The loss accumulates over forwards until popped (one forward per task in M³ViT training).
    collapsed(torch.eye(4))
    assert collapsed.aux_loss.item() == pytest.approx(16.0, rel=1e-5)
