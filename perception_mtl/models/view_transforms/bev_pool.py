"""BEV pooling ("splat") in pure PyTorch: sum frustum features into BEV cells over precomputed indices.

Kept hand-written on purpose: the field's pooling (BEVFusion's ``bev_pool``, mmdet3d's
``projects/BEVFusion``) is a CUDA-only extension, which runs neither on the CPU nor through ONNX export.

The pooling is split in two steps so the geometry-dependent part can be computed once per camera
rig and re-used (UniTR's lesson: the indices change only when calibration or image augmentation
do):

1. :func:`bev_pool_indices` maps every frustum point (augmented LiDAR frame) to a flat BEV cell
   index; points outside the grid map to one extra *dump* cell, so no boolean-mask indexing (and
   no ONNX NonZero) is needed.
2. :func:`bev_pool` sums the features into the cells (``index_add``) and drops the dump cell. It
   exports to ONNX as ``ScatterElements(reduction='add')`` (opset >= 16).

:func:`bev_pool_cumsum` is the original LSS "cumsum trick" (sort by cell, cumulative sum, take the
differences at cell boundaries), kept as a second reference and for the benchmark.

Cell layout: ``index = ((b * Z + iz) * Y + iy) * X + ix`` with ``ix`` along LiDAR x (forward) and
``iy`` along LiDAR y (left), so the pooled grid reshapes to (B, Z, Y, X, C): rows are y, columns
are x, the mmdet3d/CenterPoint BEV convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def grid_shape(xbound: Sequence[float], ybound: Sequence[float], zbound: Sequence[float]) -> tuple[int, int, int]:
    """(Z, Y, X) cell counts of a grid given as ``[min, max, step]`` per axis."""
    counts = []
    for name, (low, high, step) in (("zbound", zbound), ("ybound", ybound), ("xbound", xbound)):
        if step <= 0 or high <= low:
            raise ValueError(f"{name} must be [min, max, step] with max > min and step > 0, got {[low, high, step]}")
        counts.append(int(round((high - low) / step)))
    return tuple(counts)


def bev_pool_indices(
    points: Tensor, xbound: Sequence[float], ybound: Sequence[float], zbound: Sequence[float]
) -> Tensor:
    """Flat BEV cell index of every point; points outside the grid get the dump index.

    Args:
        points: (B, ..., 3) point coordinates (x, y, z) in metres, augmented LiDAR frame; every
            dimension after the batch is flattened (e.g. the frustum (B, N, D, H, W, 3)).
        xbound, ybound, zbound: ``[min, max, step]`` of the grid per axis.

    Returns:
        (B * prod(...),) int64 indices in ``[0, B * Z * Y * X]``; ``B * Z * Y * X`` is the dump cell.
    """
    batch = points.shape[0]
    num_z, num_y, num_x = grid_shape(xbound, ybound, zbound)
    flat = points.reshape(batch, -1, 3)
    lows = flat.new_tensor([xbound[0], ybound[0], zbound[0]])
    steps = flat.new_tensor([xbound[2], ybound[2], zbound[2]])
    cell = torch.floor((flat - lows) / steps).long()  # (B, M, 3) as (ix, iy, iz)
    ix, iy, iz = cell.unbind(-1)
    inside = (ix >= 0) & (ix < num_x) & (iy >= 0) & (iy < num_y) & (iz >= 0) & (iz < num_z)
    batch_index = torch.arange(batch, device=points.device).view(batch, 1)
    index = ((batch_index * num_z + iz) * num_y + iy) * num_x + ix
    dump = batch * num_z * num_y * num_x
    return torch.where(inside, index, torch.full_like(index, dump)).reshape(-1)


def bev_pool(feats: Tensor, index: Tensor, num_cells: int) -> Tensor:
    """Sums point features into cells.

    Args:
        feats: (M, C) features, one row per point.
        index: (M,) int64 cell of each point, in ``[0, num_cells]`` (``num_cells`` = dump cell).
        num_cells: number of real cells (B * Z * Y * X).

    Returns:
        (num_cells, C) summed features; the dump cell is dropped.
    """
    if feats.dim() != 2 or index.shape != feats.shape[:1]:
        raise ValueError(
            f"bev_pool: expected feats (M, C) and index (M,), got {tuple(feats.shape)}, {tuple(index.shape)}"
        )
    out = feats.new_zeros(num_cells + 1, feats.shape[1])
    if torch.onnx.is_in_onnx_export():
        # The same sum as ScatterElements(add): torch's ONNX exporter lowers index_add without the
        # accumulation (duplicate indices would overwrite each other).
        out = out.scatter_add(0, index.unsqueeze(1).expand_as(feats), feats)
    else:
        out = out.index_add(0, index, feats)  # row-wise: about 3x faster than scatter_add on a CPU
    return out[:num_cells]


def bev_pool_cumsum(feats: Tensor, index: Tensor, num_cells: int) -> Tensor:
    """The LSS cumsum trick: same result as :func:`bev_pool`, by sorting and cumulative sums.

    Numerically less exact in float32 (differences of large running sums); a reference and a
    benchmark baseline, not the production path.
    """
    order = torch.argsort(index)
    sorted_index, sorted_feats = index[order], feats[order]
    keep = sorted_index < num_cells
    sorted_index, sorted_feats = sorted_index[keep], sorted_feats[keep]
    out = feats.new_zeros(num_cells, feats.shape[1])
    if len(sorted_index) == 0:
        return out
    running = sorted_feats.cumsum(0)
    last = torch.ones_like(sorted_index, dtype=torch.bool)
    last[:-1] = sorted_index[1:] != sorted_index[:-1]
    totals = running[last]
    totals = torch.cat([totals[:1], totals[1:] - totals[:-1]])
    out[sorted_index[last]] = totals
    return out
