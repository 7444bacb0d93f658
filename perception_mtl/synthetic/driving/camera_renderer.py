"""A pinhole camera rendered by casting one ray per pixel into the 3D scene.

Each pixel's ray is intersected with the ground plane and with the boxes whose projected
rectangle contains the pixel; the nearest hit wins, so occlusion is exact. Surfaces are shaded
with a sun (Lambert) plus sky light; the ground takes its colour from the map materials (asphalt,
lane paint, zebra crossings, walkways, grass) with a world-anchored texture and cast shadows;
facades get windows, vehicles glass; distant surfaces fade into haze; the sensor adds noise.
Labels never enter the image: only the geometry and materials of the world do.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import box_corners
from .ground_raster import ASPHALT, CARPARK, MATERIAL_COLOR, TERRAIN, WALKWAY, GroundRaster
from .primitive_set import PrimitiveSet
from .ray_caster import cast_rays

_SKY_ZENITH = np.array([0.42, 0.58, 0.85])
_SKY_HORIZON = np.array([0.80, 0.84, 0.90])
_WINDOW = np.array([0.16, 0.20, 0.26])
# The 12 edges of a box as corner-index pairs (corner order of geometry.box_corners).
_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]])
_DILATE = np.ones((3, 3), dtype=np.uint8)


@dataclass
class CameraFrame:
    """A rendered image and what produced it.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 distance along each pixel's ray to the visible surface (m); inf for sky.
        owner: (H, W) int32 actor index of the visible surface, -1 otherwise.
        visible_pixels: (A,) pixels where each actor is the visible surface.
        covered_pixels: (A,) pixels whose ray hits the actor at all (ignoring occluders).
    """

    image: np.ndarray
    depth: np.ndarray
    owner: np.ndarray
    visible_pixels: np.ndarray
    covered_pixels: np.ndarray


class CameraRenderer:
    """Renders images of a given size.

    Args:
        width: image width (pixels).
        height: image height (pixels).
        max_distance: farthest surface drawn (m); beyond is sky or haze.
    """

    def __init__(self, width: int, height: int, max_distance: float = 250.0) -> None:
        self.width, self.height, self.max_distance = width, height, max_distance
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        self.pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1)  # (H*W, 3) homogeneous
        self._ray_cache: dict[bytes, np.ndarray] = {}
        texture_rng = np.random.default_rng(1234)  # fixed: the texture belongs to the world, not the seed
        self.fine_noise = texture_rng.normal(0.0, 1.0, (256, 256)).astype(np.float32)
        coarse = texture_rng.normal(0.0, 1.0, (64, 64)).astype(np.float32)
        # Blur a 3x3 tiling and keep the centre, so the tile stays seamless when repeated.
        self.coarse_noise = cv2.GaussianBlur(np.tile(coarse, (3, 3)), (0, 0), 2.0)[64:128, 64:128].copy()
        self.coarse_noise /= self.coarse_noise.std() + 1e-6

    def render(
        self,
        intrinsic: np.ndarray,
        cam2global: np.ndarray,
        prims: PrimitiveSet,
        ground: GroundRaster,
        sun: np.ndarray,
        exposure: float,
        num_actors: int,
        rng: np.random.Generator,
    ) -> CameraFrame:
        """Renders one image.

        Args:
            intrinsic: (3, 3) camera matrix.
            cam2global: (4, 4) camera pose (camera frame: x right, y down, z forward).
            prims: the world's boxes at the capture time.
            ground: ground materials.
            sun: (3,) unit vector towards the sun.
            exposure: brightness gain.
            num_actors: length of the per-actor pixel counts.
            rng: sensor-noise generator.
        """
        rot, origin = cam2global[:3, :3], cam2global[:3, 3]
        dirs = self._camera_rays(intrinsic) @ rot.T.astype(np.float32)
        prims = prims.within(origin, self.max_distance)
        pair_ray, pair_box = self._candidate_pairs(intrinsic, rot, origin, prims)
        hits = cast_rays(origin, dirs, prims, pair_ray, pair_box, self.max_distance)

        color = np.empty((len(dirs), 3), dtype=np.float32)
        sky_idx = np.flatnonzero(~np.isfinite(hits.distance))
        color[sky_idx] = self._sky(dirs[sky_idx])
        ground_idx = np.flatnonzero(hits.ground)
        if len(ground_idx):
            point = origin[None] + hits.distance[ground_idx, None] * dirs[ground_idx]
            color[ground_idx] = self._ground_color(point, ground, prims, sun)
        box_idx = np.flatnonzero(hits.box >= 0)
        if len(box_idx):
            color[box_idx] = self._box_color(hits, box_idx, prims, dirs, sun)
        hit_idx = np.flatnonzero(np.isfinite(hits.distance))
        haze = 1.0 - np.exp(-hits.distance[hit_idx] / 320.0)
        color[hit_idx] = color[hit_idx] * (1 - haze[:, None]) + _SKY_HORIZON * haze[:, None]

        image = color.reshape(self.height, self.width, 3) * np.float32(exposure * 255.0)
        image = cv2.GaussianBlur(image, (0, 0), 0.5)
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(3.0)
        image = np.clip(image, 0, 255).astype(np.uint8)

        owner = np.full(len(dirs), -1, dtype=np.int64)
        owner[box_idx] = prims.owners[hits.box[box_idx]]
        visible = np.bincount(owner[owner >= 0], minlength=num_actors)[:num_actors]
        covered = self._covered_pixels(hits, prims, pair_ray, pair_box, num_actors)
        return CameraFrame(
            image,
            hits.distance.reshape(self.height, self.width).astype(np.float32),
            owner.reshape(self.height, self.width).astype(np.int32),
            visible,
            covered,
        )

    def _camera_rays(self, intrinsic: np.ndarray) -> np.ndarray:
        """(H*W, 3) unit pixel-centre rays in the camera frame (cached: a log keeps its intrinsics)."""
        key = np.asarray(intrinsic, dtype=np.float64).tobytes()
        if key not in self._ray_cache:
            if len(self._ray_cache) > 12:
                self._ray_cache.clear()
            rays = self.pixels @ np.linalg.inv(intrinsic).T
            self._ray_cache[key] = (rays / np.linalg.norm(rays, axis=1, keepdims=True)).astype(np.float32)
        return self._ray_cache[key]

    # ----------------------------------------------------------------- pairs
    def _candidate_pairs(self, intrinsic, rot, origin, prims: PrimitiveSet):
        """(pixel, box) pairs: the pixels inside each box's projected outline.

        The outline is the convex hull of the box's projection after clipping it at a near plane
        (corners in front plus the points where edges cross the plane), dilated by one pixel; the
        slab test then decides each pixel exactly.
        """
        if len(prims) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        near = 0.1
        corners = box_corners(prims.centers, 2.0 * prims.half_sizes, prims.yaws)
        cam = (corners - origin) @ rot  # (B, 8, 3) camera frame
        a, b = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]  # (B, 12, 3) edge end points
        za, zb = a[..., 2], b[..., 2]
        crosses = (za - near) * (zb - near) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(crosses, (near - za) / (zb - za), 0.0)
        clipped = a + frac[..., None] * (b - a)
        points = np.concatenate([cam, clipped], axis=1)  # (B, 20, 3)
        valid = np.concatenate([cam[..., 2] >= near, crosses], axis=1)
        z = np.where(valid, points[..., 2], 1.0)
        u = intrinsic[0, 0] * points[..., 0] / z + intrinsic[0, 2]
        v = intrinsic[1, 1] * points[..., 1] / z + intrinsic[1, 2]
        big = 1e7
        u_lo = np.where(valid, u, big).min(1)
        u_hi = np.where(valid, u, -big).max(1)
        v_lo = np.where(valid, v, big).min(1)
        v_hi = np.where(valid, v, -big).max(1)
        c0 = np.maximum(np.floor(u_lo).astype(np.int64) - 1, 0)
        c1 = np.minimum(np.ceil(u_hi).astype(np.int64) + 1, self.width - 1)
        r0 = np.maximum(np.floor(v_lo).astype(np.int64) - 1, 0)
        r1 = np.minimum(np.ceil(v_hi).astype(np.int64) + 1, self.height - 1)
        rays, boxes = [], []
        limit = 4 * max(self.width, self.height)
        shown = np.flatnonzero(valid.any(1) & (c1 >= c0) & (r1 >= r0))
        area = (r1[shown] - r0[shown] + 1) * (c1[shown] - c0[shown] + 1)
        bounded = (np.where(valid, np.abs(u), 0.0).max(1) < limit) & (np.where(valid, np.abs(v), 0.0).max(1) < limit)
        outline_ok = bounded[shown]
        hull = area > 256
        hull[hull] = outline_ok[hull]
        # Small (or unbounded) boxes: every pixel of the rectangle, built for all boxes at once.
        rect = shown[~hull]
        if len(rect):
            w = c1[rect] - c0[rect] + 1
            counts = (r1[rect] - r0[rect] + 1) * w
            owner = np.repeat(np.arange(len(rect)), counts)
            offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            rows = r0[rect][owner] + offset // w[owner]
            cols = c0[rect][owner] + offset % w[owner]
            rays.append(rows * self.width + cols)
            boxes.append(rect[owner])
        # Large boxes: the pixels of the projected outline (convex hull), dilated by one pixel.
        for i in shown[hull]:
            h, w = r1[i] - r0[i] + 1, c1[i] - c0[i] + 1
            uv = np.stack([u[i, valid[i]], v[i, valid[i]]], -1)
            mask = np.zeros((h, w), dtype=np.uint8)
            # cv2 puts pixel centres on integers; ours are at +0.5.
            pts = np.round((uv - [c0[i] + 0.5, r0[i] + 0.5]) * 16).astype(np.int32)
            cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1, lineType=cv2.LINE_8, shift=4)
            mask = cv2.dilate(mask, _DILATE)
            rr, cc = np.nonzero(mask)
            rays.append((rr + r0[i]) * self.width + cc + c0[i])
            boxes.append(np.full(rr.size, i, dtype=np.int64))
        if not rays:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rays), np.concatenate(boxes)

    @staticmethod
    def _covered_pixels(hits, prims, pair_ray, pair_box, num_actors) -> np.ndarray:
        """Pixels whose ray meets each actor, whatever is in front (for visibility ratios)."""
        if len(pair_box) == 0 or num_actors == 0:
            return np.zeros(num_actors, dtype=np.int64)
        owners = prims.owners[pair_box]
        ok = (owners >= 0) & np.isfinite(hits.pair_distance)
        # An actor is several parts: count each (pixel, actor) pair once.
        keys = np.unique(pair_ray[ok] * num_actors + owners[ok])
        return np.bincount(keys % num_actors, minlength=num_actors)[:num_actors]

    # ---------------------------------------------------------------- shading
    def _sky(self, dirs: np.ndarray) -> np.ndarray:
        up = np.clip(dirs[:, 2], 0.0, 1.0)[:, None] ** 0.6
        return _SKY_HORIZON * (1 - up) + _SKY_ZENITH * up

    def _ground_color(self, point, ground: GroundRaster, prims: PrimitiveSet, sun) -> np.ndarray:
        material = ground.lookup(point[:, 0], point[:, 1])
        base = MATERIAL_COLOR[material].astype(np.float64)
        fine = self.fine_noise[
            (np.floor(point[:, 1] / 0.05) % 256).astype(int), (np.floor(point[:, 0] / 0.05) % 256).astype(int)
        ]
        coarse = self.coarse_noise[
            (np.floor(point[:, 1] / 1.5) % 64).astype(int), (np.floor(point[:, 0] / 1.5) % 64).astype(int)
        ]
        grain = np.select(
            [material == TERRAIN, material == WALKWAY, (material == ASPHALT) | (material == CARPARK)],
            [0.09, 0.04, 0.05],
            0.025,
        )
        base = base * (1.0 + grain[:, None] * fine[:, None] + 0.05 * coarse[:, None])
        if material.size and (material == WALKWAY).any():
            # Paving joints every 0.6 m.
            w = material == WALKWAY
            joint = (np.abs((point[w, 0] / 0.6) % 1.0 - 0.5) > 0.46) | (np.abs((point[w, 1] / 0.6) % 1.0 - 0.5) > 0.46)
            base[w] *= np.where(joint, 0.85, 1.0)[:, None]
        lit = 0.55 + 0.45 * max(sun[2], 0.0) * self._sunlit(point, prims, sun)
        return base * lit[:, None]

    def _sunlit(self, point, prims: PrimitiveSet, sun) -> np.ndarray:
        """1 where a ground point sees the sun, 0.25 in the shadow of a box (shadow map at 0.2 m)."""
        if len(prims) == 0 or sun[2] <= 0.05:
            return np.ones(len(point))
        res = 0.2
        lo = point[:, :2].min(0) - 1.0
        hi = point[:, :2].max(0) + 1.0
        size = np.ceil((hi - lo) / res).astype(int) + 1
        if size.prod() > 4_000_000:  # very long rays to the horizon: clamp the shadow map
            lo = np.maximum(lo, point[:, :2].mean(0) - 200.0)
            size = np.minimum(size, 2000)
        shadow = np.zeros((size[1], size[0]), dtype=np.uint8)
        # Only boxes whose shadow can reach the visible ground matter.
        reach = np.linalg.norm(prims.half_sizes[:, :2], axis=1) + 2.0 * prims.centers[:, 2] / max(sun[2], 0.05)
        near = np.all(
            (prims.centers[:, :2] > lo - reach[:, None]) & (prims.centers[:, :2] < lo + size * res + reach[:, None]), 1
        )
        prims = prims.select(near)
        corners = box_corners(prims.centers, 2.0 * prims.half_sizes, prims.yaws)  # (B, 8, 3)
        height = np.clip(corners[..., 2:3], 0.0, None)
        projected = corners[..., :2] - height * (sun[:2] / sun[2])[None, None]
        pix = ((projected - lo) / res).astype(np.int32)
        for poly in pix:
            cv2.fillConvexPoly(shadow, cv2.convexHull(poly), 1)
        col = np.clip(((point[:, 0] - lo[0]) / res).astype(int), 0, size[0] - 1)
        row = np.clip(((point[:, 1] - lo[1]) / res).astype(int), 0, size[1] - 1)
        return np.where(shadow[row, col] > 0, 0.25, 1.0)

    def _box_color(self, hits, idx, prims: PrimitiveSet, dirs, sun) -> np.ndarray:
        box = hits.box[idx]
        normal = hits.normal[idx]
        local = hits.local_point[idx]
        half = prims.half_sizes[box]
        texture = prims.textures[box]
        base = prims.colors[box].astype(np.float64).copy()
        # Facade windows on vertical faces: a 3 m x 3.2 m grid above the ground floor.
        facade = (texture == 1) & (np.abs(normal[:, 2]) < 0.5)
        if facade.any():
            along = np.where(np.abs(local[facade, 0]) >= half[facade, 0] - 1e-3, local[facade, 1], local[facade, 0])
            up = local[facade, 2] + half[facade, 2]
            window = ((along / 3.0) % 1.0 > 0.25) & ((along / 3.0) % 1.0 < 0.75)
            window &= ((up / 3.2) % 1.0 > 0.3) & ((up / 3.2) % 1.0 < 0.8) & (up > 2.0)
            base[np.flatnonzero(facade)[window]] = _WINDOW
        foliage = texture == 2
        if foliage.any():
            lp = local[foliage]
            n = self.fine_noise[
                (np.floor((lp[:, 0] + lp[:, 2]) / 0.15) % 256).astype(int),
                (np.floor((lp[:, 1] - lp[:, 2]) / 0.15) % 256).astype(int),
            ]
            base[foliage] *= (1.0 + 0.25 * n)[:, None]
        diffuse = np.clip(normal @ sun, 0.0, None)
        light = 0.42 + 0.5 * diffuse + 0.12 * np.clip(normal[:, 2], 0.0, None)
        color = base * light[:, None]
        glass = texture == 3
        if glass.any():  # glossy: reflects the sky more at grazing view angles
            cos_view = np.abs(np.einsum("ij,ij->i", dirs[idx[glass]], normal[glass]))
            fresnel = 0.15 + 0.6 * (1.0 - cos_view) ** 3
            color[glass] = color[glass] * (1 - fresnel[:, None]) + _SKY_HORIZON * 0.8 * fresnel[:, None]
        return color
