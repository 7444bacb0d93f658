"""Generated camera + LiDAR BEV rasters with two tasks: car centres (detection) and a road map.

The dataset behind the two-modality, two-task model that gradient balancing
(``perception_mtl.grad_balance``) is proven on. The two modalities see different things, as in a real
BEV fusion model: the LiDAR raster shows crisp car surfaces and only a faint trace of the map
(the raised kerb of the walkway), while the camera raster shows the ground's colours, so the
map, but smears cars along the viewing ray as lift-splat depth uncertainty does. Detection
thus leans on LiDAR and the map on the camera, which is where task and modality gradients
conflict. Each sample comes from its own seeded generator; splits use disjoint seed streams.
"""

from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import DATASETS
from perception_mtl.synthetic.seeded_dataset import SeededGeneratedDataset

_CAR_SIZE = (4.6, 1.9)  # nuScenes car length, width (m)
_CAR_HEIGHT = 1.6
_KERB_HEIGHT = 0.15
# Ground colours (RGB in [0, 1]) seen by the camera.
_COLOURS = {"grass": (0.25, 0.42, 0.20), "road": (0.32, 0.32, 0.34), "walkway": (0.62, 0.60, 0.56)}


@DATASETS.register_module()
class TwoModalityBEVDataset(SeededGeneratedDataset):
    """Scenes of one or two crossing roads with walkways and cars, seen by a camera and a LiDAR.

    Frame: BEV grid centred on the ego sensor, x along columns, y along rows, cell ``cell_m``.

    Inputs (per sample):
        camera (3, S, S): ground and car colours, averaged along the viewing ray over +-25 % of
            the range (depth uncertainty), with a per-sample gain and pixel noise.
        lidar (2, S, S): log(1 + point count) and max point height / 2 m, from ground returns
            (density falling with range, the walkway 15 cm higher) and the car edges facing the
            sensor, with range noise and 30 % dropout.

    Targets (``data_samples``):
        gt_centers (N, 2): car centres (x, y) in metres.
        gt_bev_seg (2, S, S): drivable area and walkway masks in {0, 1}.

    Args:
        split: 'train', 'val' or 'test' (disjoint seed streams, see :class:`SeededGeneratedDataset`).
        num_samples: samples in the split.
        grid_size: cells per side (S).
        cell_m: cell size in metres.
        max_objects: at most this many cars per sample (at least one is attempted).
        seed: base seed.
    """

    METAINFO = {"classes": ("car",), "map_classes": ("drivable_area", "walkway")}

    def __init__(
        self,
        split: str = "train",
        num_samples: int = 512,
        grid_size: int = 32,
        cell_m: float = 0.5,
        max_objects: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__(split, num_samples, seed)
        if grid_size < 16 or max_objects < 1 or cell_m <= 0:
            raise ValueError(
                "TwoModalityBEVDataset: need grid_size >= 16, max_objects >= 1, cell_m > 0; got "
                f"grid_size={grid_size}, max_objects={max_objects}, cell_m={cell_m}"
            )
        self.grid_size = grid_size
        self.cell_m = float(cell_m)
        self.max_objects = max_objects

    def generate(self, index: int, rng: np.random.Generator) -> dict:
        camera, lidar, centers, masks = self._generate(rng)
        sample = BaseDataElement(
            metainfo=dict(sample_idx=index, split=self.split, cell_m=self.cell_m, grid_size=self.grid_size)
        )
        sample.gt_centers = torch.from_numpy(centers)
        sample.gt_bev_seg = torch.from_numpy(masks)
        return dict(inputs=dict(camera=torch.from_numpy(camera), lidar=torch.from_numpy(lidar)), data_samples=sample)

    # ------------------------------------------------------------------ scene

    def _grid(self) -> tuple[np.ndarray, np.ndarray, float]:
        half = self.grid_size * self.cell_m / 2
        centres = (np.arange(self.grid_size) + 0.5) * self.cell_m - half
        gx, gy = np.meshgrid(centres, centres, indexing="xy")
        return gx, gy, half

    def _generate(self, rng: np.random.Generator):
        gx, gy, half = self._grid()
        drivable = np.zeros(gx.shape, dtype=bool)
        walkway = np.zeros(gx.shape, dtype=bool)
        roads = []
        heading = rng.uniform(0, np.pi)
        for r in range(1 if rng.random() < 0.6 else 2):
            theta = heading if r == 0 else heading + np.pi / 2 + rng.uniform(-0.3, 0.3)
            offset, width, walk = rng.uniform(-3, 3), rng.uniform(5.0, 8.0), rng.uniform(1.5, 2.5)
            dist = -np.sin(theta) * gx + np.cos(theta) * gy - offset  # signed distance to the road axis
            drivable |= np.abs(dist) <= width / 2
            walkway |= (np.abs(dist) > width / 2) & (np.abs(dist) <= width / 2 + walk)
            roads.append((theta, offset, width))
        walkway &= ~drivable
        cars = self._place_cars(rng, roads, half)
        centers = np.array([[cx, cy] for cx, cy, _ in cars], dtype=np.float32).reshape(-1, 2)
        masks = np.stack([drivable, walkway]).astype(np.float32)
        lidar = self._lidar(rng, cars, walkway, half)
        camera = self._camera(rng, drivable, walkway, cars, gx, gy, half)
        return camera, lidar, centers, masks

    def _place_cars(self, rng, roads, half) -> list[tuple[float, float, float]]:
        cars: list[tuple[float, float, float]] = []
        for _ in range(rng.integers(1, self.max_objects + 1)):
            if rng.random() < 0.8:  # most cars drive on a road, along it
                theta, offset, width = roads[rng.integers(len(roads))]
                along = rng.uniform(-half + 2, half - 2)
                lateral = offset + rng.uniform(-width / 2 + 1, width / 2 - 1)
                cx = along * np.cos(theta) - lateral * np.sin(theta)
                cy = along * np.sin(theta) + lateral * np.cos(theta)
                yaw = theta + rng.normal(0, 0.1) + (np.pi if rng.random() < 0.5 else 0.0)
            else:
                cx, cy = rng.uniform(-half + 2, half - 2, size=2)
                yaw = rng.uniform(-np.pi, np.pi)
            inside = abs(cx) < half - 1 and abs(cy) < half - 1
            clear = np.hypot(cx, cy) > 2.5 and all(np.hypot(cx - x, cy - y) > 3.5 for x, y, _ in cars)
            if inside and clear:
                cars.append((float(cx), float(cy), float(yaw)))
        return cars

    @staticmethod
    def _footprint(gx, gy, cx, cy, yaw) -> np.ndarray:
        c, s = np.cos(yaw), np.sin(yaw)
        u = c * (gx - cx) + s * (gy - cy)
        v = -s * (gx - cx) + c * (gy - cy)
        return (np.abs(u) <= _CAR_SIZE[0] / 2) & (np.abs(v) <= _CAR_SIZE[1] / 2)

    # ------------------------------------------------------------------ sensors

    def _lidar(self, rng, cars, walkway, half) -> np.ndarray:
        size, cell = self.grid_size, self.cell_m
        n = int(rng.integers(250, 400))
        # Ground returns thin out with range: radius drawn with density ~ 1 / r.
        radius = half * 1.4 * rng.random(n) ** 1.5
        angle = rng.uniform(-np.pi, np.pi, n)
        xy = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
        ij = np.floor((xy + half) / cell).astype(np.int64)
        keep = (ij >= 0).all(1) & (ij < size).all(1)
        xy, ij = xy[keep], ij[keep]
        z = np.where(walkway[ij[:, 1], ij[:, 0]], _KERB_HEIGHT, 0.0) + rng.normal(0, 0.03, len(xy))
        points = [np.concatenate([xy, z[:, None]], 1)]
        for cx, cy, yaw in cars:
            points.append(self._car_surface(rng, cx, cy, yaw))
        pts = np.concatenate(points)
        pts = pts[rng.random(len(pts)) > 0.3]  # dropout
        ij = np.floor((pts[:, :2] + half) / cell).astype(np.int64)
        keep = (ij >= 0).all(1) & (ij < size).all(1)
        ij, z = ij[keep], np.clip(pts[keep, 2], 0.0, None)
        count = np.zeros((size, size), dtype=np.float32)
        height = np.zeros((size, size), dtype=np.float32)
        np.add.at(count, (ij[:, 1], ij[:, 0]), 1.0)
        np.maximum.at(height, (ij[:, 1], ij[:, 0]), z / 2.0)
        return np.stack([np.log1p(count), height])

    @staticmethod
    def _car_surface(rng, cx, cy, yaw) -> np.ndarray:
        """Points on the car edges whose outward normal faces the sensor (self-occlusion)."""
        rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        centre = np.array([cx, cy])
        length, width = _CAR_SIZE
        edges = []
        for normal, along, extent, offset in (
            (np.array([1.0, 0.0]), np.array([0.0, 1.0]), width, length / 2),
            (np.array([-1.0, 0.0]), np.array([0.0, 1.0]), width, length / 2),
            (np.array([0.0, 1.0]), np.array([1.0, 0.0]), length, width / 2),
            (np.array([0.0, -1.0]), np.array([1.0, 0.0]), length, width / 2),
        ):
            mid = centre + rot @ (normal * offset)
            if np.dot(rot @ normal, -mid) <= 0:
                continue
            n = max(3, int(extent * 6))
            t = rng.uniform(-extent / 2, extent / 2, size=n)
            world = centre + (normal * offset + t[:, None] * along) @ rot.T
            world += rng.normal(0, 0.05, size=world.shape)  # range noise
            edges.append(np.concatenate([world, rng.uniform(0.2, _CAR_HEIGHT, size=(n, 1))], 1))
        return np.concatenate(edges) if edges else np.zeros((0, 3))

    def _camera(self, rng, drivable, walkway, cars, gx, gy, half) -> np.ndarray:
        size, cell = self.grid_size, self.cell_m
        colour = np.empty((size, size, 3), dtype=np.float32)
        colour[:] = _COLOURS["grass"]
        colour[walkway] = _COLOURS["walkway"]
        colour[drivable] = _COLOURS["road"]
        for cx, cy, yaw in cars:
            colour[self._footprint(gx, gy, cx, cy, yaw)] = rng.uniform(0.1, 0.95, size=3)
        # Depth uncertainty: each cell sees the average along its viewing ray over +-25 % range.
        smeared = np.zeros_like(colour)
        factors = 1.0 + np.linspace(-0.25, 0.25, 9)
        for f in factors:
            col = np.clip(np.floor((gx * f + half) / cell).astype(np.int64), 0, size - 1)
            row = np.clip(np.floor((gy * f + half) / cell).astype(np.int64), 0, size - 1)
            smeared += colour[row, col]
        smeared /= len(factors)
        smeared *= rng.uniform(0.7, 1.3)  # exposure
        smeared += rng.normal(0, 0.05, size=smeared.shape).astype(np.float32)
        return np.ascontiguousarray(smeared.transpose(2, 0, 1), dtype=np.float32)
