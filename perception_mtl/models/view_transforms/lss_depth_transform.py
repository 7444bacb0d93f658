"""Lift-splat-shoot view transform with a categorical depth distribution per image feature cell."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.models.view_transforms.bev_pool import bev_pool, bev_pool_cumsum, bev_pool_indices, grid_shape
from perception_mtl.models.view_transforms.sparse_bev_pool import SparseBEVPoolPlan, sparse_bev_pool
from perception_mtl.models.view_transforms.sparse_bev_pool_cache import SparseBEVPoolCache
from perception_mtl.registry import MODELS
from perception_mtl.structures import SensorCalibration

_BN = dict(type="BN")  # norm of the ConvModule blocks (3x3 conv without bias, BN, ReLU; Kaiming-initialised conv)


@MODELS.register_module()
class LSSDepthTransform(BaseModule):
    """Image features -> BEV features by predicted depth distributions (LSS, BEVFusion's LSSTransform).

    For every image feature cell a depth net predicts ``D`` depth-bin logits and ``C`` context
    channels. Each (cell, bin) is a frustum point whose position comes from
    :meth:`SensorCalibration.unproject` (image augmentation, intrinsics, extrinsics and BEV
    augmentation all included); its feature is ``softmax(depth)[bin] * context``. The points are
    summed into a (Z, Y, X) grid by :func:`bev_pool` over precomputed cell indices, z slices are
    stacked along channels, and an optional strided conv block downsamples the grid (conv-BN-ReLU
    blocks are mmcv ``ConvModule``).

    Frames and conventions: the frustum cell (i, j) of a map of stride s sits at pixel
    ``((j + 0.5) * s - 0.5, (i + 0.5) * s - 0.5)`` of the augmented image (integer pixel centres);
    depth bin k covers ``[dmin + k * step, dmin + (k + 1) * step)`` and is placed at its centre.
    The BEV output is (B, C_out, Y, X) with rows along LiDAR y and columns along LiDAR x.

    Args:
        in_channels: channels of the image feature map.
        out_channels: BEV channels per z slice (C).
        xbound, ybound, zbound: BEV grid ``[min, max, step]`` in metres (augmented LiDAR frame).
        dbound: depth bins ``[min, max, step]`` in metres along the optical axis.
        downsample: stride of the conv block applied after pooling (1 = none).
        depth_loss_weight: weight of the depth-supervision loss from projected LiDAR (0 = off).
        time_lag_dim: column of the points holding the sweep time lag; only key-frame points
            (lag 0) supervise depth, since moving objects smear across sweeps. None = use all.
        cache_indices: re-use the pooling indices while the calibration is unchanged (inference
            on a fixed rig); indices are always recomputed in training.
        bev_pool: pooling implementation. ``'scatter'`` (default): :func:`bev_pool` over the
            (points, C) frustum, the reference and the ONNX export path. ``'sparse'``:
            :func:`sparse_bev_pool`, a CSR product over (cell, pixel) pairs precomputed per geometry
            and cached by calibration and augmentation matrices (training and eager inference).
            ``'cumsum'``: the LSS cumsum trick (:func:`bev_pool_cumsum`), a baseline. With an
            explicit ``pool_index`` or under ONNX export every setting takes the scatter path.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        xbound: Sequence[float],
        ybound: Sequence[float],
        zbound: Sequence[float],
        dbound: Sequence[float],
        downsample: int = 1,
        depth_loss_weight: float = 0.0,
        time_lag_dim: int | None = 4,
        cache_indices: bool = True,
        bev_pool: str = "scatter",
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if bev_pool not in ("scatter", "sparse", "cumsum"):
            raise ValueError(f"view_transform.bev_pool must be 'scatter', 'sparse' or 'cumsum', got {bev_pool!r}")
        self.bev_pool = bev_pool
        self.sparse_cache = SparseBEVPoolCache()
        if dbound[2] <= 0 or dbound[1] <= dbound[0] or dbound[0] <= 0:
            raise ValueError(f"view_transform.dbound must be [min > 0, max > min, step > 0], got {list(dbound)}")
        self.xbound, self.ybound, self.zbound = list(xbound), list(ybound), list(zbound)
        self.dbound = list(dbound)
        self.grid = grid_shape(xbound, ybound, zbound)  # (Z, Y, X)
        self.num_bins = int(round((dbound[1] - dbound[0]) / dbound[2]))
        self.context_channels = out_channels
        self.out_channels = out_channels  # channels of the output BEV map
        self.depth_loss_weight = depth_loss_weight
        self.time_lag_dim = time_lag_dim
        self.cache_indices = cache_indices
        self.depth_net = nn.Sequential(
            ConvModule(in_channels, in_channels, 3, padding=1, norm_cfg=_BN),
            nn.Conv2d(in_channels, self.num_bins + out_channels, 1),
        )
        bev_channels = out_channels * self.grid[0]
        if downsample > 1:
            self.downsample = nn.Sequential(
                ConvModule(bev_channels, out_channels, 3, padding=1, norm_cfg=_BN),
                ConvModule(out_channels, out_channels, 3, stride=downsample, padding=1, norm_cfg=_BN),
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=_BN),
            )
        else:
            self.downsample = nn.Identity()
            self.out_channels = bev_channels
        self._cached: tuple[tuple[Tensor, ...], tuple[int, ...], Tensor] | None = None

    # ------------------------------------------------------------------ geometry
    def depth_centres(self, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """(D,) depth-bin centres in metres."""
        low, _, step = self.dbound
        return low + (torch.arange(self.num_bins, device=device, dtype=dtype) + 0.5) * step

    def frustum_pixels(
        self, feat_hw: tuple[int, int], image_hw: tuple[int, int], device=None, dtype=torch.float32
    ) -> Tensor:
        """(fH, fW, 2) pixel (u, v) of every feature cell centre in the augmented image."""
        (fh, fw), (h, w) = feat_hw, image_hw
        v = (torch.arange(fh, device=device, dtype=dtype) + 0.5) * (h / fh) - 0.5
        u = (torch.arange(fw, device=device, dtype=dtype) + 0.5) * (w / fw) - 0.5
        return torch.stack(torch.meshgrid(u, v, indexing="xy"), -1)

    def frustum_geometry(self, calib: SensorCalibration, feat_hw: tuple[int, int], image_hw: tuple[int, int]) -> Tensor:
        """(B, N, D, fH, fW, 3) frustum points in the augmented LiDAR frame."""
        batch, cams = calib.batch_size, calib.num_cams
        uv = self.frustum_pixels(feat_hw, image_hw, calib.device, calib.dtype)
        depth = self.depth_centres(calib.device, calib.dtype)
        shape = (batch, cams, self.num_bins, *feat_hw)
        uv = uv.expand(*shape, 2)
        depth = depth.view(1, 1, -1, 1, 1).expand(shape)
        return calib.unproject(uv, depth)

    def pool_index(self, calib: SensorCalibration, feat_hw: tuple[int, int], image_hw: tuple[int, int]) -> Tensor:
        """(B * N * D * fH * fW,) BEV cell of every frustum point (dump cell when outside the grid)."""
        key = (tuple(feat_hw), tuple(image_hw))
        matrices = (calib.cam2img, calib.lidar2cam, calib.img_aug, calib.lidar_aug)
        use_cache = self.cache_indices and not self.training
        if use_cache and self._cached is not None:
            cached_mats, cached_key, cached_index = self._cached
            same = cached_key == key and all(
                a.shape == b.shape and a.device == b.device and torch.equal(a, b) for a, b in zip(cached_mats, matrices)
            )
            if same:
                return cached_index
        geometry = self.frustum_geometry(calib, feat_hw, image_hw)
        index = bev_pool_indices(geometry, self.xbound, self.ybound, self.zbound)
        if use_cache:
            self._cached = (tuple(m.clone() for m in matrices), key, index)
        return index

    def sparse_plan(
        self, calib: SensorCalibration, feat_hw: tuple[int, int], image_hw: tuple[int, int]
    ) -> SparseBEVPoolPlan:
        """The :class:`SparseBEVPoolPlan` of this geometry, from ``sparse_cache`` or built now."""

        def build() -> SparseBEVPoolPlan:
            geometry = self.frustum_geometry(calib, feat_hw, image_hw)
            index = bev_pool_indices(geometry, self.xbound, self.ybound, self.zbound)
            cells = calib.batch_size * self.grid[0] * self.grid[1] * self.grid[2]
            pixels = calib.batch_size * calib.num_cams * feat_hw[0] * feat_hw[1]
            return SparseBEVPoolPlan.from_index(index, pixels, feat_hw[0] * feat_hw[1], cells)

        return self.sparse_cache.get(calib, (tuple(feat_hw), tuple(image_hw)), build)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        feats: Tensor,
        calib: SensorCalibration | None = None,
        image_hw: tuple[int, int] | None = None,
        pool_index: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Lifts image features to the BEV grid.

        Args:
            feats: (B, N, C_in, fH, fW) image features of N cameras.
            calib: calibration of the batch; needed unless ``pool_index`` is given.
            image_hw: (H, W) of the augmented input images (sets the feature stride).
            pool_index: precomputed :meth:`pool_index` output (e.g. an exported graph's input).

        Returns:
            bev: (B, C_out, Y', X') BEV features (Y' = Y / downsample).
            depth_logits: (B, N, D, fH, fW) depth-bin logits.
        """
        batch, cams, channels, fh, fw = feats.shape
        out = self.depth_net(feats.reshape(batch * cams, channels, fh, fw))
        depth_logits = out[:, : self.num_bins]
        context = out[:, self.num_bins :]
        if pool_index is None and (calib is None or image_hw is None):
            raise ValueError("LSSDepthTransform: pass calib and image_hw, or a precomputed pool_index")
        num_z, num_y, num_x = self.grid
        num_cells = batch * num_z * num_y * num_x
        # An explicit pool_index (the export boundary) or ONNX export always takes the scatter path.
        reference_only = pool_index is not None or torch.onnx.is_in_onnx_export()
        if self.bev_pool == "sparse" and not reference_only:
            plan = self.sparse_plan(calib, (fh, fw), image_hw)
            pooled = sparse_bev_pool(depth_logits.softmax(1), context, plan)
        else:
            if pool_index is None:
                pool_index = self.pool_index(calib, (fh, fw), image_hw)
            # (B*N, C, D, fH, fW) -> (B, N, D, fH, fW, C): the order of the frustum geometry.
            frustum = depth_logits.softmax(1).unsqueeze(1) * context.unsqueeze(2)
            frustum = frustum.reshape(batch, cams, self.context_channels, self.num_bins, fh, fw)
            frustum = frustum.permute(0, 1, 3, 4, 5, 2).reshape(-1, self.context_channels)
            pool = bev_pool_cumsum if self.bev_pool == "cumsum" and not reference_only else bev_pool
            pooled = pool(frustum, pool_index, num_cells)
        bev = pooled.view(batch, num_z, num_y, num_x, -1).permute(0, 1, 4, 2, 3).reshape(batch, -1, num_y, num_x)
        return self.downsample(bev), depth_logits.view(batch, cams, self.num_bins, fh, fw)

    # ------------------------------------------------------------------ depth supervision
    def depth_targets(
        self, points: Sequence[Tensor], calib: SensorCalibration, feat_hw: tuple[int, int], image_hw: tuple[int, int]
    ) -> Tensor:
        """Depth-bin targets from projected LiDAR: the nearest point per feature cell.

        Args:
            points: B tensors (P_b, >=3) in the augmented LiDAR frame.
            calib: calibration of the batch.
            feat_hw, image_hw: feature-map and augmented-image sizes.

        Returns:
            (B, N, fH, fW) int64 bin index; -1 where no point lands in range.
        """
        fh, fw = feat_hw
        h, w = image_hw
        low, high, step = self.dbound
        targets = []
        for b, pts in enumerate(points):
            if self.time_lag_dim is not None and pts.shape[1] > self.time_lag_dim:
                pts = pts[pts[:, self.time_lag_dim] == 0]
            uv, depth = calib[b].project_points(pts[None, :, :3].to(calib.dtype))
            uv, depth = uv[0], depth[0]  # (N, P, 2), (N, P)
            col = torch.floor((uv[..., 0] + 0.5) * (fw / w)).long()
            row = torch.floor((uv[..., 1] + 0.5) * (fh / h)).long()
            valid = (col >= 0) & (col < fw) & (row >= 0) & (row < fh) & (depth >= low) & (depth < high)
            cams = torch.arange(depth.shape[0], device=depth.device).view(-1, 1).expand_as(depth)
            cell = (cams * fh + row) * fw + col
            nearest = depth.new_full((depth.shape[0] * fh * fw,), float("inf"))
            nearest = nearest.scatter_reduce(0, cell[valid], depth[valid], reduce="amin")
            bins = torch.floor((nearest - low) / step).clamp(max=self.num_bins - 1)
            bins = torch.where(torch.isfinite(nearest), bins, torch.full_like(bins, -1)).long()
            targets.append(bins.view(-1, fh, fw))
        return torch.stack(targets)

    def depth_loss(
        self, depth_logits: Tensor, points: Sequence[Tensor], calib: SensorCalibration, image_hw: tuple[int, int]
    ) -> Tensor:
        """Cross-entropy of the depth bins at cells hit by LiDAR, times ``depth_loss_weight``.

        Args:
            depth_logits: (B, N, D, fH, fW) from :meth:`forward`.
            points: B point clouds (augmented LiDAR frame) of the batch.
            calib: calibration of the batch.
            image_hw: (H, W) of the augmented images.
        """
        batch, cams, bins, fh, fw = depth_logits.shape
        with torch.no_grad():
            target = self.depth_targets(points, calib, (fh, fw), image_hw)
        logits = depth_logits.permute(0, 1, 3, 4, 2).reshape(-1, bins)
        loss = F.cross_entropy(logits, target.reshape(-1), ignore_index=-1, reduction="sum")
        return self.depth_loss_weight * loss / (target >= 0).sum().clamp(min=1)
