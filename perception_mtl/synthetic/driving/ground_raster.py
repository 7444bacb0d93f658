"""The ground of a city as a material image: what a camera or LiDAR ray sees where it hits z = 0.

One byte per 0.1 m cell over the whole canvas. Row r, column c covers global
``x in [c * res, (c + 1) * res)``, ``y in [r * res, (r + 1) * res)`` (rows grow with y, unlike the
nuScenes semantic-prior PNG, which :meth:`semantic_prior_png` flips).
"""

from __future__ import annotations

import cv2
import numpy as np
from shapely.geometry import Polygon

from .city_map import CityMap
from .object_catalog import OCC_DRIVEABLE, OCC_MANMADE, OCC_SIDEWALK, OCC_TERRAIN

# Material ids.
TERRAIN, ASPHALT, WALKWAY, CROSSING_PAINT, LANE_PAINT, DIVIDER_PAINT, STOP_PAINT, CARPARK, BUILDING = range(9)

# Per material: RGB (0..1), LiDAR reflectivity (intensity at normal incidence), Occ3D label.
MATERIAL_COLOR = np.array(
    [
        [0.33, 0.42, 0.20],  # terrain (grass)
        [0.30, 0.30, 0.31],  # asphalt
        [0.62, 0.60, 0.56],  # walkway paving
        [0.88, 0.88, 0.86],  # crossing paint
        [0.88, 0.88, 0.86],  # lane paint
        [0.86, 0.72, 0.20],  # divider paint (yellow)
        [0.90, 0.90, 0.88],  # stop line paint
        [0.26, 0.26, 0.27],  # car-park asphalt
        [0.50, 0.48, 0.45],  # building footing
    ],
    dtype=np.float32,
)
MATERIAL_REFLECTIVITY = np.array([12.0, 8.0, 22.0, 90.0, 90.0, 80.0, 90.0, 8.0, 30.0], dtype=np.float32)
MATERIAL_OCC_LABEL = np.array(
    [
        OCC_TERRAIN,
        OCC_DRIVEABLE,
        OCC_SIDEWALK,
        OCC_DRIVEABLE,
        OCC_DRIVEABLE,
        OCC_DRIVEABLE,
        OCC_DRIVEABLE,
        OCC_DRIVEABLE,
        OCC_MANMADE,
    ],
    dtype=np.uint8,
)


class GroundRaster:
    """Rasterises a :class:`CityMap` into materials.

    Args:
        city: the city.
        resolution: cell size (m).
    """

    def __init__(self, city: CityMap, resolution: float = 0.1) -> None:
        self.resolution = resolution
        width, height = city.canvas_edge
        self.shape = (int(np.ceil(height / resolution)), int(np.ceil(width / resolution)))
        grid = np.full(self.shape, TERRAIN, dtype=np.uint8)
        layers = city.layers
        self._fill(grid, [r["geometry"] for r in layers["walkway"]], WALKWAY)
        self._fill(grid, city.drivable_polygons(), ASPHALT)
        self._fill(grid, [r["geometry"] for r in layers["carpark_area"]], CARPARK)
        self._fill(grid, city.crossing_stripes, CROSSING_PAINT)
        self._fill(grid, city.stop_bands, STOP_PAINT)
        self._fill(grid, city.lane_markings, LANE_PAINT)
        self._fill(grid, city.road_markings, DIVIDER_PAINT)
        statics = city.statics
        footings = [
            Polygon(_rect_corners(c[:2], s[:2], y))
            for c, s, y, o in zip(statics.centers, statics.sizes, statics.yaws, statics.occ_labels)
            if o == OCC_MANMADE and s[2] > 4.0 and s[0] > 2.0
        ]
        self._fill(grid, footings, BUILDING)
        self.materials = grid

    def _fill(self, grid: np.ndarray, polygons: list[Polygon], value: int) -> None:
        """Fills polygons (holes kept) with ``value``; cell centres inside a polygon are filled."""
        shift = 3  # sub-pixel vertex precision 1/8 cell
        scale = float(1 << shift) / self.resolution
        for poly in polygons:
            if poly.is_empty:
                continue
            rings = [np.asarray(poly.exterior.coords)] + [np.asarray(r.coords) for r in poly.interiors]
            # Cell (c, r) is centred at ((c + 0.5) res, (r + 0.5) res): cv2 wants centre-based coordinates.
            pts = [np.round(ring * scale - 0.5 * (1 << shift)).astype(np.int32) for ring in rings]
            if len(pts) == 1:
                cv2.fillPoly(grid, pts, int(value), lineType=cv2.LINE_8, shift=shift)
            else:
                mask = np.zeros_like(grid)
                cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=shift)  # even-odd keeps the holes
                grid[mask.astype(bool)] = value

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Material ids at global points (terrain outside the canvas). Shapes follow ``x``."""
        col = np.floor(np.asarray(x) / self.resolution).astype(np.int64)
        row = np.floor(np.asarray(y) / self.resolution).astype(np.int64)
        inside = (row >= 0) & (row < self.shape[0]) & (col >= 0) & (col < self.shape[1])
        out = np.full(np.shape(x), TERRAIN, dtype=np.uint8)
        out[inside] = self.materials[row[inside], col[inside]]
        return out

    def semantic_prior_png(self, resolution: float = 0.1) -> np.ndarray:
        """The nuScenes-style semantic prior (255 on drivable surface and walkways), north up."""
        prior = np.where(self.materials == TERRAIN, 0, 255).astype(np.uint8)
        prior[self.materials == BUILDING] = 0
        if resolution != self.resolution:
            size = (
                int(round(self.shape[1] * self.resolution / resolution)),
                int(round(self.shape[0] * self.resolution / resolution)),
            )
            prior = cv2.resize(prior, size, interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(prior[::-1])


def _rect_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    half = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * size / 2.0
    return center + half @ np.array([[c, s], [-s, c]])
