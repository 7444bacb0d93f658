"""The world at one instant as the sensors see it: a flat ground plus z-rotated boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PrimitiveSet:
    """Boxes in the global frame at one time.

    Attributes:
        centers: (N, 3) geometric centres (m, global frame).
        half_sizes: (N, 3) half extents along the box's own (x, y, z) axes (m).
        yaws: (N,) rotation about +z (rad).
        colors: (N, 3) RGB albedo in 0..1.
        reflectivity: (N,) LiDAR intensity at normal incidence.
        owners: (N,) index of the actor a box belongs to, -1 for static structures.
        occ_labels: (N,) Occ3D label id of the box's volume.
        textures: (N,) 0 plain, 1 facade with windows, 2 foliage, 3 vehicle glass.
    """

    centers: np.ndarray
    half_sizes: np.ndarray
    yaws: np.ndarray
    colors: np.ndarray
    reflectivity: np.ndarray
    owners: np.ndarray
    occ_labels: np.ndarray
    textures: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)

    def select(self, mask: np.ndarray) -> PrimitiveSet:
        return PrimitiveSet(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    @staticmethod
    def concatenate(sets: list[PrimitiveSet]) -> PrimitiveSet:
        return PrimitiveSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in PrimitiveSet.__dataclass_fields__))

    def within(self, point: np.ndarray, radius: float) -> PrimitiveSet:
        """Boxes whose footprint may come within ``radius`` (m) of ``point`` (x, y)."""
        reach = np.linalg.norm(self.half_sizes[:, :2], axis=1)
        dist = np.linalg.norm(self.centers[:, :2] - np.asarray(point)[:2], axis=1)
        return self.select(dist - reach < radius)
