"""Batched camera/LiDAR calibration as one typed structure.

Every camera-geometry module (LSS view transform, depth supervision, projections for
visualisation) takes a :class:`SensorCalibration` instead of loose matrices, so the frames
and the order of composition are fixed in one place:

    pixel_aug = img_aug @ cam2img @ lidar2cam @ inv(lidar_aug) @ point_lidar_aug

* ``cam2img``   (B, N, 4, 4): camera intrinsics, 3x3 K padded to 4x4 (row 3 = [0, 0, 0, 1]).
* ``lidar2cam`` (B, N, 4, 4): rigid transform LiDAR frame -> camera frame (x right, y down,
  z forward).
* ``img_aug``   (B, N, 4, 4): image augmentation (resize, crop, flip, rotate). Its top-left
  3x3 is the 2D affine [[a, b, tx], [c, d, ty], [0, 0, 1]] acting on homogeneous pixels
  (u, v, 1); row and column 3 are identity. Acting on homogeneous pixels keeps
  ``lidar2img = img_aug @ cam2img @ lidar2cam`` exact under perspective division.
  (BEVFusion stores the translation in column 3 instead; convert before use.)
* ``lidar_aug`` (B, 4, 4): BEV augmentation (rotation, scale, flip, translation) that was applied
  to the point cloud and boxes; identity when none.

B is the batch, N the number of cameras. All matrices share one dtype and device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

_FIELDS = ("cam2img", "lidar2cam", "img_aug", "lidar_aug")


def _as_tensor(name: str, value: Tensor | np.ndarray | Sequence, dtype: torch.dtype | None) -> Tensor:
    tensor = torch.as_tensor(np.asarray(value) if isinstance(value, (list, tuple)) else value)
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif not tensor.is_floating_point():
        tensor = tensor.float()
    return tensor


def _pad_to_4x4(name: str, matrix: Tensor) -> Tensor:
    """Pads 3x3 (intrinsics) or 3x4 (projection) matrices to homogeneous 4x4."""
    rows, cols = matrix.shape[-2:]
    if (rows, cols) == (4, 4):
        return matrix
    if rows not in (3, 4) or cols not in (3, 4):
        raise ValueError(f"SensorCalibration.{name}: expected a 3x3, 3x4 or 4x4 matrix, got {rows}x{cols}")
    padded = torch.zeros(*matrix.shape[:-2], 4, 4, dtype=matrix.dtype, device=matrix.device)
    padded[..., :rows, :cols] = matrix
    padded[..., 3, 3] = 1.0
    return padded


class SensorCalibration:
    """Calibration of N cameras against the LiDAR for a batch of B samples.

    Args:
        cam2img: (B, N, 3|4, 3|4) intrinsics.
        lidar2cam: (B, N, 4, 4) LiDAR -> camera extrinsics.
        img_aug: (B, N, 4, 4) image-augmentation matrices; identity when omitted.
        lidar_aug: (B, 4, 4) BEV-augmentation matrices; identity when omitted.

    Raises:
        ValueError: naming the field when a shape or batch/camera count does not match.
    """

    def __init__(
        self,
        cam2img: Tensor | np.ndarray,
        lidar2cam: Tensor | np.ndarray,
        img_aug: Tensor | np.ndarray | None = None,
        lidar_aug: Tensor | np.ndarray | None = None,
    ) -> None:
        cam2img = _pad_to_4x4("cam2img", _as_tensor("cam2img", cam2img, None))
        dtype, device = cam2img.dtype, cam2img.device
        lidar2cam = _as_tensor("lidar2cam", lidar2cam, dtype).to(device)
        if cam2img.dim() != 4:
            raise ValueError(f"SensorCalibration.cam2img: expected (B, N, 4, 4), got {tuple(cam2img.shape)}")
        batch, cams = cam2img.shape[:2]
        eye = torch.eye(4, dtype=dtype, device=device)
        if img_aug is None:
            img_aug = eye.expand(batch, cams, 4, 4).clone()
        if lidar_aug is None:
            lidar_aug = eye.expand(batch, 4, 4).clone()
        self.cam2img = cam2img
        self.lidar2cam = lidar2cam
        self.img_aug = _as_tensor("img_aug", img_aug, dtype).to(device)
        self.lidar_aug = _as_tensor("lidar_aug", lidar_aug, dtype).to(device)
        self._check_shapes()

    def _check_shapes(self) -> None:
        batch, cams = self.cam2img.shape[:2]
        expected = {
            "cam2img": (batch, cams, 4, 4),
            "lidar2cam": (batch, cams, 4, 4),
            "img_aug": (batch, cams, 4, 4),
            "lidar_aug": (batch, 4, 4),
        }
        for name, shape in expected.items():
            actual = tuple(getattr(self, name).shape)
            if actual != shape:
                raise ValueError(
                    f"SensorCalibration.{name}: expected shape {shape} (B={batch}, N={cams}), got {actual}"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_single(
        cls,
        cam2img: Sequence | np.ndarray,
        lidar2cam: Sequence | np.ndarray,
        img_aug: Sequence | np.ndarray | None = None,
        lidar_aug: Sequence | np.ndarray | None = None,
    ) -> SensorCalibration:
        """Builds a batch of one from per-camera lists/arrays of shape (N, r, c)."""

        def add_batch(value):
            return None if value is None else torch.as_tensor(np.asarray(value, dtype=np.float32))[None]

        return cls(add_batch(cam2img), add_batch(lidar2cam), add_batch(img_aug), add_batch(lidar_aug))

    @staticmethod
    def cat(calibs: Sequence[SensorCalibration]) -> SensorCalibration:
        """Concatenates along the batch dimension; all parts must have the same camera count."""
        if len(calibs) == 0:
            raise ValueError("SensorCalibration.cat: got an empty sequence")
        cams = {c.num_cams for c in calibs}
        if len(cams) != 1:
            raise ValueError(f"SensorCalibration.cat: camera counts differ across the batch: {sorted(cams)}")
        return SensorCalibration(**{f: torch.cat([getattr(c, f) for c in calibs]) for f in _FIELDS})

    # ------------------------------------------------------------------ container protocol
    @property
    def batch_size(self) -> int:
        return self.cam2img.shape[0]

    @property
    def num_cams(self) -> int:
        return self.cam2img.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.cam2img.dtype

    @property
    def device(self) -> torch.device:
        return self.cam2img.device

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> SensorCalibration:
        """Selects samples of the batch; an int keeps the batch dimension (size 1)."""
        if isinstance(index, int):
            if not -self.batch_size <= index < self.batch_size:
                raise IndexError(f"SensorCalibration index {index} out of range for batch {self.batch_size}")
            index = slice(index, index + 1 if index != -1 else None)
        return SensorCalibration(**{f: getattr(self, f)[index] for f in _FIELDS})

    def to(self, *args, **kwargs) -> SensorCalibration:
        """Same as ``Tensor.to`` on every matrix (device and/or dtype)."""
        return SensorCalibration(**{f: getattr(self, f).to(*args, **kwargs) for f in _FIELDS})

    def __repr__(self) -> str:
        return (
            f"SensorCalibration(batch={self.batch_size}, cams={self.num_cams}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    # ------------------------------------------------------------------ derived matrices
    @property
    def lidar2img(self) -> Tensor:
        """(B, N, 4, 4) original LiDAR frame -> augmented image pixels (homogeneous, depth in row 2)."""
        return self.img_aug @ self.cam2img @ self.lidar2cam

    @property
    def aug_lidar2img(self) -> Tensor:
        """(B, N, 4, 4) augmented LiDAR frame (after BEV aug) -> augmented image pixels."""
        return self.lidar2img @ torch.linalg.inv(self.lidar_aug)[:, None]

    @property
    def cam2lidar(self) -> Tensor:
        """(B, N, 4, 4) camera -> LiDAR frame."""
        return torch.linalg.inv(self.lidar2cam)

    # ------------------------------------------------------------------ geometry
    def project_points(self, points: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
        """Projects points of the augmented LiDAR frame into every (augmented) image.

        Args:
            points: (B, P, 3) points in the LiDAR frame after BEV augmentation.
            eps: depths below this are clamped before the division.

        Returns:
            uv: (B, N, P, 2) pixel coordinates in the augmented image.
            depth: (B, N, P) depth along the camera's optical axis (negative = behind the camera).
        """
        if points.dim() != 3 or points.shape[-1] != 3 or points.shape[0] != self.batch_size:
            raise ValueError(f"project_points: expected (B={self.batch_size}, P, 3), got {tuple(points.shape)}")
        homo = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)  # (B, P, 4)
        # Depth comes from the camera frame: img_aug may scale pixel rows, not depth.
        cam = torch.einsum("bnij,bpj->bnpi", self.lidar2cam @ torch.linalg.inv(self.lidar_aug)[:, None], homo)
        depth = cam[..., 2]
        pix = torch.einsum("bnij,bnpj->bnpi", self.cam2img, cam)
        uv1 = torch.cat([pix[..., :2] / depth.clamp(min=eps).unsqueeze(-1), torch.ones_like(depth)[..., None]], -1)
        uv_aug = torch.einsum("bnij,bnpj->bnpi", self.img_aug[..., :3, :3], uv1)
        return uv_aug[..., :2], depth

    def unproject(self, uv: Tensor, depth: Tensor) -> Tensor:
        """Lifts augmented-image pixels with depths to the augmented LiDAR frame.

        Args:
            uv: (B, N, ..., 2) pixel coordinates in the augmented image.
            depth: (B, N, ...) depth along each camera's optical axis.

        Returns:
            (B, N, ..., 3) points in the LiDAR frame after BEV augmentation.
        """
        batch, cams = uv.shape[:2]
        if (batch, cams) != (self.batch_size, self.num_cams) or depth.shape != uv.shape[:-1]:
            raise ValueError(
                f"unproject: uv {tuple(uv.shape)} / depth {tuple(depth.shape)} do not match "
                f"(B={self.batch_size}, N={self.num_cams}, ..., 2)"
            )
        flat_uv = uv.reshape(batch, cams, -1, 2)
        flat_depth = depth.reshape(batch, cams, -1)
        uv1 = torch.cat([flat_uv, torch.ones_like(flat_uv[..., :1])], -1)
        uv_orig = torch.einsum("bnij,bnpj->bnpi", torch.linalg.inv(self.img_aug[..., :3, :3]), uv1)
        rays = torch.einsum("bnij,bnpj->bnpi", torch.linalg.inv(self.cam2img[..., :3, :3]), uv_orig)
        cam = rays / rays[..., 2:3] * flat_depth[..., None]
        homo = torch.cat([cam, torch.ones_like(cam[..., :1])], -1)
        cam2aug_lidar = self.lidar_aug[:, None] @ self.cam2lidar
        lidar = torch.einsum("bnij,bnpj->bnpi", cam2aug_lidar, homo)[..., :3]
        return lidar.reshape(*uv.shape[:-1], 3)
