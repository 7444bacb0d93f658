"""CenterPoint training targets for one sample, computed for all objects at once.

The same targets as mmdet3d's ``CenterHead.get_targets_single`` (heatmaps with a Gaussian per
object, boxes, flat indices and masks per class group). Kept beside mmdet3d's because that one loops
over the objects in Python, a visible share of a CPU training step; here each distinct Gaussian radius
is drawn for all its objects with one ``scatter_reduce(amax)`` (the maximum does not depend on drawing
order). Equality with mmdet3d's loop, value for value, is tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor


@lru_cache(maxsize=64)
def gaussian_kernel(radius: int) -> Tensor:
    """(2r+1, 2r+1) float32 Gaussian with sigma = diameter / 6, values below eps * max set to 0
    (mmdet3d's ``gaussian_2d``, computed in float64 like it)."""
    sigma = (2 * radius + 1) / 6
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    kernel = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(kernel.dtype).eps * kernel.max()] = 0
    return torch.from_numpy(kernel).float()


def gaussian_radius(height: Tensor, width: Tensor, min_overlap: float) -> Tensor:
    """CornerNet's radius for boxes of ``height`` x ``width`` cells (elementwise; the operations in
    the order of mmdet3d's ``gaussian_radius``, so float32 results match it bit for bit)."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * 1 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + torch.sqrt(b2**2 - 4 * 4 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def center_point_targets(
    boxes: Tensor, labels: Tensor, group_sizes: Sequence[int], train_cfg: dict, norm_bbox: bool
) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
    """Targets of one sample, per class group.

    Args:
        boxes: (N, 9) gravity-centre boxes x, y, z, l, w, h, yaw, vx, vy (LiDAR frame).
        labels: (N,) class indices into the concatenated groups.
        group_sizes: number of classes in each group, in order.
        train_cfg: CenterHead's ``train_cfg`` (grid_size, point_cloud_range, voxel_size,
            out_size_factor, max_objs, dense_reg, gaussian_overlap, min_radius).
        norm_bbox: regress log sizes.

    Returns:
        heatmaps (classes, Y, X), anno_boxes (max_objs, 10), inds (max_objs,) int64 and masks
        (max_objs,) uint8, one of each per group. As in mmdet3d, a group's objects are ordered by
        class, then by input order; slot ``k`` belongs to its ``k``-th object (out-of-range objects
        leave their slot empty) and objects past ``max_objs`` are dropped.
    """
    device = boxes.device
    factor = train_cfg["out_size_factor"]
    max_objs = train_cfg["max_objs"] * train_cfg["dense_reg"]
    size_x, size_y = (int(s) // factor for s in train_cfg["grid_size"][:2])
    pc_range = torch.tensor(train_cfg["point_cloud_range"])[:2].to(device)
    voxel = torch.tensor(train_cfg["voxel_size"])[:2].to(device)
    heatmaps, anno_boxes, inds, masks = [], [], [], []
    first = 0
    for num_classes in group_sizes:
        heatmap = boxes.new_zeros((num_classes, size_y, size_x))
        anno_box = boxes.new_zeros((max_objs, 10), dtype=torch.float32)
        ind = labels.new_zeros(max_objs, dtype=torch.int64)
        mask = boxes.new_zeros(max_objs, dtype=torch.uint8)
        order = torch.cat([torch.where(labels == first + c)[0] for c in range(num_classes)])[:max_objs]
        first += num_classes
        group = boxes[order]
        cls = labels[order] - (first - num_classes)
        length = group[:, 3] / voxel[0] / factor
        width = group[:, 4] / voxel[1] / factor
        centre = (group[:, :2] - pc_range) / voxel / factor
        centre_int = centre.to(torch.int32)
        keep = (
            (width > 0)
            & (length > 0)
            & (centre_int[:, 0] >= 0)
            & (centre_int[:, 0] < size_x)
            & (centre_int[:, 1] >= 0)
            & (centre_int[:, 1] < size_y)
        )
        slots = torch.nonzero(keep)[:, 0]
        if len(slots):
            radius = gaussian_radius(width[slots], length[slots], train_cfg["gaussian_overlap"])
            radius = radius.to(torch.int64).clamp(min=train_cfg["min_radius"])  # int(): toward zero, r >= 0
            x, y = centre_int[slots, 0].long(), centre_int[slots, 1].long()
            plane = cls[slots]
            flat = heatmap.view(-1)
            for r in radius.unique().tolist():
                pick = radius == r
                kernel = gaussian_kernel(int(r)).to(device)
                dy, dx = torch.meshgrid(
                    torch.arange(-r, r + 1, device=device), torch.arange(-r, r + 1, device=device), indexing="ij"
                )
                ys = y[pick, None] + dy.reshape(1, -1)
                xs = x[pick, None] + dx.reshape(1, -1)
                inside = (ys >= 0) & (ys < size_y) & (xs >= 0) & (xs < size_x)
                index = (plane[pick, None] * size_y + ys) * size_x + xs
                values = kernel.reshape(1, -1).expand_as(index)
                flat.scatter_reduce_(0, index[inside], values[inside], reduce="amax", include_self=True)
            dims = group[slots, 3:6].log() if norm_bbox else group[slots, 3:6]
            yaw = group[slots, 6:7]
            anno_box[slots] = torch.cat(
                [
                    centre[slots] - centre_int[slots].float(),
                    group[slots, 2:3],
                    dims,
                    yaw.sin(),
                    yaw.cos(),
                    group[slots, 7:9],
                ],
                dim=1,
            )
            ind[slots] = y * size_x + x
            mask[slots] = 1
        heatmaps.append(heatmap)
        anno_boxes.append(anno_box)
        inds.append(ind)
        masks.append(mask)
    return heatmaps, anno_boxes, inds, masks
