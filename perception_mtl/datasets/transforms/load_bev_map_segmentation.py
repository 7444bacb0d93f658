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

    Args:
        data_root: dataset root holding ``maps/expansion/<location>.json``.
        xbound, ybound: (min, max, step) in metres.
        classes: names from MAP_CLASSES, in output order.
        canvas_resolution: metres per pixel of the intermediate map drawing.
    """

    def __init__(
        self,
        data_root: str,
        xbound: tuple[float, float, float] = (-50.0, 50.0, 0.5),
        ybound: tuple[float, float, float] = (-50.0, 50.0, 0.5),
        classes: tuple[str, ...] = tuple(MAP_CLASSES),
        canvas_resolution: float = 0.25,
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
        self._maps: dict = {}  # location -> NuScenesMap, loaded once per worker

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

        # Draw an axis-aligned patch that covers every sampled point, then look the points up.
        lo, hi = world.min(0) - 1.0, world.max(0) + 1.0
        centre, size = (lo + hi) / 2, hi - lo
        canvas = (int(np.ceil(size[1] / self.canvas_resolution)), int(np.ceil(size[0] / self.canvas_resolution)))
        layers = sorted({layer for c in self.classes for layer in MAP_CLASSES[c]})
        masks = self._map(location, token).get_map_mask(
            (centre[0], centre[1], size[1], size[0]), 0.0, layers, canvas_size=canvas
        )
        # get_map_mask: row = y (north) index, column = x index, patch corner at (lo_x, lo_y).
        cols = np.clip(np.floor((world[:, 0] - lo[0]) / size[0] * canvas[1]).astype(int), 0, canvas[1] - 1)
        rows = np.clip(np.floor((world[:, 1] - lo[1]) / size[1] * canvas[0]).astype(int), 0, canvas[0] - 1)
        by_layer = {name: masks[i][rows, cols].reshape(h, w) > 0 for i, name in enumerate(layers)}
        seg = np.stack([np.any([by_layer[layer] for layer in MAP_CLASSES[c]], axis=0) for c in self.classes])
        results["gt_bev_seg"] = seg.astype(np.uint8)
        return results
