"""BEV pooling against naive references (forward and backward) and through ONNX Runtime."""

import numpy as np
import pytest
import torch

from perception_mtl.deploy import export_onnx
from perception_mtl.models.view_transforms import bev_pool, bev_pool_cumsum, bev_pool_indices, grid_shape

XB, YB, ZB = [-8.0, 8.0, 1.0], [-6.0, 6.0, 0.5], [-2.0, 2.0, 2.0]


def random_geometry(batch=2, points=4000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # Span a bit more than the grid so some points fall outside every axis.
    lows, highs = torch.tensor([-10.0, -7.0, -3.0]), torch.tensor([10.0, 7.0, 3.0])
    return lows + (highs - lows) * torch.rand(batch, points, 3, generator=gen, dtype=torch.float64)


def loop_reference(points, feats, batch):
    """One point at a time: the definition of the pooling."""
    num_z, num_y, num_x = grid_shape(XB, YB, ZB)
    out = torch.zeros(batch, num_z, num_y, num_x, feats.shape[1], dtype=feats.dtype)
    flat = points.reshape(batch, -1, 3)
    m = flat.shape[1]
    for b in range(batch):
        for i in range(m):
            x, y, z = flat[b, i].tolist()
            ix, iy, iz = (
                int(np.floor((x - XB[0]) / XB[2])),
                int(np.floor((y - YB[0]) / YB[2])),
                int(np.floor((z - ZB[0]) / ZB[2])),
            )
            if 0 <= ix < num_x and 0 <= iy < num_y and 0 <= iz < num_z:
                out[b, iz, iy, ix] += feats[b * m + i]
    return out.reshape(-1, feats.shape[1])


def one_hot_reference(feats, index, num_cells):
    """Dense one-hot matrix product: differentiable, independent of scatter."""
    one_hot = torch.nn.functional.one_hot(index, num_cells + 1).to(feats.dtype)[:, :num_cells]
    return one_hot.T @ feats


def test_indices_and_forward_match_a_loop():
    points = random_geometry(batch=2, points=500)
    feats = torch.randn(1000, 3, dtype=torch.float64)
    index = bev_pool_indices(points, XB, YB, ZB)
    num_cells = 2 * int(np.prod(grid_shape(XB, YB, ZB)))
    assert index.dtype == torch.int64 and index.max() == num_cells and index.min() >= 0  # some are dumped
    assert torch.allclose(bev_pool(feats, index, num_cells), loop_reference(points, feats, 2))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_and_backward_match_one_hot_and_cumsum(dtype):
    points = random_geometry()
    index = bev_pool_indices(points, XB, YB, ZB)
    num_cells = 2 * int(np.prod(grid_shape(XB, YB, ZB)))
    feats = torch.randn(index.numel(), 8, dtype=dtype, requires_grad=True)
    weight = torch.randn(num_cells, 8, dtype=dtype)
    tol = dict(atol=1e-10) if dtype == torch.float64 else dict(atol=1e-4)

    outputs, grads = [], []
    for pool in (bev_pool, one_hot_reference, bev_pool_cumsum):
        out = pool(feats, index, num_cells)
        (grad,) = torch.autograd.grad((out * weight).sum(), feats)
        outputs.append(out)
        grads.append(grad)
    for out, grad in zip(outputs[1:], grads[1:]):
        assert torch.allclose(outputs[0], out, **tol)
        assert torch.allclose(grads[0], grad, **tol)
    # Dumped points get no gradient; kept points get their cell's weight.
    dumped = index == num_cells
    assert dumped.any() and torch.all(grads[0][dumped] == 0)
    assert torch.allclose(grads[0][~dumped], weight[index[~dumped]])


class _Pool(torch.nn.Module):
    def __init__(self, num_cells):
        super().__init__()
        self.num_cells = num_cells

    def forward(self, feats, index):
        return bev_pool(feats, index, self.num_cells)


def test_exports_to_onnx_and_matches_onnxruntime():
    points = random_geometry(seed=1)
    index = bev_pool_indices(points, XB, YB, ZB)
    num_cells = 2 * int(np.prod(grid_shape(XB, YB, ZB)))
    feats = torch.randn(index.numel(), 16)
    session, ops = export_onnx(
        _Pool(num_cells), (feats, index), input_names=["feats", "index"], output_names=["bev"],
        dynamic_axes={"feats": {0: "points"}, "index": {0: "points"}},
    )  # fmt: skip
    assert "NonZero" not in ops
    # A different geometry than the traced one: the graph must not have baked the indices in.
    index2 = bev_pool_indices(random_geometry(seed=2, points=3000), XB, YB, ZB)
    feats2 = torch.randn(index2.numel(), 16)
    (onnx_out,) = session.run(None, {"feats": feats2.numpy(), "index": index2.numpy()})
    expected = bev_pool(feats2, index2, num_cells).numpy()
    assert np.abs(onnx_out - expected).max() < 1e-5
