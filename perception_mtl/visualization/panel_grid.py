"""Pictures as grids of titled panels, and the colours every visualiser shares.

A picture is a header bar (``HEADER_HEIGHT`` rows, the picture's title) over a grid of panels of
one size, each under its own title bar (``TITLE_HEIGHT`` rows). :func:`panel_origin` gives where a
panel's pixels start, so tests (and users cropping pictures) can find them.

Colours are BGR uint8 (OpenCV's order).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

HEADER_HEIGHT = 28
TITLE_HEIGHT = 22
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)

GT_COLOR = (0, 200, 0)  # ground-truth boxes and lines: green
PRED_COLOR = (0, 0, 255)  # predicted boxes and lines: red
POINT_COLOR = (170, 170, 170)  # LiDAR points: grey

# BEVFusion's six map classes, drawn in this order (later classes paint over earlier ones).
MAP_COLORS = (
    (90, 90, 90),  # drivable_area: grey
    (0, 160, 255),  # ped_crossing: orange
    (200, 120, 0),  # walkway: blue
    (0, 0, 220),  # stop_line: red
    (160, 60, 160),  # carpark_area: purple
    (0, 230, 230),  # divider: yellow
)

# Occ3D's 17 occupied classes (the synthetic data's order: others, car, truck, trailer, bus,
# construction_vehicle, bicycle, motorcycle, pedestrian, traffic_cone, barrier, driveable_surface,
# other_flat, sidewalk, terrain, manmade, vegetation); 17 = free is not drawn.
OCC_COLORS = (
    (120, 120, 120),
    (0, 150, 255),
    (80, 50, 160),
    (0, 0, 180),
    (0, 220, 255),
    (40, 100, 140),
    (200, 0, 200),
    (255, 0, 150),
    (0, 0, 255),
    (0, 80, 255),
    (30, 90, 220),
    (80, 80, 80),
    (120, 60, 120),
    (180, 100, 60),
    (60, 160, 120),
    (200, 200, 200),
    (0, 170, 0),
)


def to_uint8_bgr(image, rgb: bool) -> np.ndarray:
    """(3, H, W) or (H, W, 3) uint8 tensor/array, RGB when ``rgb`` else BGR -> (H, W, 3) uint8 BGR copy."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim != 3:
        raise ValueError(f"expected a (3, H, W) or (H, W, 3) image, got shape {array.shape}")
    if array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array[..., ::-1] if rgb else array)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (pixel (r, c) becomes a scale x scale block)."""
    if scale == 1:
        return image.copy()
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def _bar(width: int, height: int, text: str, font_scale: float) -> np.ndarray:
    bar = np.full((height, width, 3), BACKGROUND, np.uint8)
    cv2.putText(bar, text, (4, height - 7), cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT, 1, cv2.LINE_AA)
    return bar


def panel_origin(index: int, columns: int, panel_shape: tuple[int, int]) -> tuple[int, int]:
    """(row, column) of the first pixel of panel ``index`` in a picture made by :func:`compose_panels`.

    Args:
        index: the panel's position in the list given to :func:`compose_panels` (row-major grid).
        columns: panels per grid row.
        panel_shape: (H, W) of every panel.
    """
    height, width = panel_shape
    grid_row, grid_col = divmod(index, columns)
    return HEADER_HEIGHT + grid_row * (TITLE_HEIGHT + height) + TITLE_HEIGHT, grid_col * width


def compose_panels(panels: Sequence[tuple[str, np.ndarray]], columns: int, header: str) -> np.ndarray:
    """Lays ``(title, (H, W, 3) uint8 image)`` panels of one size out in a grid under a header bar.

    Returns:
        (HEADER_HEIGHT + rows * (TITLE_HEIGHT + H), columns * W, 3) uint8 BGR picture; empty grid
        cells are background.
    """
    if not panels:
        raise ValueError("compose_panels: no panels to draw")
    shapes = {image.shape for _, image in panels}
    if len(shapes) != 1:
        raise ValueError(f"compose_panels: panels differ in shape {sorted(shapes)}")
    height, width = panels[0][1].shape[:2]
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    picture = np.full((HEADER_HEIGHT + rows * (TITLE_HEIGHT + height), columns * width, 3), BACKGROUND, np.uint8)
    picture[:HEADER_HEIGHT] = _bar(columns * width, HEADER_HEIGHT, header, 0.55)
    for index, (title, image) in enumerate(panels):
        row, col = panel_origin(index, columns, (height, width))
        picture[row - TITLE_HEIGHT : row, col : col + width] = _bar(width, TITLE_HEIGHT, title, 0.45)
        picture[row : row + height, col : col + width] = image
    return picture
