"""Rendered synthetic scenes with per-pixel semantics, depth and edges, for dense multi-task models.

A pinhole camera at 1.3-2.2 m looks slightly down over a textured ground plane at boxes, balls
and pillars of random size, colour and pose, under a random sun. Each pixel's ray is intersected
with every surface in closed form (numpy, no renderer dependency), which gives exact labels:

- ``gt_sem_seg`` (H, W) int64: sky, ground, box, ball, pillar. Object colours are drawn from one
  distribution for all classes, so the class must be read from shape and shading, not colour.
- ``gt_depth`` (H, W) float32: z-depth in metres along the optical axis; 0 for sky (invalid).
- ``gt_edge`` (H, W) float32 in {0, 1}: occlusion boundaries (instance changes, marked on the
  nearer side) and creases (surface normals turning by more than 40 degrees, e.g. box corners),
  one pixel wide. Edges are not a function of the semantic map: two boxes touching in the image
  give an edge, and box creases have no semantic change.

Every sample comes from its own seeded generator, and train / val / test draw from disjoint seed
streams, so the splits never share a scene. The ground is cut off at 40 m (beyond that is sky),
so depths stay in a bounded range.
"""

from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import DATASETS
from perception_mtl.synthetic.seeded_dataset import SeededGeneratedDataset

CLASSES = ("sky", "ground", "box", "ball", "pillar")
_SKY, _GROUND, _BOX, _BALL, _PILLAR = range(len(CLASSES))
_OBJECT_FREQ = {_BOX: 0.4, _BALL: 0.35, _PILLAR: 0.25}
_GROUND_RANGE_M = 40.0
_CREASE_COS = float(np.cos(np.deg2rad(40.0)))


def _box_hits(origin, dirs, centre, yaw, size):
    """Ray / yaw-rotated box on the ground (slab test). Returns t (P,) (inf = miss) and normals (P, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # box frame -> world
    o = rot.T @ (origin - centre)
    d = dirs @ rot  # rows: R^T d
    lo = np.array([-size[0] / 2, -size[1] / 2, 0.0])
    hi = np.array([size[0] / 2, size[1] / 2, size[2]])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)
        t1, t2 = (lo - o) * inv, (hi - o) * inv
    t_min, t_max = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = t_min.max(1), t_max.min(1)
    hit = (t_near <= t_far) & (t_near > 1e-4)
    axis = t_min.argmax(1)
    local_n = np.zeros_like(d)
    rows = np.arange(len(d))
    local_n[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_near, np.inf), local_n @ rot.T


def _sphere_hits(origin, dirs, centre, radius):
    oc = origin - centre
    a = (dirs * dirs).sum(1)
    b = dirs @ oc
    disc = b * b - a * (oc @ oc - radius**2)
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    t = np.where((disc >= 0) & (t > 1e-4), t, np.inf)
    normals = (origin + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs - centre) / radius
    return t, normals


def _pillar_hits(origin, dirs, centre_xy, radius, height):
    """Ray / vertical cylinder standing on the ground: side and top cap."""
    oc = origin[:2] - centre_xy
    dxy = dirs[:, :2]
    a = (dxy * dxy).sum(1)
    b = dxy @ oc
    disc = b * b - a * (oc @ oc - radius**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / np.maximum(a, 1e-12)
    z = origin[2] + t_side * dirs[:, 2]
    t_side = np.where((disc >= 0) & (t_side > 1e-4) & (z >= 0) & (z <= height), t_side, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = np.where(dirs[:, 2] < -1e-9, (height - origin[2]) / dirs[:, 2], np.inf)
    p_cap = origin[:2] + np.where(np.isfinite(t_cap), t_cap, 0.0)[:, None] * dxy
    t_cap = np.where((t_cap > 1e-4) & (((p_cap - centre_xy) ** 2).sum(1) <= radius**2), t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    p = origin + np.where(np.isfinite(t), t, 0.0)[:, None] * dirs
    side_n = np.concatenate([(p[:, :2] - centre_xy) / radius, np.zeros((len(p), 1))], 1)
    normals = np.where((t_cap < t_side)[:, None], np.array([0.0, 0.0, 1.0]), side_n)
    return t, normals


def _edges(inst: np.ndarray, normals: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """One-pixel edges between 4-neighbours: instance changes on the nearer side, creases on one side."""
    edge = np.zeros(inst.shape, dtype=bool)
    far = np.where(depth > 0, depth, np.inf)
    for axis in (0, 1):
        a = [slice(None), slice(None)]
        b = [slice(None), slice(None)]
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        changed = inst[a] != inst[b]
        surface = (depth[a] > 0) & (depth[b] > 0)  # sky has no normal, hence no creases
        crease = ~changed & surface & ((normals[a] * normals[b]).sum(-1) < _CREASE_COS)
        a_nearer = far[a] <= far[b]
        edge[a] |= (changed & a_nearer) | crease
        edge[b] |= changed & ~a_nearer
    return edge


def render_scene(rng: np.random.Generator, height: int, width: int, max_objects: int) -> dict[str, np.ndarray]:
    """Renders one scene.

    Returns:
        ``img`` (H, W, 3) uint8 RGB, ``sem`` (H, W) int64, ``depth`` (H, W) float32 metres (0 =
        sky), ``edge`` (H, W) float32 in {0, 1}.
    """
    fov = np.deg2rad(rng.uniform(55.0, 75.0))
    focal = 0.5 * width / np.tan(fov / 2)
    cam_h = rng.uniform(1.3, 2.2)
    pitch = np.deg2rad(rng.uniform(4.0, 16.0))
    origin = np.array([0.0, 0.0, cam_h])  # world: x forward, y left, z up; ground at z = 0
    forward = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    down = np.array([-np.sin(pitch), 0.0, -np.cos(pitch)])
    right = np.array([0.0, -1.0, 0.0])
    u = (np.arange(width) + 0.5 - width / 2) / focal
    v = (np.arange(height) + 0.5 - height / 2) / focal
    uu, vv = np.meshgrid(u, v)
    # Unnormalised rays with unit forward component: the hit parameter t is the z-depth.
    dirs = (uu[..., None] * right + vv[..., None] * down + forward).reshape(-1, 3)
    n_px = len(dirs)

    t_best = np.full(n_px, np.inf)
    inst = np.zeros(n_px, dtype=np.int64)
    sem = np.full(n_px, _SKY, dtype=np.int64)
    normals = np.zeros((n_px, 3))
    albedo = np.zeros((n_px, 3))

    with np.errstate(divide="ignore"):
        t_ground = np.where(dirs[:, 2] < -1e-9, -cam_h / dirs[:, 2], np.inf)
    t_ground = np.where(t_ground <= _GROUND_RANGE_M, t_ground, np.inf)
    hit = np.isfinite(t_ground)
    t_best[hit], inst[hit], sem[hit] = t_ground[hit], 1, _GROUND
    normals[hit] = (0.0, 0.0, 1.0)
    ground_xy = origin[:2] + np.where(hit, t_ground, 0.0)[:, None] * dirs[:, :2]
    tile = rng.uniform(0.6, 2.0)
    checker = (np.floor(ground_xy[:, 0] / tile) + np.floor(ground_xy[:, 1] / tile)) % 2
    ground_colour = rng.uniform(0.25, 0.6, size=3)
    albedo[hit] = ground_colour * (0.8 + 0.2 * checker[hit, None])

    classes = list(_OBJECT_FREQ)
    probs = np.array(list(_OBJECT_FREQ.values()))
    for k in range(int(rng.integers(2, max_objects + 1))):
        label = classes[rng.choice(len(classes), p=probs / probs.sum())]
        dist = rng.uniform(2.5, 12.0)
        azimuth = rng.uniform(-0.45, 0.45) * fov
        xy = np.array([dist * np.cos(azimuth), dist * np.sin(azimuth)])
        if label == _BOX:
            size = (rng.uniform(0.6, 2.0), rng.uniform(0.6, 2.0), rng.uniform(0.5, 2.0))
            t, n = _box_hits(origin, dirs, np.array([*xy, 0.0]), rng.uniform(-np.pi, np.pi), size)
        elif label == _BALL:
            radius = rng.uniform(0.3, 1.0)
            t, n = _sphere_hits(origin, dirs, np.array([*xy, radius]), radius)
        else:
            t, n = _pillar_hits(origin, dirs, xy, rng.uniform(0.15, 0.5), rng.uniform(1.5, 3.5))
        closer = t < t_best
        t_best[closer], inst[closer], sem[closer] = t[closer], k + 2, label
        normals[closer] = n[closer]
        albedo[closer] = rng.uniform(0.15, 0.95, size=3)

    elevation, sun_azimuth = np.deg2rad(rng.uniform(25.0, 70.0)), rng.uniform(-np.pi, np.pi)
    sun = np.array(
        [np.cos(elevation) * np.cos(sun_azimuth), np.cos(elevation) * np.sin(sun_azimuth), np.sin(elevation)]
    )
    shade = 0.35 + 0.65 * np.clip(normals @ sun, 0.0, None)
    colour = albedo * shade[:, None]
    sky = sem == _SKY
    up = np.clip(dirs[sky, 2] / np.linalg.norm(dirs[sky], axis=1), 0.0, 1.0)
    horizon, zenith = rng.uniform(0.6, 0.9, size=3), rng.uniform(0.2, 0.6, size=3) * np.array([0.6, 0.8, 1.0])
    colour[sky] = horizon + (zenith - horizon) * np.sqrt(up)[:, None]
    colour = colour * rng.uniform(0.8, 1.2) + rng.normal(0.0, 0.02, size=colour.shape)

    depth = np.where(np.isfinite(t_best), t_best, 0.0).reshape(height, width)
    img = (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(height, width, 3)
    edge = _edges(inst.reshape(height, width), normals.reshape(height, width, 3), depth)
    return dict(
        img=img,
        sem=sem.reshape(height, width),
        depth=depth.astype(np.float32),
        edge=edge.astype(np.float32),
    )


@DATASETS.register_module()
class SyntheticDenseScenes(SeededGeneratedDataset):
    """Generated images with semantic segmentation, depth and edge targets (see the module docstring).

    Each item is ``dict(inputs=(3, H, W) uint8 RGB tensor, data_samples=BaseDataElement)`` with
    ``gt_sem_seg`` (H, W) int64, ``gt_depth`` (H, W) float32 and ``gt_edge`` (H, W) float32.

    Args:
        split: 'train', 'val' or 'test'; selects a disjoint seed stream (:class:`SeededGeneratedDataset`).
        num_samples: samples in the split.
        img_size: image height and width in pixels (>= 16).
        max_objects: at most this many objects per scene (>= 2).
        seed: base seed.
    """

    METAINFO = dict(classes=CLASSES)

    def __init__(
        self, split: str = "train", num_samples: int = 1024, img_size: int = 64, max_objects: int = 6, seed: int = 0
    ) -> None:
        super().__init__(split, num_samples, seed)
        if img_size < 16:
            raise ValueError(f"SyntheticDenseScenes: img_size must be >= 16, got {img_size}")
        if max_objects < 2:
            raise ValueError(f"SyntheticDenseScenes: max_objects must be >= 2, got {max_objects}")
        self.img_size = img_size
        self.max_objects = max_objects

    def generate(self, index: int, rng: np.random.Generator) -> dict:
        scene = render_scene(rng, self.img_size, self.img_size, self.max_objects)
        sample = BaseDataElement(
            metainfo=dict(sample_idx=index, split=self.split, img_shape=(self.img_size, self.img_size))
        )
        sample.gt_sem_seg = torch.from_numpy(scene["sem"])
        sample.gt_depth = torch.from_numpy(scene["depth"])
        sample.gt_edge = torch.from_numpy(scene["edge"])
        img = torch.from_numpy(np.ascontiguousarray(scene["img"].transpose(2, 0, 1)))
        return dict(inputs=img, data_samples=sample)
