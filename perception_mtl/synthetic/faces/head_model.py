"""A parametric 3D head for synthetic faces: an ellipsoid skull, an ellipsoid nose and 68 landmarks.

Head frame (units of the head's half height): x right, y down, z away from the camera; a
frontal face looks along -z. The 68 points follow the Multi-PIE / 300W layout (jaw 0-16,
eyebrows 17-26, nose 27-35, eyes 36-47, mouth 48-67), "left" meaning image-left in a frontal
view; the five RetinaFace points are derived from them as in the usual 68 -> 5 reduction
(eye centres = means of 36-41 / 42-47, nose tip 30, mouth corners 48 and 54).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_CENTRE = (0.3, -0.12)
EYE_RADII = (0.13, 0.055)
MOUTH_CENTRE_Y = 0.5
MOUTH_HALF_WIDTH = 0.24
MOUTH_HALF_HEIGHT = 0.07


@dataclass
class HeadModel:
    """One head's shape: skull semi-axes and nose ellipsoid (head units)."""

    axes: np.ndarray  # (3,) skull semi-axes (a, b=1, c)
    nose_centre: np.ndarray  # (3,)
    nose_axes: np.ndarray  # (3,)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HeadModel:
        axes = np.array([rng.uniform(0.7, 0.8), 1.0, rng.uniform(0.82, 0.92)])
        nose_axes = np.array([rng.uniform(0.09, 0.12), rng.uniform(0.2, 0.24), rng.uniform(0.18, 0.24)])
        y = 0.08
        nose_centre = np.array([0.0, y, surface_z(axes, 0.0, y) + 0.4 * nose_axes[2]])
        return cls(axes, nose_centre, nose_axes)

    @property
    def nose_tip(self) -> np.ndarray:
        return self.nose_centre - np.array([0.0, 0.0, self.nose_axes[2]])

    def landmarks68(self) -> np.ndarray:
        """(68, 3) landmarks in the head frame (on the skull's front surface, nose on the nose)."""
        pts = np.zeros((68, 3))
        a = self.axes[0]
        phi = np.linspace(np.pi, 0.0, 17)  # jaw: image-left temple, around the chin, image-right temple
        pts[0:17, 0] = 0.92 * a * np.cos(phi)
        pts[0:17, 1] = -0.05 + 0.88 * np.sin(phi)
        brow_x = np.linspace(-0.47, -0.13, 5)
        pts[17:22, 0], pts[17:22, 1] = brow_x, -0.3 - 0.06 * np.sin(np.linspace(0.3, np.pi - 0.3, 5))
        pts[22:27, 0], pts[22:27, 1] = -brow_x[::-1], pts[17:22, 1][::-1]
        for k, side in ((36, -1.0), (42, 1.0)):
            theta = np.pi + np.arange(6) * np.pi / 3  # outer corner first (for the image-left eye)
            if side > 0:
                theta = np.pi - theta  # mirrored order of 42-47
            pts[k : k + 6, 0] = side * EYE_CENTRE[0] + EYE_RADII[0] * np.cos(theta)
            pts[k : k + 6, 1] = EYE_CENTRE[1] + EYE_RADII[1] * np.sin(theta)
        pts[31:36, 0], pts[31:36, 1] = np.linspace(-0.11, 0.11, 5), 0.26
        theta = np.pi - np.arange(12) * np.pi / 6  # 48 = image-left corner, clockwise on screen via the top lip
        pts[48:60, 0] = MOUTH_HALF_WIDTH * np.cos(theta)
        pts[48:60, 1] = MOUTH_CENTRE_Y - MOUTH_HALF_HEIGHT * np.sin(theta)
        theta = np.pi - np.arange(8) * np.pi / 4
        pts[60:68, 0] = 0.6 * MOUTH_HALF_WIDTH * np.cos(theta)
        pts[60:68, 1] = MOUTH_CENTRE_Y - 0.4 * MOUTH_HALF_HEIGHT * np.sin(theta)
        pts[:, 2] = surface_z(self.axes, pts[:, 0], pts[:, 1])
        # Nose bridge 27-30 runs down to the tip (30); nostrils 31-35 sit at the nose's base.
        t = np.linspace(0.0, 1.0, 4)
        bridge_top = np.array([0.0, -0.14, surface_z(self.axes, 0.0, -0.14)])
        pts[27:31] = bridge_top + t[:, None] * (self.nose_tip - bridge_top)
        pts[31:36, 2] = np.minimum(pts[31:36, 2], self.nose_centre[2] - 0.4 * self.nose_axes[2])
        return pts

    def landmarks5(self) -> np.ndarray:
        """(5, 3): left eye, right eye, nose tip, left mouth corner, right mouth corner."""
        return five_from_68(self.landmarks68())


def five_from_68(pts68: np.ndarray) -> np.ndarray:
    """(..., 68, D) -> (..., 5, D): eye centres (means of 36-41, 42-47), nose tip 30, mouth corners 48, 54."""
    return np.stack(
        [
            pts68[..., 36:42, :].mean(-2),
            pts68[..., 42:48, :].mean(-2),
            pts68[..., 30, :],
            pts68[..., 48, :],
            pts68[..., 54, :],
        ],
        -2,
    )


def surface_z(axes: np.ndarray, x, y) -> np.ndarray:
    """z of the skull's front (camera-facing, z < 0) surface above (x, y)."""
    inside = np.clip(1.0 - (np.asarray(x) / axes[0]) ** 2 - (np.asarray(y) / axes[1]) ** 2, 0.0, None)
    return -axes[2] * np.sqrt(inside)
