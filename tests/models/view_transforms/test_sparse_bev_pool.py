"""Sparse (CSR) BEV pooling against the scatter path: plan pattern, forward, both gradients (gradcheck),
real rig geometry, the geometry-keyed cache and the view transform's ``bev_pool`` switch."""

import pytest
import torch

from perception_mtl.models.view_transforms import (
    LSSDepthTransform,
    SparseBEVPoolCache,
    SparseBEVPoolPlan,
    bev_pool,
    sparse_bev_pool,
)
from perception_mtl.testing.bev import ring_calibration
from perception_mtl.testing.rig_calibration import rig_calibration

DEMO_BOUND = [-51.2, 51.2, 0.8]  # the demo configs' grid (128 x 128)


def random_case(maps=3, bins=5, hw=(2, 3), cells=7, seed=0, dtype=torch.float64):
    """Random cell index per frustum point: repeated (cell, pixel) pairs and points outside the grid."""
    gen = torch.Generator().manual_seed(seed)
    pixels_per_map = hw[0] * hw[1]
    index = torch.randint(0, cells + 1, (maps * bins * pixels_per_map,), generator=gen)  # cells = outside
    depth = torch.rand(maps, bins, *hw, generator=gen, dtype=dtype)
    context = torch.randn(maps, 4, *hw, generator=gen, dtype=dtype)
    plan = SparseBEVPoolPlan.from_index(index, maps * pixels_per_map, pixels_per_map, cells)
    return index, depth, context, plan


def scatter_reference(depth, context, index, num_cells):
    """The scatter path: build the (points, C) frustum in (maps, D, fH, fW) order and ``bev_pool`` it."""
    maps, channels = context.shape[:2]
    frustum = (depth.unsqueeze(1) * context.unsqueeze(2)).permute(0, 2, 3, 4, 1).reshape(-1, channels)
    return bev_pool(frustum, index, num_cells)


def assert_matches_scatter(depth, context, index, plan, atol=1e-12):
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(plan.num_cells, context.shape[1], dtype=context.dtype, generator=gen)
    results = []
    for pool in (lambda d, c: sparse_bev_pool(d, c, plan), lambda d, c: scatter_reference(d, c, index, plan.num_cells)):
        d, c = depth.detach().requires_grad_(), context.detach().requires_grad_()
        out = pool(d, c)
        results.append((out, *torch.autograd.grad((out * weight).sum(), (d, c))))
    for name, got, expected in zip(("forward", "depth grad", "context grad"), *results):
        assert got.shape == expected.shape, name
        assert torch.allclose(got, expected, atol=atol, rtol=0), f"{name}: max error {(got - expected).abs().max()}"
    return results[0]


def test_plan_is_the_pattern_of_the_dense_pooling_matrix():
    index, depth, _, plan = random_case(seed=3)
    num_pixels = plan.num_pixels
    bins = plan.num_points // num_pixels
    # Dense A[c, p] = sum of depth over the bins of pixel p landing in cell c, one point at a time.
    dense = torch.zeros(plan.num_cells, num_pixels, dtype=depth.dtype)
    flat = depth.reshape(-1)
    for i, cell in enumerate(index.tolist()):
        pixel = (i // (bins * 6)) * 6 + i % 6
        if cell < plan.num_cells:
            dense[cell, pixel] += flat[i]
    values = plan.pair_values(flat)
    matrix = torch.sparse_csr_tensor(plan.crow.long(), plan.col.long(), values, dense.shape, check_invariants=True)
    assert torch.equal(matrix.to_dense(), dense)
    assert plan.nnz == int((dense != 0).sum()) and plan.extra_point.numel() > 0  # repeated pairs were merged
    transposed = torch.sparse_csr_tensor(
        plan.crow_t.long(), plan.row_t.long(), values[plan.perm_t], dense.T.shape, check_invariants=True
    )
    assert torch.equal(transposed.to_dense(), dense.T)
    # Points outside the grid map to the spare slot nnz.
    assert torch.equal(plan.point_pair == plan.nnz, index == plan.num_cells)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_and_both_gradients_equal_the_scatter_path_on_random_geometry(seed):
    index, depth, context, plan = random_case(maps=4, bins=6, hw=(3, 4), cells=9, seed=seed)
    assert_matches_scatter(depth, context, index, plan)


def test_gradcheck_depth_and_context_small_case():
    _, depth, context, plan = random_case(maps=2, bins=4, hw=(2, 2), cells=5, seed=4)
    assert plan.extra_point.numel() > 0 and (plan.point_pair == plan.nnz).any()
    inputs = (depth.requires_grad_(), context.requires_grad_())
    assert torch.autograd.gradcheck(lambda d, c: sparse_bev_pool(d, c, plan), inputs)


def test_gradcheck_on_small_rig_geometry():
    # Real rig, coarse grid (6.4 m cells) so several depth bins of a pixel share a cell.
    vt = LSSDepthTransform(4, 3, [-32.0, 32.0, 6.4], [-32.0, 32.0, 6.4], [-10, 10, 20], [1, 41, 4])
    calib = rig_calibration(random_aug=True, seed=2).to(torch.float64)
    index = vt.pool_index(calib, (2, 4), (64, 176))
    plan = vt.sparse_plan(calib, (2, 4), (64, 176))
    assert torch.equal(plan.point_pair == plan.nnz, index == plan.num_cells)
    assert plan.extra_point.numel() > 0
    gen = torch.Generator().manual_seed(0)
    depth = torch.rand(6, vt.num_bins, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    context = torch.randn(6, 2, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, c: sparse_bev_pool(d, c, plan), (depth, context))
    assert_matches_scatter(depth, context, index, plan)


@pytest.mark.parametrize("random_aug", [False, True])
def test_equal_to_the_scatter_path_on_the_demo_geometry(random_aug):
    """The demo's camera pipeline (six 64x176 rig images, stride-8 maps, 59 depth bins, 0.8 m grid)."""
    vt = LSSDepthTransform(4, 24, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 1])
    calib = rig_calibration(batch=2, random_aug=random_aug).to(torch.float64)
    index = vt.pool_index(calib, (8, 22), (64, 176))
    plan = vt.sparse_plan(calib, (8, 22), (64, 176))
    assert plan.num_cells == 2 * 128 * 128 and plan.num_pixels == 2 * 6 * 8 * 22
    assert 0.3 * index.numel() < plan.nnz < index.numel()  # most points land in the grid
    gen = torch.Generator().manual_seed(0)
    depth = torch.randn(12, vt.num_bins, 8, 22, generator=gen, dtype=torch.float64).softmax(1)
    context = torch.randn(12, 24, 8, 22, generator=gen, dtype=torch.float64)
    out, _, _ = assert_matches_scatter(depth, context, index, plan, atol=1e-10)
    assert out.abs().sum() > 0
    # float32 agrees too (different summation order only).
    out32 = sparse_bev_pool(depth.float(), context.float(), plan)
    assert out32.dtype == torch.float32 and torch.allclose(out32.double(), out, atol=1e-5)


def test_all_points_outside_the_grid_give_zeros_and_zero_gradients():
    index = torch.full((2 * 3 * 4,), 10)
    plan = SparseBEVPoolPlan.from_index(index, 2 * 4, 4, 10)
    assert plan.nnz == 0
    depth = torch.rand(2, 3, 2, 2, requires_grad=True)
    context = torch.randn(2, 5, 2, 2, requires_grad=True)
    out = sparse_bev_pool(depth, context, plan)
    assert out.shape == (10, 5) and not out.any()
    out.sum().backward()
    assert not depth.grad.any() and not context.grad.any()


def test_mismatched_inputs_are_rejected():
    _, depth, context, plan = random_case()
    with pytest.raises(ValueError, match="do not match the plan"):
        sparse_bev_pool(depth[:, :-1], context, plan)


# ---------------------------------------------------------------------- cache


def test_cache_rebuilds_exactly_when_the_geometry_changes():
    cache = SparseBEVPoolCache()
    built = []

    def build():
        built.append(object())
        return built[-1]

    calib = rig_calibration(seed=0)
    first = cache.get(calib, ("hw",), build)
    assert cache.get(calib, ("hw",), build) is first
    same_values = rig_calibration(seed=0)  # new tensors, equal values
    assert cache.get(same_values, ("hw",), build) is first and (cache.hits, cache.misses) == (2, 1)
    for field in ("cam2img", "lidar2cam", "img_aug", "lidar_aug"):
        moved = rig_calibration(seed=0)
        getattr(moved, field)[0, ..., 0, 0] += 1e-3
        assert cache.get(moved, ("hw",), build) is built[-1] is not first, field
    assert cache.get(calib, ("other hw",), build) is built[-1] is not first
    assert cache.misses == 6 and len(cache) == 1  # one entry kept by default
    with pytest.raises(ValueError):
        SparseBEVPoolCache(max_entries=0)


def test_cache_keeps_its_own_copy_of_the_matrices():
    cache = SparseBEVPoolCache()
    calib = rig_calibration(seed=0)
    first = cache.get(calib, (), lambda: object())
    calib.lidar2cam[0, 0, 0, 3] += 1.0  # edited in place: must not look like the cached geometry
    assert cache.get(calib, (), lambda: object()) is not first


def test_view_transform_recomputes_the_plan_when_the_calibration_changes_and_follows_it():
    torch.manual_seed(0)
    vt = LSSDepthTransform(8, 4, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 2], bev_pool="sparse").eval()
    feats = torch.randn(1, 6, 8, 8, 22)
    calib = rig_calibration(seed=0)
    with torch.no_grad():
        bev_a, _ = vt(feats, calib, (64, 176))
        plan_a = vt.sparse_cache.get(calib, ((8, 22), (64, 176)), lambda: None)
        assert (vt.sparse_cache.misses, vt.sparse_cache.hits) == (1, 1)
        vt(feats, calib, (64, 176))
        assert vt.sparse_cache.misses == 1  # same geometry: re-used
        moved = rig_calibration(seed=0)
        moved.lidar2cam[..., :3, 3] += torch.tensor([0.0, 0.0, 5.0])  # the rig slides 5 m along each camera axis
        bev_b, _ = vt(feats, moved, (64, 176))
        assert vt.sparse_cache.misses == 2
        assert vt.sparse_plan(moved, (8, 22), (64, 176)) is not plan_a
        vt.bev_pool = "scatter"
        ref_b, _ = vt(feats, moved, (64, 176))
    assert torch.allclose(bev_b, ref_b, atol=1e-5) and not torch.allclose(bev_b, bev_a, atol=1e-3)


# ---------------------------------------------------------------------- config switch


@pytest.mark.parametrize("path, tol", [("sparse", 1e-5), ("cumsum", 1e-4)])  # cumsum: float32 running sums
def test_view_transform_switch_gives_the_scatter_result_and_gradients(path, tol):
    kwargs = dict(in_channels=8, out_channels=4, xbound=DEMO_BOUND, ybound=DEMO_BOUND, zbound=[-10, 10, 20])
    kwargs.update(dbound=[1, 60, 2])
    torch.manual_seed(0)
    reference = LSSDepthTransform(**kwargs).train()
    other = LSSDepthTransform(**kwargs, bev_pool=path).train()
    other.load_state_dict(reference.state_dict())
    assert reference.bev_pool == "scatter" and other.bev_pool == path
    feats = torch.randn(2, 6, 8, 8, 22)
    calib = rig_calibration(batch=2, random_aug=True)
    outputs, grads = [], []
    for vt in (reference, other):
        bev, depth_logits = vt(feats, calib, (64, 176))
        (bev.square().sum() + depth_logits.sum()).backward()
        outputs.append(bev)
        grads.append([p.grad.clone() for p in vt.parameters()])

    def close(a, b):  # relative to the tensor scale
        return (a - b).abs().max() <= tol * a.abs().max()

    assert close(*outputs)
    assert all(close(g_ref, g_other) for g_ref, g_other in zip(*grads))
    assert (other.sparse_cache.misses == 1) == (path == "sparse")


@pytest.mark.parametrize("path", ["scatter", "sparse", "cumsum"])
def test_every_switch_takes_the_scatter_path_for_an_explicit_pool_index(path, monkeypatch):
    """The export boundary passes pool_index and may swap the module-level ``bev_pool`` (perception_mtl.deploy)."""
    from perception_mtl.models.view_transforms import lss_depth_transform

    calls = []

    def counting_bev_pool(*args):
        calls.append(args[2])
        return bev_pool(*args)

    monkeypatch.setattr(lss_depth_transform, "bev_pool", counting_bev_pool)
    vt = LSSDepthTransform(8, 4, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 2], bev_pool=path).eval()
    calib = ring_calibration(image_hw=(64, 176))
    feats = torch.randn(1, 6, 8, 8, 22)
    index = vt.pool_index(calib, (8, 22), (64, 176))
    with torch.no_grad():
        by_index, _ = vt(feats, pool_index=index)
        assert calls == [128 * 128] and vt.sparse_cache.misses == 0  # no plan built
        by_calib, _ = vt(feats, calib, (64, 176))
    assert len(calls) == (2 if path == "scatter" else 1)
    assert vt.sparse_cache.misses == (1 if path == "sparse" else 0)
    assert (by_index - by_calib).abs().max() <= 1e-4 * by_index.abs().max()  # cumsum: float32 running sums


def test_unknown_bev_pool_is_rejected():
    with pytest.raises(ValueError, match="bev_pool"):
        LSSDepthTransform(8, 4, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 2], bev_pool="cuda")


def test_sparse_switch_runs_under_bfloat16_autocast():
    # MKL's sparse product has no bfloat16: the Function computes in float32 and returns the context dtype.
    torch.manual_seed(0)
    sparse = LSSDepthTransform(8, 4, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 2], bev_pool="sparse")
    scatter = LSSDepthTransform(8, 4, DEMO_BOUND, DEMO_BOUND, [-10, 10, 20], [1, 60, 2])
    scatter.load_state_dict(sparse.state_dict())
    feats = torch.randn(2, 6, 8, 8, 22)
    calib = rig_calibration(batch=2, random_aug=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bev, _ = sparse(feats, calib, (64, 176))
        ref, _ = scatter(feats, calib, (64, 176))
    assert bev.dtype == ref.dtype == torch.bfloat16
    assert (bev.float() - ref.float()).abs().max() <= 2e-2 * ref.float().abs().max()
    bev.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in sparse.parameters())
