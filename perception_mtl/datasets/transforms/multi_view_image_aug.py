"""Resize / crop / flip / rotate of every camera image, with the matching exact matrix."""

from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.registry import TRANSFORMS


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


@TRANSFORMS.register_module()
class MultiViewImageAug(BaseTransform):
    """BEVFusion-style image augmentation that keeps the calibration exact.

    For each camera a 2D affine ``A`` (3x3 on homogeneous pixels, OpenCV's integer-pixel-centre
    convention, the one the intrinsics use) is composed from resize -> crop -> horizontal flip ->
    rotation about the output centre; the image is warped with exactly ``A`` and
    ``results['img_aug'][i][:3, :3]`` becomes ``A @ img_aug``. So projecting with
    ``img_aug @ cam2img @ lidar2cam`` lands where the augmented image shows the point.

    Args:
        final_size: output (H, W).
        resize_lim: range of the resize factor (train); its mean at test time.
        bot_pct_lim: range of the fraction of the resized image cut from the bottom before the
            crop (train); its mean at test time.
        rot_lim: rotation range in degrees (train only).
        rand_flip: flip horizontally with probability 0.5 (train only).
        is_train: random parameters in training, fixed (mean, no flip/rotation) at test time.
    """

    def __init__(
        self,
        final_size: tuple[int, int] = (256, 704),
        resize_lim: tuple[float, float] = (0.38, 0.55),
        bot_pct_lim: tuple[float, float] = (0.0, 0.0),
        rot_lim: tuple[float, float] = (-5.4, 5.4),
        rand_flip: bool = True,
        is_train: bool = True,
    ) -> None:
        if resize_lim[0] <= 0 or resize_lim[0] > resize_lim[1]:
            raise ValueError(f"MultiViewImageAug: resize_lim must be 0 < low <= high, got {resize_lim}")
        self.final_size = tuple(final_size)
        self.resize_lim = resize_lim
        self.bot_pct_lim = bot_pct_lim
        self.rot_lim = rot_lim
        self.rand_flip = rand_flip
        self.is_train = is_train

    def sample_affine(self, height: int, width: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draws the 3x3 affine for one image of size (height, width)."""
        rng = rng or np.random
        out_h, out_w = self.final_size
        if self.is_train:
            scale = rng.uniform(*self.resize_lim)
            bot_pct = rng.uniform(*self.bot_pct_lim)
            flip = self.rand_flip and rng.uniform() < 0.5
            angle = rng.uniform(*self.rot_lim)
        else:
            scale, bot_pct, flip, angle = np.mean(self.resize_lim), np.mean(self.bot_pct_lim), False, 0.0
        new_h, new_w = height * scale, width * scale
        crop_top = int((1 - bot_pct) * new_h) - out_h
        crop_left = rng.uniform(0, max(0.0, new_w - out_w)) if self.is_train else max(0.0, new_w - out_w) / 2
        affine = np.diag([scale, scale, 1.0])
        affine = _translate(-int(crop_left), -crop_top) @ affine
        if flip:
            affine = np.array([[-1.0, 0.0, out_w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ affine
        if angle:
            cx, cy = (out_w - 1) / 2, (out_h - 1) / 2
            rad = np.deg2rad(angle)
            rot = np.array([[np.cos(rad), np.sin(rad), 0.0], [-np.sin(rad), np.cos(rad), 0.0], [0.0, 0.0, 1.0]])
            affine = _translate(cx, cy) @ rot @ _translate(-cx, -cy) @ affine
        return affine

    def transform(self, results: dict) -> dict:
        out_h, out_w = self.final_size
        images, img_aug = [], results["img_aug"].copy()
        for i, image in enumerate(results["img"]):
            affine = self.sample_affine(*image.shape[:2])
            images.append(
                cv2.warpAffine(
                    image, affine[:2], (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
                )
            )
            img_aug[i, :3, :3] = (affine @ img_aug[i, :3, :3].astype(np.float64)).astype(np.float32)
        results["img"] = images
        results["img_aug"] = img_aug
        results["img_shape"] = (out_h, out_w)
        return results
