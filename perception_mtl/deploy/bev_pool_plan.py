"""BEV pooling for export: a precomputed plan of Gathers and short sums, no scatter, no NonZero.

The PyTorch pooling (:func:`perception_mtl.models.view_transforms.bev_pool.bev_pool`) sums frustum
features into BEV cells with ``index_add``, which exports as ``ScatterElements(reduction='add')``:
TensorRT 10's ONNX parser has no scatter with a reduction (``tensorrt_ops.py``), so BEVFusion, BEVDet and
FlashOcc all ship a ``bev_pool`` plugin. Here the cell of every frustum point
(``LSSDepthTransform.pool_index``) is turned, outside the graph, into a :class:`PoolPlan`:

1. the points inside the grid are sorted by cell (stable), so each cell owns one run of points;
2. each cell's run is cut into chunks of at most ``run`` points; level 0 is a (R0, run) matrix of point
   indices, one row per chunk, padded with the index of an appended zero row;
3. the next level groups the chunk sums of each cell the same way, ..., and the last level has one row
   per non-empty cell (as wide as its longest run of chunks);
4. ``cell_rows`` (Z*Y*X,) picks each cell's row of the last level, or the zero row for an empty cell.

In the graph every level is ``Pad`` (the zero row) + ``Gather`` along the point axis + ``ReduceSum`` over
the run, and the cells are one more ``Gather``: ops TensorRT 10 parses natively. Each cell's sum is
a short tree of float32 sums, never a difference of running totals, so there is no cancellation (the
LSS cumsum trick subtracts prefix sums that grow with the number of points before the cell; over the
~10^5-10^6 frustum points of a real rig its float32 error exceeds 1e-4).

With a fixed rig (``--fixed-rig``) the plan is baked into the graph as constants; otherwise the
plan's tensors are graph inputs, computed per sample by the runner from the calibration.

Frames: indices refer to the frustum order of ``LSSDepthTransform.forward`` for ONE sample,
(N, D, fH, fW) flattened, and cells to ``(iz * Y + iy) * X + ix`` of the (Z, Y, X) grid.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class PoolPlan:
    """Gather indices that sum the frustum points of one sample into BEV cells.

    Attributes:
        levels: per level an int64 (R_k, W_k) matrix of row indices into the previous level's rows (level
            0: into the M frustum points), where index ``R_{k-1}`` (``M`` for level 0) is the zero row.
        cell_rows: int64 (num_cells,) row of the last level for each cell; ``R_last`` for empty cells.
        num_points: M, frustum points per sample.
    """

    levels: list[Tensor]
    cell_rows: Tensor
    num_points: int

    @property
    def num_cells(self) -> int:
        return int(self.cell_rows.shape[0])

    def tensors(self) -> list[Tensor]:
        """The plan's tensors in graph-input order: ``levels..., cell_rows``."""
        return [*self.levels, self.cell_rows]

    @staticmethod
    def input_names(num_levels: int) -> list[str]:
        """Names of the plan's tensors as graph inputs."""
        return [f"pool_level{k}" for k in range(num_levels)] + ["pool_cells"]


def _group_rows(groups: np.ndarray, width: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Lays out items (sorted by group) as rows of at most ``width`` items of one group.

    Args:
        groups: (n,) non-decreasing group id of each item.
        width: items per row; None puts each group on one row (as wide as the largest group).

    Returns:
        ``rows`` (R, W) int64 item indices padded with ``n``, and ``row_group`` (R,) the group of each row.
    """
    n = len(groups)
    if n == 0:
        return np.full((0, width or 1), 0, np.int64), np.zeros(0, np.int64)
    new_group = np.r_[True, groups[1:] != groups[:-1]]
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[starts, n])
    rank = np.cumsum(new_group) - 1  # group rank of each item
    pos = np.arange(n) - starts[rank]  # position inside its group
    if width is None:
        width = int(counts.max())
        row, col = rank, pos
        row_group = groups[starts]
    else:
        chunks = -(-counts // width)  # rows per group
        first_row = np.r_[0, np.cumsum(chunks)[:-1]]
        row, col = first_row[rank] + pos // width, pos % width
        row_group = np.repeat(groups[starts], chunks)
    rows = np.full((len(row_group), width), n, np.int64)
    rows[row, col] = np.arange(n)
    return rows, row_group


def build_pool_plan(index: Tensor | np.ndarray, num_cells: int, run: int = 16, num_levels: int = 2) -> PoolPlan:
    """The plan that sums points into cells as :func:`bev_pool` does, for one sample.

    Args:
        index: (M,) int cell of every frustum point of one sample, ``num_cells`` (or more) = outside.
        num_cells: Z * Y * X.
        run: points (level 0) or chunk sums (middle levels) summed per row.
        num_levels: levels of the plan (>= 1); the last one has one row per non-empty cell.

    Returns:
        The :class:`PoolPlan`.
    """
    if num_levels < 1 or run < 1:
        raise ValueError(f"build_pool_plan: need num_levels >= 1 and run >= 1, got {num_levels}, {run}")
    index = np.asarray(index.detach().cpu() if isinstance(index, Tensor) else index).astype(np.int64).reshape(-1)
    num_points = len(index)
    inside = np.flatnonzero((index >= 0) & (index < num_cells))
    order = inside[np.argsort(index[inside], kind="stable")]
    groups = index[order]
    levels = []
    items = order  # level 0 gathers frustum points
    for level in range(num_levels):
        last = level == num_levels - 1
        rows, row_group = _group_rows(groups, None if last else run)
        if level == 0:
            rows = np.where(rows < len(items), items[np.minimum(rows, len(items) - 1)], num_points)
        levels.append(torch.from_numpy(rows))
        groups = row_group
    cell_rows = np.full(num_cells, len(groups), np.int64)
    cell_rows[groups] = np.arange(len(groups))
    return PoolPlan(levels, torch.from_numpy(cell_rows), num_points)


def pool_with_plan(feats: Tensor, levels: list[Tensor], cell_rows: Tensor) -> Tensor:
    """Sums point features into cells with a :class:`PoolPlan` (exportable: Pad, Gather, ReduceSum).

    Args:
        feats: (B, M, C) frustum features of B samples that share the plan.
        levels, cell_rows: the plan's tensors (constants or graph inputs).

    Returns:
        (B, num_cells, C) summed features; empty cells are exactly 0.
    """
    x = feats
    for rows in levels:
        x = F.pad(x, (0, 0, 0, 1))  # the zero row that padded entries point to
        x = x[:, rows].sum(2)  # (B, R, W, C) -> (B, R, C)
    return F.pad(x, (0, 0, 0, 1))[:, cell_rows]


@contextlib.contextmanager
def planned_bev_pool(levels: list[Tensor], cell_rows: Tensor, num_points: int):
    """Within the block, :class:`LSSDepthTransform` pools with the plan instead of ``index_add``.

    ``LSSDepthTransform.forward`` calls the module-level ``bev_pool(frustum, pool_index, num_cells)``;
    this swaps that name for :func:`pool_with_plan`, so the exported camera graph is the model's own
    forward (depth net, frustum features, BEV reshape, downsample) with only the pooling replaced. The
    ``pool_index`` argument the model passes is ignored (the plan holds it).
    """
    from perception_mtl.models.view_transforms import lss_depth_transform

    if not hasattr(lss_depth_transform, "bev_pool"):
        raise RuntimeError(
            "planned_bev_pool: perception_mtl.models.view_transforms.lss_depth_transform no longer calls a "
            "module-level bev_pool; update perception_mtl/deploy/bev_pool_plan.py"
        )
    original = lss_depth_transform.bev_pool
    cells = int(cell_rows.shape[0])

    def bev_pool(feats: Tensor, index: Tensor, num_cells: int) -> Tensor:
        pooled = pool_with_plan(feats.reshape(-1, num_points, feats.shape[-1]), levels, cell_rows)
        if not torch.onnx.is_in_onnx_export() and pooled.shape[0] * cells != num_cells:
            raise ValueError(f"planned_bev_pool: plan for {cells} cells per sample, the model pools {num_cells}")
        return pooled.reshape(-1, feats.shape[-1])

    lss_depth_transform.bev_pool = bev_pool
    try:
        yield
    finally:
        lss_depth_transform.bev_pool = original
