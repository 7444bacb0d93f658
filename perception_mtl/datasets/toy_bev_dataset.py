"""A small generated BEV dataset: where are the objects, given a sparse, noisy point raster?

It stands in as the smallest working training job (``make demo``) until the synthetic
nuScenes-format dataset lands. Each sample is drawn from its own seeded generator, and the train
and val splits use different seed streams, so they never share a scene.
"""

from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from perception_mtl.registry import DATASETS

# (length, width) in metres and relative frequency; nuScenes-like car and pedestrian footprints.
_CLASSES = {"car": ((4.6, 1.9), 0.6), "pedestrian": ((0.7, 0.7), 0.4)}
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


@DATASETS.register_module()
class ToyBEVDataset(Dataset):
    """Point rasters of a few boxes seen by a sensor at the grid centre, with footprint masks.

    Input ``bev`` (2, H, W): per cell, log(1 + point count) and the max point height / 2 m.
    Only box edges facing the sensor return points (self-occlusion), with range noise and
    dropout, plus ground clutter. Target ``gt_bev_seg`` (num_classes, H, W) in {0, 1}.

    Args:
        split: 'train', 'val' or 'test'; selects a disjoint seed stream.
        num_samples: samples in the split.
        grid_size: cells per side; one cell is ``cell_m`` metres.
        cell_m: cell size in metres.
        max_objects: at most this many boxes per sample (at least one).
        seed: base seed.
    """

    METAINFO = {"classes": tuple(_CLASSES)}

    def __init__(
        self,
        split: str = "train",
        num_samples: int = 256,
        grid_size: int = 32,
        cell_m: float = 0.5,
        max_objects: int = 6,
        seed: int = 0,
    ) -> None:
        if split not in _SPLIT_SEED_OFFSET:
            raise ValueError(f"ToyBEVDataset: split must be one of {list(_SPLIT_SEED_OFFSET)}, got {split!r}")
        if num_samples <= 0 or grid_size < 8 or max_objects < 1:
            raise ValueError(
                f"ToyBEVDataset: need num_samples > 0, grid_size >= 8, max_objects >= 1; got "
                f"num_samples={num_samples}, grid_size={grid_size}, max_objects={max_objects}"
            )
        self.split = split
        self.num_samples = num_samples
        self.grid_size = grid_size
        self.cell_m = cell_m
        self.max_objects = max_objects
        self.seed = seed + _SPLIT_SEED_OFFSET[split]
        self.metainfo = dict(self.METAINFO)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"ToyBEVDataset({self.split}): index {index} out of range {self.num_samples}")
        bev, masks = self._generate(np.random.default_rng(self.seed + index))
        sample = BaseDataElement(metainfo=dict(sample_idx=index, split=self.split))
        sample.gt_bev_seg = torch.from_numpy(masks)
        return dict(inputs=dict(bev=torch.from_numpy(bev)), data_samples=sample)

    def _generate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        size, cell = self.grid_size, self.cell_m
        half = size * cell / 2
        centres = (np.arange(size) + 0.5) * cell - half
        gx, gy = np.meshgrid(centres, centres, indexing="xy")
        masks = np.zeros((len(_CLASSES), size, size), dtype=np.float32)
        points = [self._ground_clutter(rng, half)]
        names = list(_CLASSES)
        probs = np.array([freq for _, freq in _CLASSES.values()])
        for _ in range(rng.integers(1, self.max_objects + 1)):
            label = rng.choice(len(names), p=probs / probs.sum())
            (length, width), _ = _CLASSES[names[label]]
            length, width = length * rng.uniform(0.9, 1.1), width * rng.uniform(0.9, 1.1)
            centre = rng.uniform(-half + 1, half - 1, size=2)
            if np.hypot(*centre) < 1.5:  # the sensor sits at the origin
                continue
            yaw = rng.uniform(-np.pi, np.pi)
            rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            local = np.stack([gx - centre[0], gy - centre[1]], -1) @ rot  # grid in the box frame
            inside = (np.abs(local[..., 0]) <= length / 2) & (np.abs(local[..., 1]) <= width / 2)
            masks[label][inside] = 1.0
            points.append(self._visible_surface(rng, centre, rot, length, width, label))
        pts = np.concatenate(points)
        ij = np.floor((pts[:, :2] + half) / cell).astype(np.int64)
        keep = (ij >= 0).all(1) & (ij < size).all(1)
        ij, z = ij[keep], pts[keep, 2]
        count = np.zeros((size, size), dtype=np.float32)
        height = np.zeros((size, size), dtype=np.float32)
        np.add.at(count, (ij[:, 1], ij[:, 0]), 1.0)
        np.maximum.at(height, (ij[:, 1], ij[:, 0]), z / 2.0)
        return np.stack([np.log1p(count), height]), masks

    @staticmethod
    def _ground_clutter(rng: np.random.Generator, half: float) -> np.ndarray:
        n = rng.integers(20, 60)
        xy = rng.uniform(-half, half, size=(n, 2))
        return np.concatenate([xy, rng.uniform(0.0, 0.3, size=(n, 1))], 1)

    @staticmethod
    def _visible_surface(rng, centre, rot, length, width, label) -> np.ndarray:
        """Points on the box edges whose outward normal faces the sensor, with noise and dropout."""
        height = 1.6 if label == 0 else 1.7
        edges = []
        for normal, along, extent, offset in (
            (np.array([1.0, 0.0]), np.array([0.0, 1.0]), width, length / 2),
            (np.array([-1.0, 0.0]), np.array([0.0, 1.0]), width, length / 2),
            (np.array([0.0, 1.0]), np.array([1.0, 0.0]), length, width / 2),
            (np.array([0.0, -1.0]), np.array([1.0, 0.0]), length, width / 2),
        ):
            mid_world = centre + rot @ (normal * offset)
            if np.dot(rot @ normal, -mid_world) <= 0:  # faces away from the sensor
                continue
            n = max(3, int(extent * 6))
            t = rng.uniform(-extent / 2, extent / 2, size=n)
            local = normal * offset + t[:, None] * along
            world = centre + local @ rot.T
            world += rng.normal(0, 0.05, size=world.shape)  # range noise
            z = rng.uniform(0.2, height, size=(n, 1))
            edges.append(np.concatenate([world, z], 1))
        pts = np.concatenate(edges) if edges else np.zeros((0, 3))
        return pts[rng.random(len(pts)) > 0.3]  # dropout
