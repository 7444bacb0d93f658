"""Renders synthetic face images: shaded 3D heads with known pose on cluttered backgrounds.

Each head (:class:`HeadModel`) is ray-cast per pixel under an orthographic (weak-perspective)
camera: skull and nose are ellipsoids, shaded with a Lambertian light from the camera side, and
textured in the head frame (skin, hair on top and back, eyes with pupils, eyebrows, mouth), so the
pose is visible from the shading, the nose and the layout of the features. Rendering is
supersampled 2x and the head is alpha-blended into the background.

Ground truth per face: the box is the silhouette of the skull ellipsoid (exact, from its
projected quadric); the five landmarks are the projected 3D points of the head model, with flag
1.0 when the point's surface faces away from the camera (self-occluded) and 0.0 otherwise; the
pose is the (yaw, pitch, roll) of :mod:`perception_mtl.structures.head_pose`.

Backgrounds mix a colour gradient, smooth noise, random rectangles, ellipses, lines and featureless
skin-coloured blobs (distractors), and the image gets brightness/contrast jitter, sensor noise and
sometimes blur. Nothing of the ground truth is drawn into the image.
"""

from __future__ import annotations

import cv2
import numpy as np

from perception_mtl.structures.head_pose import euler_to_matrix

from .head_model import EYE_CENTRE, EYE_RADII, MOUTH_CENTRE_Y, MOUTH_HALF_HEIGHT, MOUTH_HALF_WIDTH, HeadModel

SKIN_TONES = np.array(
    [[224, 190, 160], [198, 150, 115], [160, 110, 80], [110, 75, 55], [235, 205, 180], [185, 140, 100]], np.float64
)  # RGB
POSE_RANGES = dict(yaw=(-90.0, 90.0), pitch=(-40.0, 40.0), roll=(-40.0, 40.0))


def sample_pose(rng: np.random.Generator, ranges: dict = POSE_RANGES) -> np.ndarray:
    """(yaw, pitch, roll) degrees, uniform in ``ranges``."""
    return np.array([rng.uniform(*ranges[k]) for k in ("yaw", "pitch", "roll")])


def _ray_ellipsoid(origins: np.ndarray, direction: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Near hit parameter t (P,) of rays o + t d with an axis-aligned ellipsoid (inf = miss)."""
    o = (origins - centre) / axes
    d = direction / axes
    a = d @ d
    b = o @ d
    c = (o * o).sum(1) - 1.0
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where(disc >= 0, t, np.inf)


def head_box(head: HeadModel, rot: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """(4,) xyxy pixel box of the skull's silhouette (orthographic projection of the ellipsoid)."""
    half = scale * np.sqrt((rot[:2] ** 2) @ (head.axes**2))  # sqrt(sum_j R_ij^2 a_j^2), i = x, y
    return np.array([centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1]])


def project(points: np.ndarray, rot: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """(N, 3) head-frame points -> (N, 3) camera-frame points scaled to pixels (x, y image; z depth)."""
    cam = points @ rot.T * scale
    cam[:, :2] += centre
    return cam


def render_head(
    img: np.ndarray,
    head: HeadModel,
    pose: np.ndarray,
    centre: np.ndarray,
    scale: float,
    rng: np.random.Generator,
) -> dict:
    """Draws one head into ``img`` (H, W, 3) float RGB in [0, 1], in place.

    Args:
        pose: (yaw, pitch, roll) degrees. centre: (2,) pixel position of the head origin.
        scale: pixels per head unit (the head is 2 * scale tall when frontal).

    Returns:
        ``box`` (4,) xyxy, ``landmarks`` (5, 2), ``flags`` (5,) (1 = self-occluded),
        ``landmarks68`` (68, 3) camera-frame points in pixels (x, y image, z depth).
    """
    rot = euler_to_matrix(*pose)
    box = head_box(head, rot, centre, scale)
    height, width = img.shape[:2]
    x0, y0 = max(int(np.floor(box[0])) - 1, 0), max(int(np.floor(box[1])) - 1, 0)
    x1, y1 = min(int(np.ceil(box[2])) + 1, width), min(int(np.ceil(box[3])) + 1, height)
    if x1 > x0 and y1 > y0:
        ss = 2  # supersampling
        xs = (np.arange((x1 - x0) * ss) + 0.5) / ss + x0
        ys = (np.arange((y1 - y0) * ss) + 0.5) / ss + y0
        uu, vv = np.meshgrid((xs - centre[0]) / scale, (ys - centre[1]) / scale)
        cam = np.stack([uu.ravel(), vv.ravel(), np.full(uu.size, -5.0)], 1)
        origins = cam @ rot  # rows: R^T p, the ray origins in the head frame
        direction = rot.T @ np.array([0.0, 0.0, 1.0])
        t_skull = _ray_ellipsoid(origins, direction, np.zeros(3), head.axes)
        t_nose = _ray_ellipsoid(origins, direction, head.nose_centre, head.nose_axes)
        on_nose = t_nose < t_skull
        t = np.minimum(t_skull, t_nose)
        hit = np.isfinite(t)
        q = origins + np.where(hit, t, 0.0)[:, None] * direction
        normal = np.where(on_nose[:, None], (q - head.nose_centre) / head.nose_axes**2, q / head.axes**2)  # head frame
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        albedo = _albedo(q, on_nose, rng)
        light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.3), -1.0])
        light /= np.linalg.norm(light)
        diffuse = np.clip((normal @ rot.T) @ light, 0.0, None)
        colour = albedo * (rng.uniform(0.25, 0.4) + rng.uniform(0.6, 0.8) * diffuse)[:, None]
        shape = (y1 - y0, ss, x1 - x0, ss)
        alpha = hit.reshape(uu.shape).astype(np.float64).reshape(shape).mean((1, 3))
        colour = (colour * hit[:, None]).reshape(uu.shape + (3,)).reshape(*shape, 3).sum((1, 3)) / ss**2
        patch = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = patch * (1.0 - alpha[..., None]) + colour
    pts68 = head.landmarks68()
    cam68 = project(pts68, rot, centre, scale)
    five = project(head.landmarks5(), rot, centre, scale)
    normals5 = head.landmarks5() / head.axes**2
    normals5[2] = [0.0, 0.0, -1.0]  # the nose tip faces forward
    facing = (normals5 @ rot.T)[:, 2]
    return dict(box=box, landmarks=five[:, :2], flags=(facing > -0.05).astype(np.float64), landmarks68=cam68)


def _albedo(q: np.ndarray, on_nose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(P, 3) RGB albedo in [0, 1] from head-frame hit points."""
    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1), 0, 255) / 255.0
    hair = rng.uniform(0.02, 0.35) * np.array([1.0, rng.uniform(0.6, 1.0), rng.uniform(0.4, 0.9)])
    albedo = np.tile(skin, (len(q), 1))
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    hairline = rng.uniform(-0.62, -0.48)
    is_hair = ~on_nose & ((y < hairline + 0.25 * np.clip(z + 0.3, 0.0, None)) | ((z > 0.15) & (y < 0.55)))
    albedo[is_hair] = hair
    front = ~on_nose & (z < 0)
    for side in (-1.0, 1.0):
        ex, ey = (x - side * EYE_CENTRE[0]) / EYE_RADII[0], (y - EYE_CENTRE[1]) / EYE_RADII[1]
        eye = front & (ex**2 + ey**2 < 1.0)
        albedo[eye] = (0.92, 0.92, 0.9)
        pupil = front & ((x - side * EYE_CENTRE[0]) ** 2 + (y - EYE_CENTRE[1]) ** 2 < (0.9 * EYE_RADII[1]) ** 2)
        albedo[pupil] = (0.08, 0.06, 0.05)
        brow = front & (np.abs(y + 0.31) < 0.035) & (np.abs(x - side * 0.3) < 0.17)
        albedo[brow] = hair * 0.8
    mouth = front & (((x / MOUTH_HALF_WIDTH) ** 2 + ((y - MOUTH_CENTRE_Y) / MOUTH_HALF_HEIGHT) ** 2) < 1.0)
    albedo[mouth] = (0.55, 0.15, 0.15)
    albedo[on_nose] = skin * np.array([1.0, 0.93, 0.9])
    return albedo


def render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float RGB background in [0, 1]: gradient, smooth noise, shapes and skin-toned blobs."""
    c0, c1 = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    ramp = np.clip(0.5 + (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)), 0, 1)[..., None]
    img = c0 * (1 - ramp) + c1 * ramp
    low = rng.uniform(-0.25, 0.25, (int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3))
    img = img + cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    canvas = np.ascontiguousarray(np.clip(img, 0, 1) * 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 20))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(4)
        p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = int(rng.integers(4, max(5, width // 3)))
        if kind == 0:
            cv2.rectangle(canvas, p, (p[0] + size, p[1] + int(rng.integers(4, size + 5))), colour, -1)
        elif kind == 1:
            axes = (size // 2 + 1, int(rng.integers(2, size // 2 + 3)))
            cv2.ellipse(canvas, p, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 2:
            q = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, p, q, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:  # a featureless skin-coloured blob: faces are more than skin colour
            skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.6, 1.05)
            axes = (size // 3 + 2, int((size // 3 + 2) * rng.uniform(0.9, 1.5)))
            cv2.ellipse(
                canvas, p, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(c) for c in skin), -1, cv2.LINE_AA
            )
    return canvas.astype(np.float64) / 255.0


def finish_image(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Float RGB [0, 1] -> uint8 BGR with brightness/contrast jitter, noise and sometimes blur."""
    img = (img - 0.5) * rng.uniform(0.75, 1.2) + 0.5 + rng.uniform(-0.12, 0.12)
    img = img + rng.normal(0.0, rng.uniform(0.0, 0.03), img.shape)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    return np.ascontiguousarray(out[..., ::-1])


def render_face_image(
    rng: np.random.Generator,
    img_size: int,
    max_faces: int = 6,
    min_face: float = 12.0,
    max_face_frac: float = 0.7,
    pose_ranges: dict = POSE_RANGES,
) -> tuple[np.ndarray, list[dict]]:
    """One image with 1..``max_faces`` heads.

    Face sizes (skull height when frontal, 2 * scale) are log-uniform in [min_face,
    max_face_frac * img_size] pixels; a head is placed only where its box overlaps earlier boxes
    by less than 20% of either area (up to 30 tries).

    Returns:
        (H, W, 3) uint8 BGR image and a list of faces: ``box``, ``landmarks``, ``flags``,
        ``landmarks68``, ``pose`` (yaw, pitch, roll degrees).
    """
    img = render_background(rng, img_size, img_size)
    faces: list[dict] = []
    for _ in range(int(rng.integers(1, max_faces + 1))):
        for _try in range(30):
            height = float(np.exp(rng.uniform(np.log(min_face), np.log(max_face_frac * img_size))))
            scale = height / 2.0
            centre = rng.uniform(0.55 * height, img_size - 0.55 * height, 2)
            head, pose = HeadModel.sample(rng), sample_pose(rng, pose_ranges)
            box = head_box(head, euler_to_matrix(*pose), centre, scale)
            if all(_overlap(box, f["box"]) < 0.2 for f in faces):
                face = render_head(img, head, pose, centre, scale, rng)
                face["pose"] = pose
                faces.append(face)
                break
    return finish_image(img, rng), faces


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-9)
