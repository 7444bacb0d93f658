"""Map ground truth: BEVFusion's 6 map classes rasterised around the (augmented) LiDAR frame."""

from __future__ import annotations

import os

import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import TRANSFORMS

# BEVFusion's map classes and the map-expansion layers each is drawn from.
MAP_CLASSES: dict[str, tuple[str, ...]] = {
    "drivable_area": ("road_segment", "lane"),
    "ped_crossing": ("ped_crossing",),
    "walkway": ("walkway",),
    "stop_line": ("stop_line",),
    "carpark_area": ("carpark_area",),
    "divider": ("road_divider", "lane_divider"),
}


@TRANSFORMS.register_module()
class LoadBEVMapSegmentation(BaseTransform):
    """Rasterises the map expansion into ``gt_bev_seg`` (K, H, W) in the augmented LiDAR frame.

    Cell (i, j) covers x in ``xbound`` along i and y in ``ybound`` along j (row i = x index, as
    BEVFusion's BEV grids), and the cell centre is mapped through ``inv(lidar_aug)``,
    ``lidar2ego`` and ``ego2global`` into the map, so the raster moves with the BEV augmentation.
    The map is first drawn axis-aligned around the LiDAR with nuscenes-devkit's ``get_map_mask``
    at ``canvas_resolution`` and then sampled at the cell centres (nearest).

    Drawing is most of the cost (shapely clips every polygon near the ego), and under a BEV
    augmentation the drawn patch changes every epoch although the map around a sample does not. With
    ``cache_tokens > 0`` the transform draws, once per sample token, a square patch around the LiDAR
    that covers every cell any augmentation in ``cache_reach`` can bring into the grid, keeps it
    bit-packed (one bit per pixel and class) for up to ``cache_tokens`` samples per process (a data
    worker keeps its cache across epochs with ``persistent_workers``), and only samples it afterwards.
    A sample whose augmented grid leaves the cached patch is drawn afresh. The pixel grid of the big
    patch is not that of a fresh drawing, so a cell on a polygon edge may round the other way.

    Args:
        data_root: dataset root holding ``maps/expansion/<location>.json``.
        xbound, ybound: (min, max, step) in metres.
        classes: names from MAP_CLASSES, in output order.
        canvas_resolution: metres per pixel of the intermediate map drawing.
        cache_tokens: how many samples' patches one process keeps; 0 (default) draws every time.
            A patch of the default grid takes about 50 kB per class.
        cache_reach: half-size in metres of the cached patch around the LiDAR; the default covers
            the grid's corners under any rotation, a scale down to 0.95 and a 3 m shift.
    """

    def __init__(
        self,
        data_root: str,
        xbound: tuple[float, float, float] = (-50.0, 50.0, 0.5),
        ybound: tuple[float, float, float] = (-50.0, 50.0, 0.5),
        classes: tuple[str, ...] = tuple(MAP_CLASSES),
        canvas_resolution: float = 0.25,
        cache_tokens: int = 0,
        cache_reach: float | None = None,
    ) -> None:
        unknown = set(classes) - set(MAP_CLASSES)
        if unknown:
            raise ValueError(
                f"LoadBEVMapSegmentation: unknown map classes {sorted(unknown)}; known {list(MAP_CLASSES)}"
            )
        self.data_root = data_root
        self.xbound, self.ybound = xbound, ybound
        self.classes = tuple(classes)
        self.canvas_resolution = canvas_resolution
        if cache_tokens < 0:
            raise ValueError(f"LoadBEVMapSegmentation: cache_tokens must be >= 0, got {cache_tokens}")
        self.cache_tokens = int(cache_tokens)
        if cache_reach is None:
            corner = np.hypot(max(abs(v) for v in xbound[:2]), max(abs(v) for v in ybound[:2]))
            cache_reach = corner / 0.95 + 3.0
        self.cache_reach = float(cache_reach)
        self._maps: dict = {}  # location -> NuScenesMap, loaded once per worker
        self._patches: dict = {}  # token -> (lo (2,), size (2,), canvas (rows, cols), packed class bits)

    def _map(self, location: str, token: str | None):
        if location not in self._maps:
            from nuscenes.map_expansion.map_api import NuScenesMap

            path = os.path.join(self.data_root, "maps", "expansion", f"{location}.json")
            if not os.path.isfile(path):
                raise BadSampleError(f"map expansion for location {location!r} not found", path, token)
            self._maps[location] = NuScenesMap(dataroot=self.data_root, map_name=location)
        return self._maps[location]

    def cell_centres(self) -> np.ndarray:
        """(H, W, 2) cell centres (x, y) in the augmented LiDAR frame."""
        xs = np.arange(self.xbound[0] + self.xbound[2] / 2, self.xbound[1], self.xbound[2])
        ys = np.arange(self.ybound[0] + self.ybound[2] / 2, self.ybound[1], self.ybound[2])
        return np.stack(np.meshgrid(xs, ys, indexing="ij"), -1)

    def transform(self, results: dict) -> dict:
        token = results.get("token")
        location = results.get("map_location")
        if not location:
            raise BadSampleError("info record has no map_location", None, token)
        lidar2global = np.asarray(results["ego2global"], np.float64) @ np.asarray(
            results["lidar_points"]["lidar2ego"], np.float64
        )
        aug = np.asarray(results.get("lidar_aug", np.eye(4)), np.float64)
        centres = self.cell_centres()
        h, w = centres.shape[:2]
        homo = np.concatenate([centres.reshape(-1, 2), np.zeros((h * w, 1)), np.ones((h * w, 1))], 1)
        world = (homo @ (lidar2global @ np.linalg.inv(aug)).T)[:, :2]

        patch = self._cached_patch(token, location, lidar2global, world)
        if patch is None:
            # Draw an axis-aligned patch that covers every sampled point.
            lo, hi = world.min(0) - 1.0, world.max(0) + 1.0
            patch = (*self._draw(location, token, lo, hi), False)
        lo, size, canvas, masks, packed = patch
        # Class masks: row = y (north) index, column = x index, patch corner at (lo_x, lo_y).
        cols = np.clip(np.floor((world[:, 0] - lo[0]) / size[0] * canvas[1]).astype(int), 0, canvas[1] - 1)
        rows = np.clip(np.floor((world[:, 1] - lo[1]) / size[1] * canvas[0]).astype(int), 0, canvas[0] - 1)
        if packed:  # read the looked-up bits only (np.packbits is big-endian within a byte)
            seg = (masks[:, rows, cols >> 3] >> (7 - (cols & 7)).astype(np.uint8)) & 1
        else:
            seg = masks[:, rows, cols]
        seg = seg.reshape(len(self.classes), h, w)
        results["gt_bev_seg"] = seg.astype(np.uint8)
        return results

    def _draw(self, location: str, token: str | None, lo: np.ndarray, hi: np.ndarray) -> tuple:
        """The map over the world-frame box [lo, hi] as (lo, size, canvas, (K, rows, cols) bool class masks)."""
        centre, size = (lo + hi) / 2, hi - lo
        canvas = (int(np.ceil(size[1] / self.canvas_resolution)), int(np.ceil(size[0] / self.canvas_resolution)))
        layers = sorted({layer for c in self.classes for layer in MAP_CLASSES[c]})
        drawn = self._map(location, token).get_map_mask(
            (centre[0], centre[1], size[1], size[0]), 0.0, layers, canvas_size=canvas
        )
        by_layer = {name: drawn[i] > 0 for i, name in enumerate(layers)}
        masks = np.stack([np.any([by_layer[layer] for layer in MAP_CLASSES[c]], axis=0) for c in self.classes])
        return lo, size, canvas, masks

    def _cached_patch(self, token: str | None, location: str, lidar2global: np.ndarray, world: np.ndarray):
        """The cached patch of ``token`` (drawn on first use) if it covers ``world``; None otherwise."""
        if self.cache_tokens == 0 or token is None:
            return None
        entry = self._patches.get(token)
        if entry is None:
            if len(self._patches) >= self.cache_tokens:
                return None
            origin = lidar2global[:2, 3]
            lo, size, canvas, masks = self._draw(location, token, origin - self.cache_reach, origin + self.cache_reach)
            entry = (lo, size, canvas, np.packbits(masks, axis=-1))
            self._patches[token] = entry
        lo, size, canvas, packed = entry
        if (world.min(0) < lo).any() or (world.max(0) > lo + size).any():
            return None
        return lo, size, canvas, packed, True
