"""Pictures of one stereo pair (UGCL / CVGL) with the true and the predicted horizon."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from perception_mtl.datasets.cvgl_stereo_dataset import PARAM_NAMES
from perception_mtl.structures.camera_geometry import intrinsic_matrix, projection_matrix, rotation_x, vanishing_points

from .panel_grid import GT_COLOR, PRED_COLOR, compose_panels, to_uint8_bgr, upscale


def horizon_row(params) -> float:
    """Image row (pixels, the rig's convention) of the horizon of a road-scene camera.

    The rig (:mod:`perception_mtl.structures.camera_geometry`, road scenes) has ``R = Rx(pitch)``, so the
    ground plane's vanishing line passes through the vanishing point of the world Z axis (along the road)
    and is horizontal (the X axis stays parallel to the image): row ``v0 - fy tan(pitch)``. Both views of a
    rectified pair share fy, v0 and R, hence this row.

    Args:
        params: (10,) calibration in :data:`PARAM_NAMES` order (pitch in radians).
    """
    p = dict(zip(PARAM_NAMES, torch.as_tensor(params, dtype=torch.float64).reshape(-1).tolist()))
    one = torch.ones(1, dtype=torch.float64)
    intrinsics = intrinsic_matrix(p["fx"] * one, p["fy"] * one, p["u0"] * one, p["v0"] * one)
    proj = projection_matrix(intrinsics, rotation_x(p["pitch"] * one), torch.zeros(1, 3, dtype=torch.float64))
    return float(vanishing_points(proj)[0, 2, 1])


class StereoVisualizer:
    """Draws a stereo pair (left | right, upscaled ``scale`` times) with the horizon of the ground-truth
    calibration (green) and, when the model ran, of the predicted one (red), across both views.

    Rows are pixel centres (OpenCV's convention, as the renderer's ``v0``): input row v is drawn at
    ``v * scale + (scale - 1) / 2``.

    Args:
        scale: integer upscaling of the images.
    """

    def __init__(self, scale: int = 3) -> None:
        self.scale = int(scale)

    def draw(self, inputs, sample, header: str) -> dict[str, np.ndarray]:
        """Pictures of one sample.

        Args:
            inputs: (2, 3, H, W) uint8 RGB (left, right), as ``CVGLStereoDataset`` gives it.
            sample: its data element with ``gt_calib`` (10,) and, when a model ran, ``pred_calib`` (10,).
            header: title written above the picture.

        Returns:
            ``{'stereo': picture}``, (H, W, 3) uint8 BGR.
        """
        s = self.scale
        lines = []
        for key, color, name in (("gt_calib", GT_COLOR, "GT"), ("pred_calib", PRED_COLOR, "pred")):
            params = sample.get(key)
            if params is not None:
                pitch = float(torch.as_tensor(params).reshape(-1)[PARAM_NAMES.index("pitch")])
                lines.append((horizon_row(params), color, f"{name} {np.degrees(pitch):.1f}"))
        panels = []
        for view, name in enumerate(("left", "right")):
            image = upscale(to_uint8_bgr(inputs[view], rgb=True), s)
            for row, color, _ in lines:
                if np.isfinite(row):
                    y = int(round(np.clip(row * s + (s - 1) / 2, -1e4, 1e4)))
                    cv2.line(image, (0, y), (image.shape[1] - 1, y), color, 1)
            panels.append((f"{name}, pitch " + " / ".join(text for _, _, text in lines) + " deg", image))
        return {"stereo": compose_panels(panels, 2, header)}
