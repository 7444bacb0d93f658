"""Intra-gradient (modality) balancing: branch gradient norms match the target exactly."""

import pytest
import torch

from perception_mtl.grad_balance import ModalityGradBalancer


def _branch_grads(balancer, upstream, multiplier=1.0):
    """Backpropagates ``upstream[m]`` through the balancer; returns (before, after) per branch."""
    feats = {m: torch.zeros_like(g, requires_grad=True) for m, g in upstream.items()}
    balancer.grad_multiplier = multiplier
    outs = balancer.attach(feats)
    arrived = {}
    for m, out in outs.items():
        if out is not feats[m]:
            out.register_hook(lambda g, m=m: arrived.__setitem__(m, g.clone()))
    torch.autograd.backward(list(outs.values()), list(upstream.values()))
    return arrived, {m: f.grad for m, f in feats.items()}


def _upstream(cam_norm, lidar_norm, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cam, lidar = torch.randn(2, 4, 6, 6, generator=gen), torch.randn(2, 3, 6, 6, generator=gen)
    return {"camera": cam * cam_norm / cam.norm(), "lidar": lidar * lidar_norm / lidar.norm()}


@pytest.mark.parametrize("target, expected", [("mean", 2.5), ("max", 4.0)])
def test_branch_norms_match_the_target_exactly(target, expected):
    balancer = ModalityGradBalancer(target)
    upstream = _upstream(4.0, 1.0)
    before, after = _branch_grads(balancer, upstream)
    assert torch.allclose(before["camera"], upstream["camera"])
    for m in ("camera", "lidar"):
        assert after[m].norm().item() == pytest.approx(expected, rel=1e-6)
        # Only the magnitude changes, never the direction.
        assert torch.allclose(after[m] / after[m].norm(), upstream[m] / upstream[m].norm(), atol=1e-6)
    assert balancer.last["before"].tolist() == pytest.approx([4.0, 1.0])
    assert balancer.last["after"].tolist() == pytest.approx([expected, expected])


def test_ema_target_over_iterations_in_loss_units():
    balancer = ModalityGradBalancer("ema", momentum=0.5)
    # Step 1: the EMA starts at the mean (2.5). Step 2: 0.5 * 2.5 + 0.5 * mean(2, 2) = 2.25.
    _, after = _branch_grads(balancer, _upstream(4.0, 1.0))
    assert after["camera"].norm().item() == pytest.approx(2.5, rel=1e-6)
    # Under a loss scale of 8 the backward carries 8x the gradients; the EMA stays in loss units.
    _, after = _branch_grads(balancer, _upstream(16.0, 16.0, seed=1), multiplier=8.0)
    assert balancer.ema_norm.item() == pytest.approx(2.25)
    assert after["lidar"].norm().item() == pytest.approx(8 * 2.25, rel=1e-6)


def test_one_modality_is_a_no_op():
    balancer = ModalityGradBalancer("mean")
    feats = {"lidar": torch.zeros(2, 3, requires_grad=True)}
    assert balancer.attach(feats) is feats  # nothing inserted into the graph
    assert balancer.last is None and balancer.names == []


def test_zero_branch_gradient_and_measure_only_pass_unchanged():
    upstream = _upstream(3.0, 1.0)
    upstream["lidar"] = torch.zeros_like(upstream["lidar"])
    _, after = _branch_grads(ModalityGradBalancer("mean"), upstream)
    assert torch.equal(after["camera"], upstream["camera"]) and torch.equal(after["lidar"], upstream["lidar"])
    observer = ModalityGradBalancer(target=None)
    upstream = _upstream(3.0, 1.0)
    _, after = _branch_grads(observer, upstream)
    assert torch.equal(after["camera"], upstream["camera"])
    assert observer.last["before"].tolist() == pytest.approx([3.0, 1.0])


def test_bad_target_names_the_key():
    with pytest.raises(ValueError, match="intra.target"):
        ModalityGradBalancer("median")
