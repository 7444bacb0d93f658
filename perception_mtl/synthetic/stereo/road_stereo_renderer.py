"""Ray-cast stereo renders of road scenes with known intrinsics, baseline, pitch and translation.

World frame (that of :mod:`perception_mtl.structures.camera_geometry`): X right, Y down, Z forward
along the road, ground at Y = 0. The world origin is the foot of a marker post (orange with a white
band) on the middle of the centre lane, so the calibration targets refer to something the images
show. The road has three 3.5 m lanes: dashed lane lines (3 m dashes every 9 m) at X = +-1.75 m,
solid edge lines at X = +-5.25 m, textured asphalt and verges beyond. Street-light poles line the
verges, a few cars stand in the lanes beyond the marker and buildings flank the road; the sky is a
gradient above the horizon and the ground fades into haze with distance.

Camera rig: a left camera at height h, lateral offset c_x and distance Z0 behind the marker,
pitched down by ``pitch`` (``R = Rx(pitch)``), and a rectified right camera displaced by the
baseline b along the left camera's x axis (same R, same K except its principal point
``u0 + doffs``, Middlebury's ``doffs``; 0 unless ``RigRanges.doffs_px`` says otherwise). So
``t = -R C`` (C the left camera centre) is the marker foot in left-camera coordinates, and its
disparity between the two views is exactly ``fx * b / t_z - doffs``: the ``disparity`` target.
(CVGL's own disparity label is the mean of an OpenCV StereoBM map, which depends on the matcher
and the scene content; ours is exact.)

Pixel ``(row, col)`` has its centre at image coordinates ``(u, v) = (col, row)`` (OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception_mtl.structures.camera_geometry import disparity_from_depth, intrinsic_matrix_np, rotation_x_np

LANE_WIDTH_M = 3.5
DASH_LENGTH_M, DASH_PERIOD_M = 3.0, 9.0
LINE_WIDTH_M = 0.15
ROAD_HALF_WIDTH_M = 1.5 * LANE_WIDTH_M
MARKER_RADIUS_M, MARKER_HEIGHT_M = 0.2, 1.0
HAZE_RANGE_M = 140.0


@dataclass
class RigParams:
    """Calibration of one stereo pair (pixels, metres, radians)."""

    fx: float
    fy: float
    u0: float
    v0: float
    baseline: float
    pitch: float
    height: float
    lateral: float
    distance: float
    doffs: float = 0.0  # u0 of the right view minus u0 of the left (pixels)

    @property
    def rotation(self) -> np.ndarray:
        return rotation_x_np(self.pitch)

    @property
    def centre(self) -> np.ndarray:
        """Left camera centre in the world frame (Y down: above the ground is negative Y)."""
        return np.array([self.lateral, -self.height, -self.distance])

    @property
    def translation(self) -> np.ndarray:
        """World origin (the marker foot) in left-camera coordinates, ``t = -R C``."""
        return -self.rotation @ self.centre

    @property
    def disparity(self) -> float:
        """Disparity of the world origin between the left and right views, ``fx * b / t_z - doffs`` (pixels)."""
        return disparity_from_depth(self.translation[2], self.fx, self.baseline, self.doffs)


@dataclass
class RigRanges:
    """Uniform sampling ranges of the rig (degrees for angles, metres, pixels of offset)."""

    fov_deg: tuple[float, float] = (50.0, 80.0)
    principal_offset_px: float = 3.0
    baseline_m: tuple[float, float] = (0.2, 0.8)
    pitch_deg: tuple[float, float] = (-2.0, 10.0)
    height_m: tuple[float, float] = (1.2, 2.2)
    lateral_m: tuple[float, float] = (-2.5, 2.5)
    distance_m: tuple[float, float] = (8.0, 20.0)
    doffs_px: tuple[float, float] = (0.0, 0.0)  # drawn only when the range is not a single value


def sample_rig(rng: np.random.Generator, width: int, height: int, ranges: RigRanges) -> RigParams:
    """Draws a rig whose marker foot lies inside both images (CVGL's ``f = W / (2 tan(FOV / 2))``,
    square pixels, principal point within ``principal_offset_px`` of the image centre)."""
    for _ in range(100):
        fov = np.deg2rad(rng.uniform(*ranges.fov_deg))
        focal = width / (2.0 * np.tan(fov / 2.0))
        off = ranges.principal_offset_px
        rig = RigParams(
            fx=focal,
            fy=focal,
            u0=(width - 1) / 2.0 + rng.uniform(-off, off),
            v0=(height - 1) / 2.0 + rng.uniform(-off, off),
            baseline=rng.uniform(*ranges.baseline_m),
            pitch=np.deg2rad(rng.uniform(*ranges.pitch_deg)),
            height=rng.uniform(*ranges.height_m),
            lateral=rng.uniform(*ranges.lateral_m),
            distance=rng.uniform(*ranges.distance_m),
        )
        low, high = ranges.doffs_px
        rig.doffs = float(rng.uniform(low, high)) if high > low else float(low)  # no draw: seed streams as before
        t = rig.translation
        u_left = rig.fx * t[0] / t[2] + rig.u0
        u_right = u_left - rig.disparity
        v = rig.fy * t[1] / t[2] + rig.v0
        margin = 4.0
        if margin <= u_right and u_left <= width - 1 - margin and margin <= v <= height - 1 - margin:
            return rig
    raise RuntimeError("sample_rig: no rig with the marker in view after 100 draws; check the ranges")


@dataclass
class RoadScene:
    """Scene content in the world frame (see the module docstring)."""

    asphalt: np.ndarray  # (3,) base colour
    verge: np.ndarray  # (3,)
    texture: np.ndarray  # (T, T) fine ground texture in [-1, 1]
    dash_phase: float
    poles: np.ndarray  # (P, 4): x, z, radius, height
    boxes: np.ndarray  # (B, 6): x0, x1, y0 (top, negative), z0, z1 (y1 = 0 on the ground)
    box_colours: np.ndarray  # (B, 3)
    sun: np.ndarray  # (3,) unit vector towards the sun (Y down)
    sky_horizon: np.ndarray
    sky_zenith: np.ndarray
    exposure: float


def sample_scene(rng: np.random.Generator) -> RoadScene:
    """Random scene content around the marker (world origin)."""
    poles = []
    spacing = rng.uniform(12.0, 25.0)
    for side in (-1.0, 1.0):
        x = side * rng.uniform(6.5, 7.5)
        for z in np.arange(rng.uniform(-25.0, -25.0 + spacing), 120.0, spacing):
            poles.append([x, z, rng.uniform(0.08, 0.15), rng.uniform(5.0, 7.0)])
    boxes, colours = [], []
    for _ in range(int(rng.integers(0, 4))):  # cars in the lanes beyond the marker
        x = rng.choice([-LANE_WIDTH_M, 0.0, LANE_WIDTH_M]) + rng.uniform(-0.4, 0.4)
        z = rng.uniform(6.0, 60.0)
        boxes.append([x - 0.9, x + 0.9, -rng.uniform(1.4, 1.8), z, z + rng.uniform(3.8, 4.6)])
        colours.append(rng.uniform(0.1, 0.9, 3))
    for side in (-1.0, 1.0):  # buildings along both sides
        z = rng.uniform(-30.0, 0.0)
        while z < 150.0:
            length = rng.uniform(8.0, 25.0)
            near = rng.uniform(9.0, 14.0)
            far = near + rng.uniform(6.0, 15.0)
            x0, x1 = sorted((side * near, side * far))
            boxes.append([x0, x1, -rng.uniform(4.0, 18.0), z, z + length])
            colours.append(rng.uniform(0.3, 0.85, 3) * rng.uniform(0.7, 1.0))
            z += length + rng.uniform(2.0, 10.0)
    elevation, azimuth = np.deg2rad(rng.uniform(20.0, 70.0)), rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
    return RoadScene(
        asphalt=np.full(3, rng.uniform(0.22, 0.42)) + rng.uniform(-0.03, 0.03, 3),
        verge=rng.uniform([0.2, 0.3, 0.1], [0.45, 0.55, 0.3]),
        texture=rng.uniform(-1.0, 1.0, (64, 64)),
        dash_phase=rng.uniform(0.0, DASH_PERIOD_M),
        poles=np.array(poles).reshape(-1, 4),
        boxes=np.array(boxes).reshape(-1, 5),
        box_colours=np.array(colours).reshape(-1, 3),
        sun=sun,
        sky_horizon=rng.uniform(0.7, 0.9, 3),
        sky_zenith=rng.uniform(0.3, 0.6, 3) * np.array([0.6, 0.8, 1.0]),
        exposure=rng.uniform(0.8, 1.15),
    )


def _bilinear(texture: np.ndarray, x: np.ndarray, z: np.ndarray, cell: float) -> np.ndarray:
    """Tiled bilinear lookup of ``texture`` at world (x, z), one texel per ``cell`` metres."""
    n = texture.shape[0]
    gx, gz = x / cell, z / cell
    ix, iz = np.floor(gx).astype(np.int64), np.floor(gz).astype(np.int64)
    fx, fz = gx - ix, gz - iz
    ix0, iz0, ix1, iz1 = ix % n, iz % n, (ix + 1) % n, (iz + 1) % n
    top = texture[iz0, ix0] * (1 - fx) + texture[iz0, ix1] * fx
    bottom = texture[iz1, ix0] * (1 - fx) + texture[iz1, ix1] * fx
    return top * (1 - fz) + bottom * fz


def _ground_colour(scene: RoadScene, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    fine = _bilinear(scene.texture, x, z, 0.25)
    coarse = _bilinear(scene.texture.T, x, z, 1.7)
    on_road = np.abs(x) < ROAD_HALF_WIDTH_M + LINE_WIDTH_M
    colour = np.where(
        on_road[:, None],
        scene.asphalt * (1.0 + 0.12 * fine + 0.05 * coarse)[:, None],
        scene.verge * (1.0 + 0.2 * fine + 0.15 * coarse)[:, None],
    )
    half = LINE_WIDTH_M / 2
    edge_line = np.abs(np.abs(x) - ROAD_HALF_WIDTH_M) < half
    dash = (np.abs(np.abs(x) - LANE_WIDTH_M / 2) < half) & (np.mod(z - scene.dash_phase, DASH_PERIOD_M) < DASH_LENGTH_M)
    paint = edge_line | dash
    colour[paint] = 0.9 + 0.05 * fine[paint, None]
    return colour


def _cylinder_hits(origin: np.ndarray, dirs: np.ndarray, cx: float, cz: float, radius: float, top: float):
    """Ray / vertical cylinder from the ground (Y = 0) up to Y = ``top`` (< 0). Returns t (N,), normals (N, 3)."""
    ox, oz = origin[0] - cx, origin[2] - cz
    a = dirs[:, 0] ** 2 + dirs[:, 2] ** 2
    b = dirs[:, 0] * ox + dirs[:, 2] * oz
    disc = b * b - a * (ox * ox + oz * oz - radius * radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / np.maximum(a, 1e-12)
    y = origin[1] + t * dirs[:, 1]
    t = np.where((disc >= 0) & (t > 1e-4) & (y <= 0.0) & (y >= top), t, np.inf)
    px = origin[0] + np.where(np.isfinite(t), t, 0.0) * dirs[:, 0] - cx
    pz = origin[2] + np.where(np.isfinite(t), t, 0.0) * dirs[:, 2] - cz
    normals = np.stack([px / radius, np.zeros_like(px), pz / radius], 1)
    return t, normals, y


def _box_hits(origin: np.ndarray, dirs: np.ndarray, box: np.ndarray):
    """Ray / axis-aligned box (x0, x1, y0, z0, z1), bottom on the ground. Returns t (N,), normals (N, 3)."""
    lo = np.array([box[0], box[2], box[3]])
    hi = np.array([box[1], 0.0, box[4]])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
        t1, t2 = (lo - origin) * inv, (hi - origin) * inv
    t_min, t_max = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = t_min.max(1), t_max.min(1)
    hit = (t_near <= t_far) & (t_near > 1e-4)
    axis = t_min.argmax(1)
    normals = np.zeros_like(dirs)
    rows = np.arange(len(dirs))
    normals[rows, axis] = -np.sign(dirs[rows, axis])
    return np.where(hit, t_near, np.inf), normals


def _rays_in_view(
    corners: np.ndarray, intrinsics: np.ndarray, rot: np.ndarray, trans: np.ndarray, us: np.ndarray, vs: np.ndarray
) -> np.ndarray | None:
    """Flat indices of the rays on the (len(vs), len(us)) grid (sorted ray coordinates ``us``, ``vs``)
    that can hit a convex object with these world ``corners``: its image lies inside the bounding
    box of their projections (taken one pixel wider). None when a corner is behind the camera (test
    every ray)."""
    cam = corners @ rot.T + trans
    if (cam[:, 2] < 1e-3).any():
        return None
    proj = cam @ intrinsics.T
    u, v = proj[:, 0] / proj[:, 2], proj[:, 1] / proj[:, 2]
    cols = np.arange(np.searchsorted(us, u.min() - 1.0), np.searchsorted(us, u.max() + 1.0, "right"))
    rows = np.arange(np.searchsorted(vs, v.min() - 1.0), np.searchsorted(vs, v.max() + 1.0, "right"))
    return (rows[:, None] * len(us) + cols[None, :]).ravel()


def _box_corners(box: np.ndarray) -> np.ndarray:
    x0, x1, y0, z0, z1 = box
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, 0.0) for z in (z0, z1)])


def render_view(
    scene: RoadScene,
    intrinsics: np.ndarray,
    rot: np.ndarray,
    trans: np.ndarray,
    width: int,
    height: int,
    rng: np.random.Generator,
    supersample: int = 1,
) -> np.ndarray:
    """Renders the scene seen by a camera ``P = K [R | t]``. Returns (H, W, 3) uint8 RGB.

    ``supersample`` s > 1 casts s x s rays spread evenly over each pixel's square and averages them
    (a box filter, as a sensor pixel integrates over its area), so edges, dash ends and the fine
    ground texture shade by coverage instead of snapping to whole pixels. Sensor noise is added
    after the averaging, so its level does not depend on s. Objects are only tested against the
    rays inside their projected bounding box (the image is the same as testing every ray).
    """
    if supersample < 1:
        raise ValueError(f"render_view: supersample must be >= 1, got {supersample}")
    centre = -rot.T @ trans
    # Pixel (row, col) covers [col - 0.5, col + 0.5] x [row - 0.5, row + 0.5] (centre at (col, row)).
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    us = (np.arange(width, dtype=np.float64)[:, None] + offsets).ravel()
    vs = (np.arange(height, dtype=np.float64)[:, None] + offsets).ravel()
    cols, rows = np.meshgrid(us, vs)
    pix = np.stack([cols.ravel(), rows.ravel(), np.ones(cols.size)], 1)
    dirs = pix @ np.linalg.inv(intrinsics).T @ rot  # rows: R^T K^-1 [u, v, 1]
    n_rays = len(dirs)
    t_best = np.full(n_rays, np.inf)
    colour = np.zeros((n_rays, 3))

    with np.errstate(divide="ignore"):
        t_ground = np.where(dirs[:, 1] > 1e-9, -centre[1] / dirs[:, 1], np.inf)
    hit = np.isfinite(t_ground)
    gx = centre[0] + np.where(hit, t_ground, 0.0) * dirs[:, 0]
    gz = centre[2] + np.where(hit, t_ground, 0.0) * dirs[:, 2]
    ground = _ground_colour(scene, gx, gz) * (0.55 + 0.45 * max(-scene.sun[1], 0.0))
    t_best[hit] = t_ground[hit]
    colour[hit] = ground[hit]

    def shade(normals: np.ndarray) -> np.ndarray:
        return 0.4 + 0.6 * np.clip(normals @ scene.sun, 0.0, None)

    def candidates(corners: np.ndarray) -> np.ndarray:
        idx = _rays_in_view(corners, intrinsics, rot, trans, us, vs)
        return np.arange(n_rays) if idx is None else idx

    for box, box_colour in zip(scene.boxes, scene.box_colours):
        idx = candidates(_box_corners(box))
        if not len(idx):
            continue
        t, normals = _box_hits(centre, dirs[idx], box)
        closer = t < t_best[idx]
        sel = idx[closer]
        t_best[sel] = t[closer]
        colour[sel] = box_colour * shade(normals[closer])[:, None]
    poles = list(scene.poles) + [np.array([0.0, 0.0, MARKER_RADIUS_M, MARKER_HEIGHT_M])]
    for k, (px, pz, radius, pole_height) in enumerate(poles):
        idx = candidates(_box_corners(np.array([px - radius, px + radius, -pole_height, pz - radius, pz + radius])))
        if not len(idx):
            continue
        t, normals, y = _cylinder_hits(centre, dirs[idx], px, pz, radius, -pole_height)
        closer = t < t_best[idx]
        sel = idx[closer]
        t_best[sel] = t[closer]
        if k == len(poles) - 1:  # the marker: orange with a white band
            band = (y[closer] < -0.45) & (y[closer] > -0.65)
            base = np.where(band[:, None], np.array([0.95, 0.95, 0.95]), np.array([1.0, 0.45, 0.05]))
        else:
            base = np.full((len(sel), 3), 0.55)
        colour[sel] = base * shade(normals[closer])[:, None]

    dist = t_best * np.linalg.norm(dirs, axis=1)
    haze = np.clip(dist / HAZE_RANGE_M, 0.0, 1.0)[:, None] ** 1.5
    colour = colour * (1 - haze) + scene.sky_horizon * haze
    sky = ~np.isfinite(t_best)
    up = np.clip(-dirs[sky, 1] / np.linalg.norm(dirs[sky], axis=1), 0.0, 1.0)
    colour[sky] = scene.sky_horizon + (scene.sky_zenith - scene.sky_horizon) * np.sqrt(up)[:, None]
    s = supersample
    colour = colour.reshape(height, s, width, s, 3).mean((1, 3)).reshape(height * width, 3)
    colour = colour * scene.exposure + rng.normal(0.0, 0.015, colour.shape)
    return (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(height, width, 3)


def render_stereo_pair(
    rng: np.random.Generator, width: int, height: int, ranges: RigRanges | None = None, supersample: int = 1
) -> tuple[RigParams, np.ndarray, np.ndarray]:
    """Draws a rig and a scene and renders both views (``supersample`` x ``supersample`` rays per
    pixel, see :func:`render_view`). Returns (rig, left (H, W, 3), right (H, W, 3))."""
    rig = sample_rig(rng, width, height, ranges or RigRanges())
    scene = sample_scene(rng)
    k = intrinsic_matrix_np(rig.fx, rig.fy, rig.u0, rig.v0)
    k_right = intrinsic_matrix_np(rig.fx, rig.fy, rig.u0 + rig.doffs, rig.v0)
    rot, trans = rig.rotation, rig.translation
    left = render_view(scene, k, rot, trans, width, height, rng, supersample)
    right = render_view(
        scene, k_right, rot, trans - np.array([rig.baseline, 0.0, 0.0]), width, height, rng, supersample
    )
    return rig, left, right
