"""Every balancing rule on small gradient matrices with hand-derived answers, plus properties.

Each rule maps the Gram matrix of task gradients G (T, D) to weights w; the combined gradient
is ``w @ G``. Cases: conflicting pairs, aligned pairs, three tasks, a zero gradient.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from perception_mtl.grad_balance import (
    DWA,
    FULLER,
    IMTLG,
    MGDA,
    CAGrad,
    EqualWeighting,
    GradNorm,
    NashMTL,
    PCGrad,
    UncertaintyWeighting,
    min_norm_weights,
)

SQRT2 = math.sqrt(2.0)


def _g(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def combine(rule, grads, losses=None):
    """(weights, combined gradient) of ``rule`` on the gradient rows ``grads``."""
    losses = torch.ones(len(grads), dtype=torch.float64) if losses is None else losses
    weights = rule(grads @ grads.T, losses).weights
    return weights, weights @ grads


def close(a, b, tol=1e-9):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), atol=tol)


def _random_grads(seed, t, d):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(t, d)))


# ---------------------------------------------------------------- MGDA / min-norm


@pytest.mark.parametrize(
    "grads, weights, point",
    [
        (_g([1, 0], [0, 1]), [0.5, 0.5], [0.5, 0.5]),  # orthogonal, equal norms
        (_g([2, 0], [0, 1]), [0.2, 0.8], [0.4, 0.8]),  # min 4w^2 + (1-w)^2 at w = 0.2
        (_g([1, 0], [-1, 0]), [0.5, 0.5], [0.0, 0.0]),  # opposite: the origin is in the hull
        (_g([1, 0], [2, 0]), [1.0, 0.0], [1.0, 0.0]),  # aligned: the shorter gradient
        (_g([1, 0], [0, 1], [1, 1]), [0.5, 0.5, 0.0], [0.5, 0.5]),  # the third lies beyond the segment
        (_g([1, 0], [0, 0]), [0.0, 1.0], [0.0, 0.0]),  # a zero gradient is the min-norm point
    ],
)
def test_mgda_hand_cases(grads, weights, point):
    w, d = combine(MGDA(), grads)
    assert close(w, weights) and close(d, point)


def test_mgda_l2_normalisation_weights_the_raw_gradients():
    # Unit gradients (1, 0), (0, 1) -> w_hat = (1/2, 1/2); raw weights w_hat / ||g|| = (1/4, 1/2).
    w, d = combine(MGDA(normalize="l2"), _g([2, 0], [0, 1]))
    assert close(w, [0.25, 0.5]) and close(d, [0.5, 0.5])


def _brute_force_min_norm(gram):
    best = np.inf
    t = len(gram)
    for r in range(1, t + 1):
        for support in itertools.combinations(range(t), r):
            s = list(support)
            kkt = np.zeros((r + 1, r + 1))
            kkt[:r, :r], kkt[:r, r], kkt[r, :r] = gram[np.ix_(s, s)], -1, 1
            w = np.linalg.lstsq(kkt, np.eye(r + 1)[r], rcond=None)[0][:r]
            if (w >= -1e-12).all():
                full = np.zeros(t)
                full[s] = w
                best = min(best, full @ gram @ full)
    return best


def test_mgda_returns_the_min_norm_point_of_the_convex_hull():
    rng = np.random.default_rng(0)
    for trial in range(200):
        t, d = int(rng.integers(2, 6)), int(rng.integers(1, 6))
        grads = rng.normal(size=(t, d))
        if trial % 4 == 0:
            grads[1] = -0.7 * grads[0]  # collinear, opposite
        if trial % 5 == 0:
            grads[-1] = 0
        gram = grads @ grads.T
        w = min_norm_weights(gram)
        assert w.min() >= 0 and abs(w.sum() - 1) < 1e-12
        assert w @ gram @ w <= _brute_force_min_norm(gram) + 1e-12
        # No point of the hull (vertices and random convex combinations) is shorter.
        others = rng.dirichlet(np.ones(t), size=64)
        assert (np.einsum("nt,ts,ns->n", others, gram, others) >= w @ gram @ w - 1e-12).all()


# ---------------------------------------------------------------- PCGrad


def test_pcgrad_conflicting_pair():
    # g1.g2 = -1: g1' = g1 + g2/2 = (0.5, 0.5); g2' = g2 + g1 = (0, 1); sum (0.5, 1.5).
    w, d = combine(PCGrad(shuffle=False), _g([1, 0], [-1, 1]))
    assert close(w, [2.0, 1.5]) and close(d, [0.5, 1.5])


def test_pcgrad_aligned_pair_and_zero_gradient_are_untouched():
    assert close(combine(PCGrad(), _g([1, 0], [1, 1]))[0], [1, 1])
    w, d = combine(PCGrad(), _g([1, 2], [0, 0]))
    assert close(w, [1, 1]) and close(d, [1, 2])


def test_pcgrad_three_tasks_in_index_order():
    # g1 meets g2 (dot -1): (0.5, 0.5, 0); g2 meets g1: (0, 1, 0); g3 conflicts with nobody.
    w, d = combine(PCGrad(shuffle=False), _g([1, 0, 0], [-1, 1, 0], [0, 0, 1]))
    assert close(w, [2.0, 1.5, 1.0]) and close(d, [0.5, 1.5, 1.0])


def test_pcgrad_removes_the_negative_component():
    rng = np.random.default_rng(1)
    for _ in range(50):
        g = torch.from_numpy(rng.normal(size=(2, 6)))
        if g[0] @ g[1] > 0:
            g[1] = -g[1]
        _, d = combine(PCGrad(), g)
        # Each projected gradient is orthogonal to the other task's gradient, so
        # d . g_i = ||g_i||^2 (1 - cos^2) >= 0: no task is made worse to first order.
        cos2 = (g[0] @ g[1]) ** 2 / (g[0] @ g[0] * (g[1] @ g[1]))
        for i in range(2):
            assert torch.isclose(d @ g[i], (g[i] @ g[i]) * (1 - cos2), rtol=1e-9)


def test_pcgrad_matches_the_vector_algorithm_of_the_paper():
    def reference(grads, orders):
        out = []
        for i, order in enumerate(orders):
            g = grads[i].clone()
            for j in order:
                dot = g @ grads[j]
                if dot < 0:
                    g = g - dot / (grads[j] @ grads[j]) * grads[j]
            out.append(g)
        return torch.stack(out).sum(0)

    for seed in range(20):
        grads = _random_grads(seed, 4, 5)
        rule = PCGrad(seed=seed)
        generator = torch.Generator().manual_seed(seed)
        orders = [torch.randperm(4, generator=generator).tolist() for _ in range(4)]
        assert close(combine(rule, grads)[1], reference(grads, orders), 1e-10)


# ---------------------------------------------------------------- IMTL-G


@pytest.mark.parametrize(
    "grads, weights",
    [
        (_g([1, 0], [0, 2]), [2 / 3, 1 / 3]),  # a2 = g1.U / (D.U) = 1 / 3
        (_g([1, 0], [-1, 1]), [2 - SQRT2, SQRT2 - 1]),  # conflicting: 1 - 2a = (3a - 1) / sqrt(2)
        (_g([1, 0, 0], [0, 2, 0], [0, 0, 3]), [6 / 11, 3 / 11, 2 / 11]),  # a_i c_i equal, sum 1
        (_g([1, 0], [0, 0]), [1.0, 0.0]),  # a zero gradient has no direction: weight 0
        (_g([1, 0], [-1, 0]), [0.5, 0.5]),  # opposite: equal projections only at the origin
    ],
)
def test_imtl_g_hand_cases(grads, weights):
    assert close(combine(IMTLG(), grads)[0], weights)


def test_imtl_g_equal_projections_on_every_unit_gradient():
    for seed in range(30):
        grads = _random_grads(seed, 2 + seed % 4, 8)
        w, d = combine(IMTLG(), grads)
        proj = grads @ d / grads.norm(dim=1)
        assert close(w.sum(), 1.0, 1e-10)
        assert torch.allclose(proj, proj[0].expand_as(proj), rtol=1e-8, atol=1e-12)


def test_imtl_g_identical_gradients():
    w, d = combine(IMTLG(), _g([1, 2], [1, 2]))
    assert close(w.sum(), 1.0) and close(d, [1, 2])


# ---------------------------------------------------------------- CAGrad


def test_cagrad_symmetric_pairs():
    # By symmetry w = (1/2, 1/2), g_w = g0 and d = (1 + c) g0; rescale=0 keeps it.
    _, d = combine(CAGrad(c=0.5, rescale=0), _g([1, 1], [-1, 1]))  # orthogonal, g0 = (0, 1)
    assert close(d, [0, 1.5], 1e-6)
    _, d = combine(CAGrad(c=0.5, rescale=0), _g([1, 0.5], [-1, 0.5]))  # conflicting, g0 = (0, 0.5)
    assert close(d, [0, 0.75], 1e-6)


def test_cagrad_asymmetric_pair_sits_on_a_vertex():
    # g1 = (1, 0), g2 = (0, 2), c = 0.5: F(w1) = 2 - 1.5 w1 + k sqrt(w1^2 + 4 (1 - w1)^2) with
    # k = 0.5 ||g0|| = 0.5 sqrt(1.25). F' < 0 on [0, 1] (its sqrt term's slope is at most k < 1.5),
    # so w = (1, 0), g_w = g1 and d = g0 + k g1 = (0.5 + k, 1); rescale=1 divides by 1.25.
    k = 0.5 * math.sqrt(1.25)
    _, d = combine(CAGrad(c=0.5, rescale=1), _g([1, 0], [0, 2]))
    assert close(d, [(0.5 + k) / 1.25, 1 / 1.25], 1e-6)


def test_cagrad_c0_is_the_mean_and_zero_gradient_is_handled():
    _, d = combine(CAGrad(c=0.0), _g([1, 0], [-3, 2]))
    assert close(d, [-1, 1])
    _, d = combine(CAGrad(c=0.5, rescale=0), _g([1, 0], [0, 0]))
    assert close(d, [0.5, 0], 1e-6)  # the min over the hull picks g_w = 0: d = g0


def test_cagrad_constraint_and_optimality():
    rng = np.random.default_rng(2)
    for seed in range(20):
        grads = _random_grads(seed, 3, 6)
        c = 0.4
        _, d = combine(CAGrad(c=c, rescale=0), grads)
        g0 = grads.mean(0)
        radius = c * g0.norm()
        assert (d - g0).norm() <= radius * (1 + 1e-6)
        # d maximises the worst task improvement min_i g_i . d over the ball ||d - g0|| <= c ||g0||.
        best = (grads @ d).min()
        dirs = torch.from_numpy(rng.normal(size=(2000, 6)))
        candidates = g0 + radius * dirs / dirs.norm(dim=1, keepdim=True)
        assert (candidates @ grads.T).min(1).values.max() <= best + 1e-6


# ---------------------------------------------------------------- Nash-MTL


def test_nash_orthogonal_cases():
    # The bargaining solution itself (max_norm=0: no scaling afterwards).
    # M = diag(1, 4): a_t^2 M_tt = 1 -> a = (1, 1/2); the update (1, 1).
    w, d = combine(NashMTL(normalize=False, ridge=0, max_norm=0), _g([1, 0], [0, 2]))
    assert close(w, [1, 0.5], 1e-9) and close(d, [1, 1], 1e-9)
    # With the authors' normalisation M / ||M||_F, a scales by ||M||_F^(1/2) = 17^(1/4).
    w, _ = combine(NashMTL(ridge=0, max_norm=0), _g([1, 0], [0, 2]))
    assert close(w, [17**0.25, 17**0.25 / 2], 1e-9)
    w, _ = combine(NashMTL(normalize=False, ridge=0, max_norm=0), _g([1, 0, 0], [0, 2, 0], [0, 0, 4]))
    assert close(w, [1, 0.5, 0.25], 1e-9)


def test_nash_bargaining_condition_and_zero_gradient():
    for seed in range(20):
        grads = _random_grads(seed, 3, 6)
        w, d = combine(NashMTL(normalize=False, ridge=0, max_norm=0), grads)
        assert (w > 0).all()
        assert torch.allclose(w * (grads @ d), torch.ones(3, dtype=torch.float64), atol=1e-9)
    w, d = combine(NashMTL(normalize=False, ridge=0, max_norm=0), _g([2, 0], [0, 0]))
    assert close(w, [0.5, 0]) and close(d, [1, 0])


def test_nash_max_norm_matches_the_reference_values():
    # TorchJD's published NashMTL example (the authors' code clips the same way): on
    # J = [[-4, 1, 1], [6, 1, 1]] the update is (0.0542, 0.7061, 0.7061), weights (0.4182, 0.2878).
    # Unclipped, the bargaining update is (0.554, 7.22, 7.22), norm 10.2.
    grads = _g([-4, 1, 1], [6, 1, 1])
    w, d = combine(NashMTL(mode="param"), grads)
    assert close(d, [0.0542, 0.7061, 0.7061], 1e-4) and close(w, [0.4182, 0.2878], 1e-4)
    assert abs(float(d.norm()) - 1.0) < 1e-12
    w_free, d_free = combine(NashMTL(max_norm=0), grads)
    assert close(d_free, [0.5539, 7.2217, 7.2217], 1e-4) and close(w, w_free / d_free.norm(), 1e-12)
    # max_norm sets the bound; an update already inside it is left alone (clip, not normalise).
    _, d = combine(NashMTL(max_norm=2.5), grads)
    assert abs(float(d.norm()) - 2.5) < 1e-12
    _, d = combine(NashMTL(max_norm=20.0), grads)
    assert close(d, d_free, 1e-12)
    with pytest.raises(ValueError, match="balancer.max_norm"):
        NashMTL(max_norm=-1)


def test_nash_max_norm_with_a_zero_gradient_task():
    # The zero task keeps weight 0. The other: M = 81 / ||M||_F = 1 -> a = 1, update (3, 0), norm 3;
    # scaled to norm 1: a = 1/3, update (1, 0).
    w, d = combine(NashMTL(), _g([3, 0], [0, 0]))
    assert close(w, [1 / 3, 0], 1e-9) and close(d, [1, 0], 1e-9)


# ---------------------------------------------------------------- loss weightings


def test_equal_and_uncertainty_weighting():
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    assert close(EqualWeighting()(None, losses).weights, [1, 1])
    rule = UncertaintyWeighting(num_tasks=2, init_log_var=[0.0, math.log(2.0)])
    out = rule(None, losses)
    assert close(out.weights, [1.0, 0.5], 1e-7)
    out.objective.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L: (1 - 2, 1 - 0.25).
    assert torch.allclose(rule.log_vars.grad, torch.tensor([-1.0, 0.75]), atol=1e-6)


def test_dwa_weights_from_the_last_two_periods():
    rule = DWA(num_tasks=2, temperature=2.0, period=1)
    ones = torch.ones(2, dtype=torch.float64)
    assert close(rule(None, torch.tensor([1.0, 1.0], dtype=torch.float64)).weights, ones)  # period 0
    assert close(rule(None, torch.tensor([0.5, 1.0], dtype=torch.float64)).weights, ones)  # one period done
    w = rule(None, torch.tensor([0.3, 0.9], dtype=torch.float64)).weights
    # r = (0.5 / 1, 1 / 1); w = 2 softmax(r / 2).
    e1, e2 = math.exp(0.25), math.exp(0.5)
    assert close(w, [2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)])


def test_gradnorm_objective_gradient_by_hand():
    rule = GradNorm(num_tasks=2, alpha=1.5)
    gram = torch.diag(torch.tensor([1.0, 9.0], dtype=torch.float64))  # norms (1, 3)
    out = rule(gram, torch.ones(2, dtype=torch.float64))
    assert close(out.weights, [1, 1])
    out.objective.backward()
    # Target = mean(w n) r^a = 2; dL/dw = (n1 sign(1 - 2), n2 sign(3 - 2)) = (-1, 3);
    # dw/dtheta = 2 (diag(p) - p p^T) with p = (1/2, 1/2) -> dL/dtheta = (-2, 2).
    assert torch.allclose(rule.logits.grad, torch.tensor([-2.0, 2.0]))


# ---------------------------------------------------------------- configuration errors


def test_modes_and_bad_values_name_the_config_key():
    with pytest.raises(ValueError, match="balancer.mode"):
        PCGrad(mode="params")
    for loss_only in (EqualWeighting, UncertaintyWeighting, DWA):
        with pytest.raises(ValueError, match="remove balancer.mode"):
            loss_only(mode="rep")
    with pytest.raises(ValueError, match="mode='rep'"):
        FULLER(mode="param")
    with pytest.raises(ValueError, match="balancer.inter"):
        FULLER(inter="nash")
    with pytest.raises(ValueError, match="balancer.inter"):
        FULLER(inter=dict(type="EqualWeighting"))
    with pytest.raises(ValueError, match="balancer.c"):
        CAGrad(c=-1)
    with pytest.raises(ValueError, match="balancer.normalize"):
        MGDA(normalize="max")
    with pytest.raises(ValueError, match="balancer.intra.target"):
        FULLER(intra="min")


def test_fuller_delegates_to_its_inter_rule():
    grads = _g([1, 0], [-1, 1])
    assert close(combine(FULLER(inter="pcgrad"), grads)[0], combine(PCGrad(), grads)[0])
    assert close(combine(FULLER(inter=dict(type="CAGrad", c=0.2)), grads)[0], combine(CAGrad(c=0.2), grads)[0])
    assert FULLER(intra=None).modality_balancer is None and FULLER().modality_balancer.target == "mean"
