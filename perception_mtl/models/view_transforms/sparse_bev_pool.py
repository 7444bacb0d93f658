"""BEV pooling as a precomputed CSR-sparse product (BEVPoolv2's idea, in pure PyTorch).

In LSS the BEV feature of cell ``c`` is ``sum over frustum points (p, d) in c of depth[p, d] * context[p]``:
every pixel ``p`` contributes its context vector once per depth bin ``d`` whose frustum point lands in
``c``. Which (cell, pixel) pairs exist depends only on the camera geometry (calibration, image and BEV
augmentation, grid), not on the features. So the pooling is the product of a sparse matrix
``A`` (cells x pixels, ``A[c, p] = sum of depth[p, d] over the bins d of p that land in c``) with the
dense context ``(pixels, C)``. :class:`SparseBEVPoolPlan` holds the sparsity pattern of ``A`` and of
``A^T`` in CSR form, computed once per geometry (see :class:`SparseBEVPoolCache`); each forward only
gathers the depth values into the pattern and runs one CSR x dense product. The (points, C) frustum
tensor of the scatter path (:func:`bev_pool`) is never built.

Gradients (custom autograd Function, no sparse autograd):

* depth: ``dL/dA[c, p] = grad_out[c] . context[p]`` for every pair, a sampled dense-dense product
  (``torch.sparse.sampled_addmm``) on A's pattern; each frustum point then reads its pair's value.
* context: ``A^T @ grad_out`` through the precomputed transposed CSR.

Frames and layout: frustum points are ordered (B, N, D, fH, fW) as in
:meth:`LSSDepthTransform.frustum_geometry`; pixels are (B, N, fH, fW) flattened; cells are the flat
indices of :func:`bev_pool_indices` (``((b * Z + iz) * Y + iy) * X + ix``, augmented LiDAR frame).
The scatter path stays the reference and the ONNX export path; this one is for training and eager
inference (CPU through MKL sparse BLAS, CUDA through cuSPARSE).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR tensor over precomputed (valid by construction) indices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


@dataclass(eq=False)
class SparseBEVPoolPlan:
    """The geometry-dependent part of LSS pooling: the pattern of the (cells x pixels) matrix A.

    A *pair* is one nonzero of A, a (cell, pixel) pair reached by at least one depth bin. Pairs are
    stored in CSR order (by cell, then pixel).

    Attributes:
        num_cells: rows of A (B * Z * Y * X real cells, no dump cell).
        num_pixels: columns of A (B * N * fH * fW).
        num_points: frustum points (B * N * D * fH * fW).
        crow: (num_cells + 1,) CSR row pointers of A.
        col: (nnz,) pixel of each pair.
        crow_t: (num_pixels + 1,) CSR row pointers of A^T.
        row_t: (nnz,) cell of each entry of A^T (pixel-major order).
        perm_t: (nnz,) int64 pair behind each entry of A^T (A^T values = A values[perm_t]).
        first_point: (nnz,) int64 first frustum point of each pair.
        extra_point, extra_pair: (E,) int64 the other points of pairs reached by several depth bins,
            and their pairs (E = 0 when every pair has one point, the usual case).
        point_pair: (num_points,) int64 pair of every frustum point; ``nnz`` for points outside the grid.
    """

    num_cells: int
    num_pixels: int
    num_points: int
    crow: Tensor
    col: Tensor
    crow_t: Tensor
    row_t: Tensor
    perm_t: Tensor
    first_point: Tensor
    extra_point: Tensor
    extra_pair: Tensor
    point_pair: Tensor

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @classmethod
    def from_index(cls, index: Tensor, num_pixels: int, pixels_per_map: int, num_cells: int) -> SparseBEVPoolPlan:
        """Builds the plan from the cell index of every frustum point.

        Args:
            index: (B * N * D * fH * fW,) int64 cell of every frustum point (``num_cells`` = outside
                the grid), e.g. :meth:`LSSDepthTransform.pool_index`, frustum order (B, N, D, fH, fW).
            num_pixels: B * N * fH * fW.
            pixels_per_map: fH * fW (pixels of one camera's feature map).
            num_cells: B * Z * Y * X.
        """
        num_points = index.numel()
        if num_points % num_pixels or num_pixels % pixels_per_map:
            raise ValueError(
                f"SparseBEVPoolPlan: {num_points} frustum points are not (B*N) maps of D x {pixels_per_map} "
                f"over {num_pixels} pixels"
            )
        device = index.device
        bins = num_points // num_pixels
        point = torch.arange(num_points, device=device)
        pixel = torch.div(point, bins * pixels_per_map, rounding_mode="floor") * pixels_per_map + point % pixels_per_map
        inside = index < num_cells
        # One int64 key per point, (cell, pixel) lexicographic; outside points sort last.
        key = torch.where(inside, index * num_pixels + pixel, torch.full_like(index, num_cells * num_pixels))
        sorted_key, order = torch.sort(key, stable=True)  # stable: a pair's first point is its lowest
        kept = int(inside.sum())
        sorted_key, order = sorted_key[:kept], order[:kept]
        new_pair = torch.ones(kept, dtype=torch.bool, device=device)
        new_pair[1:] = sorted_key[1:] != sorted_key[:-1]
        pair_of_sorted = new_pair.long().cumsum(0) - 1
        pair_key = sorted_key[new_pair]
        nnz = pair_key.numel()
        rows = torch.div(pair_key, num_pixels, rounding_mode="floor")
        cols = pair_key % num_pixels
        point_pair = torch.full((num_points,), nnz, dtype=torch.long, device=device)
        point_pair[order] = pair_of_sorted
        # A^T: pairs re-ordered by pixel (stable keeps cells ascending within a pixel).
        cols_t, perm_t = torch.sort(cols, stable=True)
        # int32 indices when they fit: MKL / cuSPARSE's native index width.
        idx_dtype = torch.int32 if max(nnz, num_cells, num_pixels) < 2**31 - 1 else torch.long
        return cls(
            num_cells=num_cells,
            num_pixels=num_pixels,
            num_points=num_points,
            crow=_row_pointers(rows, num_cells).to(idx_dtype),
            col=cols.to(idx_dtype),
            crow_t=_row_pointers(cols_t, num_pixels).to(idx_dtype),
            row_t=rows[perm_t].to(idx_dtype),
            perm_t=perm_t,
            first_point=order[new_pair],
            extra_point=order[~new_pair],
            extra_pair=pair_of_sorted[~new_pair],
            point_pair=point_pair,
        )

    def pair_values(self, depth: Tensor) -> Tensor:
        """(nnz,) values of A: each pair's summed depth probabilities, from (num_points,) ``depth``."""
        values = depth[self.first_point]
        if self.extra_point.numel():
            values = values.index_add(0, self.extra_pair, depth[self.extra_point])
        return values


def _row_pointers(sorted_rows: Tensor, num_rows: int) -> Tensor:
    """(num_rows + 1,) CSR row pointers from the ascending row index of every entry."""
    pointers = torch.zeros(num_rows + 1, dtype=torch.long, device=sorted_rows.device)
    pointers[1:] = torch.bincount(sorted_rows, minlength=num_rows).cumsum(0)
    return pointers


def _compute_dtype(tensor: Tensor) -> torch.dtype:
    # MKL's sparse BLAS has float32/float64 only; CUDA (cuSPARSE) also takes half types.
    if tensor.device.type == "cpu" and tensor.dtype not in (torch.float32, torch.float64):
        return torch.float32
    return tensor.dtype


class _SparseBEVPoolFunction(torch.autograd.Function):
    """out = A(depth) @ context with A's pattern from a :class:`SparseBEVPoolPlan`."""

    @staticmethod
    def forward(ctx, depth: Tensor, context: Tensor, plan: SparseBEVPoolPlan) -> Tensor:
        dtype = _compute_dtype(context)
        context_c = context.to(dtype).contiguous()
        values = plan.pair_values(depth.to(dtype))
        with torch.autocast(context.device.type, enabled=False):  # autocast would recast to what MKL lacks
            out = _csr(plan.crow, plan.col, values, (plan.num_cells, plan.num_pixels)) @ context_c
        ctx.save_for_backward(values, context_c)
        ctx.plan = plan
        ctx.dtypes = (depth.dtype, context.dtype)
        return out.to(context.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        values, context = ctx.saved_tensors
        plan: SparseBEVPoolPlan = ctx.plan
        grad_out = grad_out.to(context.dtype).contiguous()
        grad_depth = grad_context = None
        if ctx.needs_input_grad[0]:
            # dL/dA[c, p] = grad_out[c] . context[p] on A's pattern only (SDDMM, nothing dense).
            pattern = _csr(plan.crow, plan.col, values, (plan.num_cells, plan.num_pixels))
            grad_pair = torch.sparse.sampled_addmm(pattern, grad_out, context.t(), beta=0.0).values()
            grad_pair = torch.cat([grad_pair, grad_pair.new_zeros(1)])  # slot nnz: points outside the grid
            grad_depth = grad_pair[plan.point_pair].to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            transposed = _csr(plan.crow_t, plan.row_t, values[plan.perm_t], (plan.num_pixels, plan.num_cells))
            grad_context = (transposed @ grad_out).to(ctx.dtypes[1])
        return grad_depth, grad_context, None


def sparse_bev_pool(depth: Tensor, context: Tensor, plan: SparseBEVPoolPlan) -> Tensor:
    """Pools LSS frustum features into BEV cells without building them: ``A(depth) @ context``.

    Equal to ``bev_pool((depth[:, :, None] * context[:, None]) in frustum order, index, num_cells)``
    for the ``index`` the plan was built from, in forward and in both gradients.

    Args:
        depth: (B * N, D, fH, fW) depth-bin probabilities (or any (num_points,)-sized tensor in the
            frustum order (B, N, D, fH, fW)).
        context: (B * N, C, fH, fW) context features.
        plan: the geometry's :class:`SparseBEVPoolPlan`.

    Returns:
        (num_cells, C) pooled features, rows in :func:`bev_pool_indices` order (as :func:`bev_pool`).
    """
    if depth.numel() != plan.num_points or context.dim() != 4 or context.numel() != plan.num_pixels * context.shape[1]:
        raise ValueError(
            f"sparse_bev_pool: depth {tuple(depth.shape)} / context {tuple(context.shape)} do not match the plan "
            f"({plan.num_points} frustum points over {plan.num_pixels} pixels)"
        )
    channels = context.shape[1]
    pixels = context.permute(0, 2, 3, 1).reshape(plan.num_pixels, channels)  # (B*N*fH*fW, C)
    return _SparseBEVPoolFunction.apply(depth.reshape(-1), pixels, plan)
