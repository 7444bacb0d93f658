"""A bird's-eye-view picture of the LiDAR frame: points, 3D boxes and BEV rasters in metres."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .panel_grid import BACKGROUND

# Box corners (see box_corners): bottom face 0-3, top face 4-7, each counter-clockwise from the
# front-left corner; 0-1 is the front bottom edge.
BOX_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 0),
    (4, 5), (5, 6), (6, 7), (7, 4),
    (0, 4), (1, 5), (2, 6), (3, 7),
)  # fmt: skip


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of LiDAR-frame boxes.

    Args:
        boxes: (N, >=7) ``(x, y, z_bottom, l, w, h, yaw, ...)``, mmdet3d's ``LiDARInstance3DBoxes``
            layout (x forward, y left, z up; ``l`` along the heading ``yaw`` about +z from +x).

    Returns:
        (N, 8, 3) corners: 0 front-left, 1 front-right, 2 rear-right, 3 rear-left on the bottom face,
        4-7 the same above them on the top face.
    """
    boxes = np.atleast_2d(np.asarray(boxes, np.float64))
    x, y, z, length, width, height, yaw = (boxes[:, i] for i in range(7))
    local = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])  # (front, left) fractions
    dx = local[None, :, 0] * length[:, None]
    dy = local[None, :, 1] * width[:, None]
    cos, sin = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    cx = x[:, None] + cos * dx - sin * dy
    cy = y[:, None] + sin * dx + cos * dy
    bottom = np.stack([cx, cy, np.broadcast_to(z[:, None], cx.shape)], -1)
    top = bottom + np.stack([np.zeros_like(cx), np.zeros_like(cx), np.broadcast_to(height[:, None], cx.shape)], -1)
    return np.concatenate([bottom, top], 1)


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """(N, >=7) LiDAR boxes -> (N, 3) gravity centres (z_bottom + h / 2)."""
    boxes = np.asarray(boxes, np.float64)
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] + boxes[:, 5] / 2], -1)


class BEVCanvas:
    """A square top view of the LiDAR frame, x forward pointing up the picture and y left pointing left.

    Pixel (row r, column c) has its centre at ``x = x_max - (r + 0.5) res``, ``y = y_max - (c + 0.5) res``
    with ``res = (x_max - x_min) / size`` metres per pixel; :meth:`to_pixel` is the continuous inverse
    (column, row). Every ``draw_*`` method paints into :attr:`image` ((size, size, 3) uint8 BGR).

    Args:
        bev_range: (x_min, y_min, ..., x_max, y_max, ...) in metres, as the configs' ``bev_range``
            (six numbers) or (x_min, y_min, x_max, y_max); must be square.
        size: picture side in pixels.
    """

    def __init__(self, bev_range: Sequence[float], size: int = 400) -> None:
        values = list(bev_range)
        if len(values) == 6:
            values = [values[0], values[1], values[3], values[4]]
        if len(values) != 4:
            raise ValueError(f"BEVCanvas: bev_range needs 4 or 6 numbers, got {bev_range}")
        self.x_min, self.y_min, self.x_max, self.y_max = (float(v) for v in values)
        if not np.isclose(self.x_max - self.x_min, self.y_max - self.y_min):
            raise ValueError(f"BEVCanvas: bev_range must be square, got {bev_range}")
        self.size = int(size)
        self.res = (self.x_max - self.x_min) / self.size
        self.image = np.full((self.size, self.size, 3), BACKGROUND, np.uint8)

    def copy(self) -> BEVCanvas:
        """A canvas with the same geometry and a copy of the picture."""
        other = BEVCanvas((self.x_min, self.y_min, self.x_max, self.y_max), self.size)
        other.image = self.image.copy()
        return other

    # ------------------------------------------------------------------ geometry
    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) LiDAR (x, y) metres -> (..., 2) continuous (column, row) pixels (pixel centres at k + 0.5)."""
        xy = np.asarray(xy, np.float64)
        return np.stack([(self.y_max - xy[..., 1]) / self.res, (self.x_max - xy[..., 0]) / self.res], -1)

    def pixel_centres(self) -> np.ndarray:
        """(size, size, 2) LiDAR (x, y) of every pixel centre."""
        k = (np.arange(self.size) + 0.5) * self.res
        x = np.broadcast_to((self.x_max - k)[:, None], (self.size, self.size))
        y = np.broadcast_to((self.y_max - k)[None, :], (self.size, self.size))
        return np.stack([x, y], -1)

    def _int_pixels(self, xy: np.ndarray) -> np.ndarray:
        pix = np.clip(self.to_pixel(xy), -1e4, 1e4)
        return np.floor(pix).astype(np.int32)

    # ------------------------------------------------------------------ drawing
    def draw_points(self, points: np.ndarray, color: tuple[int, int, int]) -> None:
        """Paints the pixel under each (P, >=2) LiDAR point (x, y first)."""
        pix = self._int_pixels(np.asarray(points)[:, :2])
        inside = (pix >= 0).all(1) & (pix < self.size).all(1)
        self.image[pix[inside, 1], pix[inside, 0]] = color

    def draw_boxes(self, boxes: np.ndarray, color: tuple[int, int, int], thickness: int = 1) -> None:
        """Outlines (N, >=7) LiDAR boxes (footprint, a heading line from the centre to the front edge) and
        fills a 2-pixel dot at each centre."""
        if len(boxes) == 0:
            return
        corners = box_corners(boxes)[:, :4, :2]
        for footprint, box in zip(corners, np.asarray(boxes, np.float64)):
            pix = self._int_pixels(footprint)
            cv2.polylines(self.image, [pix.reshape(-1, 1, 2)], True, color, thickness, cv2.LINE_AA)
            centre = self._int_pixels(box[:2])
            front = self._int_pixels(footprint[:2].mean(0))
            cv2.line(self.image, tuple(int(v) for v in centre), tuple(int(v) for v in front), color, thickness)
            cv2.circle(self.image, tuple(int(v) for v in centre), 2, color, -1)

    def sample_grid(
        self,
        raster: np.ndarray,
        x_bound: Sequence[float],
        y_bound: Sequence[float],
        lidar2grid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Reads a BEV raster at every pixel centre (nearest cell).

        Args:
            raster: (X, Y) raster, row i covering x in ``x_bound[0] + [i, i + 1) x_bound[2]``, column j
                covering y likewise (BEVFusion's map grid, Occ3D's slices).
            x_bound, y_bound: (min, max, cell) in metres, in the raster's frame.
            lidar2grid: (4, 4) transform from this canvas's LiDAR frame into the raster's frame (e.g.
                ``lidar2ego`` for Occ3D grids); only its x/y rotation and translation are used. None:
                the raster is in the LiDAR frame.

        Returns:
            (size, size) int64 cell values; -1 where the pixel centre lies outside the raster.
        """
        xy = self.pixel_centres()
        if lidar2grid is not None:
            m = np.asarray(lidar2grid, np.float64)
            xy = xy @ m[:2, :2].T + m[:2, 3]
        i = np.floor((xy[..., 0] - x_bound[0]) / x_bound[2]).astype(np.int64)
        j = np.floor((xy[..., 1] - y_bound[0]) / y_bound[2]).astype(np.int64)
        inside = (i >= 0) & (i < raster.shape[0]) & (j >= 0) & (j < raster.shape[1])
        values = np.full(i.shape, -1, np.int64)
        values[inside] = np.asarray(raster)[i[inside], j[inside]]
        return values

    def draw_labels(self, labels: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> None:
        """Paints (size, size) per-pixel labels (e.g. from :meth:`sample_grid`) with ``colors[label]``;
        labels outside ``range(len(colors))`` are not drawn."""
        palette = np.asarray(colors, np.uint8)
        drawn = (labels >= 0) & (labels < len(palette))
        self.image[drawn] = palette[labels[drawn]]

    def draw_ego(self, color: tuple[int, int, int] = (255, 255, 255)) -> None:
        """A small triangle at the LiDAR origin pointing along +x."""
        tri = self._int_pixels(np.array([[1.5, 0.0], [-1.0, 0.9], [-1.0, -0.9]]))
        cv2.fillPoly(self.image, [tri.reshape(-1, 1, 2)], color)
