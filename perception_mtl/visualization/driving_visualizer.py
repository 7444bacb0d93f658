"""Pictures of one multi-task driving sample: the BEV (points, boxes, map, occupancy) and the six cameras."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from perception_mtl.structures import SensorCalibration

from .bev_canvas import BOX_EDGES, BEVCanvas, box_centres, box_corners
from .panel_grid import GT_COLOR, MAP_COLORS, OCC_COLORS, POINT_COLOR, PRED_COLOR, compose_panels, to_uint8_bgr, upscale

OCC3D_RANGE = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
OCC3D_GRID = (200, 200, 16)
OCC_FREE = 17


def _as_numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _boxes_array(boxes) -> np.ndarray:
    """mmdet3d boxes / tensor / array -> (N, >=7) float64 ``(x, y, z_bottom, l, w, h, yaw, ...)``."""
    if boxes is None:
        return np.zeros((0, 7))
    tensor = getattr(boxes, "tensor", boxes)
    array = _as_numpy(tensor).astype(np.float64)
    return array.reshape(-1, array.shape[-1]) if array.size else np.zeros((0, 7))


def gt_boxes(sample, lidar_aug: np.ndarray | None = None) -> np.ndarray:
    """(N, >=7) ground-truth boxes of a packed sample in its (augmented) LiDAR frame.

    Training pipelines pack them as ``gt_instances_3d.bboxes_3d`` (already augmented); the evaluation
    pipelines do not load annotations, so the dataset's ``eval_ann_info['gt_bboxes_3d']`` (original
    LiDAR frame) is used then, moved by ``lidar_aug`` (4, 4) when that is not the identity.
    """
    instances = sample.get("gt_instances_3d") if hasattr(sample, "get") else None
    if instances is not None and "bboxes_3d" in instances and len(instances.bboxes_3d):
        return _boxes_array(instances.bboxes_3d)
    ann = sample.get("eval_ann_info") if hasattr(sample, "get") else None
    if not ann or ann.get("gt_bboxes_3d") is None:
        return np.zeros((0, 7))
    boxes = _boxes_array(ann["gt_bboxes_3d"])
    if lidar_aug is not None and len(boxes) and not np.allclose(lidar_aug, np.eye(4)):
        boxes = boxes.copy()
        boxes[:, :3] = boxes[:, :3] @ lidar_aug[:3, :3].T + lidar_aug[:3, 3]
        scale = np.cbrt(abs(np.linalg.det(lidar_aug[:3, :3])))
        boxes[:, 3:6] *= scale
        heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(boxes))], 1) @ lidar_aug[:3, :3].T
        boxes[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    return boxes


def map_labels(raster: np.ndarray) -> np.ndarray:
    """(K, X, Y) multi-label map raster in {0, 1} -> (X, Y) index of the last class set there (-1: none),
    the class drawn on top."""
    raster = np.asarray(raster) > 0
    labels = np.full(raster.shape[1:], -1, np.int64)
    for k in range(raster.shape[0]):
        labels[raster[k]] = k
    return labels


class DrivingVisualizer:
    """Draws a packed multi-task BEV sample with its ground truth and, when present, the model's predictions.

    Frames: everything BEV is drawn in the sample's (augmented) LiDAR frame, the frame of its points,
    boxes and map raster; Occ3D grids are in the ego frame and are placed with the sample's
    ``lidar2ego``. Cameras show the network's (augmented) images with boxes projected by the sample's
    :class:`SensorCalibration` (``img_aug @ cam2img @ lidar2cam @ inv(lidar_aug)``).

    Picture ``bev``: panels "points + boxes" (grey points, ground truth green, predictions red), "map GT"
    and "map pred" (BEVFusion's six classes, :data:`MAP_COLORS`), "occ GT" and "occ pred" (the Occ3D
    slice at ``occ_height``, :data:`OCC_COLORS`; unobserved ground-truth voxels dimmed), each panel a
    :class:`BEVCanvas`; panels without data are left out. Picture ``cameras``: the cameras in a 2 x 3
    grid, each image upscaled ``camera_scale`` times, boxes as 3D wireframes with a dot at the projected
    gravity centre.

    Args:
        bev_range: extent of the BEV panels (x_min, y_min, z_min, x_max, y_max, z_max) in metres.
        map_xbound, map_ybound: (min, max, cell) of the map raster (``LoadBEVMapSegmentation``).
        occ_range, occ_grid: Occ3D grid extent (6 numbers, ego frame) and voxels (X, Y, Z) (``LoadOccupancy``).
        occ_height: ego-frame height in metres of the occupancy slice drawn.
        score_thr: predicted boxes below this score are not drawn.
        canvas_size: BEV panel side in pixels.
        camera_scale: integer upscaling of the camera images.
    """

    def __init__(
        self,
        bev_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
        map_xbound: Sequence[float] = (-50.0, 50.0, 0.5),
        map_ybound: Sequence[float] = (-50.0, 50.0, 0.5),
        occ_range: Sequence[float] = OCC3D_RANGE,
        occ_grid: Sequence[int] = OCC3D_GRID,
        occ_height: float = 0.4,
        score_thr: float = 0.3,
        canvas_size: int = 400,
        camera_scale: int = 2,
    ) -> None:
        self.bev_range = tuple(float(v) for v in bev_range)
        self.map_xbound, self.map_ybound = tuple(map_xbound), tuple(map_ybound)
        self.occ_range = tuple(float(v) for v in occ_range)
        self.occ_grid = tuple(int(v) for v in occ_grid)
        self.occ_height = float(occ_height)
        self.score_thr = float(score_thr)
        self.canvas_size = int(canvas_size)
        self.camera_scale = int(camera_scale)

    # ------------------------------------------------------------------ helpers
    def occ_bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float], int]:
        """x bound, y bound ((min, max, voxel) metres) of the Occ3D grid and the z index of the slice."""
        lo, hi = np.asarray(self.occ_range[:3]), np.asarray(self.occ_range[3:])
        voxel = (hi - lo) / np.asarray(self.occ_grid)
        z = int(np.clip(np.floor((self.occ_height - lo[2]) / voxel[2]), 0, self.occ_grid[2] - 1))
        return (lo[0], hi[0], voxel[0]), (lo[1], hi[1], voxel[1]), z

    def pred_boxes(self, sample) -> np.ndarray:
        pred = sample.get("pred_instances_3d") if hasattr(sample, "get") else None
        if pred is None or "bboxes_3d" not in pred:
            return np.zeros((0, 7))
        boxes = _boxes_array(pred.bboxes_3d)
        if "scores_3d" in pred and len(boxes):
            boxes = boxes[_as_numpy(pred.scores_3d) >= self.score_thr]
        return boxes

    # ------------------------------------------------------------------ pictures
    def bev_panels(self, inputs: dict, sample, lidar_aug: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The BEV panels as ``(title, (S, S, 3) uint8 BGR)``; see the class docstring."""
        base = BEVCanvas(self.bev_range, self.canvas_size)
        gt, pred = gt_boxes(sample, lidar_aug), self.pred_boxes(sample)
        boxes = base.copy()
        if inputs.get("points") is not None:
            boxes.draw_points(_as_numpy(inputs["points"]), POINT_COLOR)
        boxes.draw_ego()
        boxes.draw_boxes(gt, GT_COLOR)
        boxes.draw_boxes(pred, PRED_COLOR)
        has_pred = sample.get("pred_instances_3d") is not None
        title = f"points, GT {len(gt)} boxes" + (
            f", pred {len(pred)} (score >= {self.score_thr:g})" if has_pred else ""
        )
        panels = [(title, boxes.image)]
        for key, name in (("gt_bev_seg", "map GT"), ("pred_bev_seg", "map pred (p >= 0.5)")):
            raster = sample.get(key)
            if raster is not None:
                canvas = base.copy()
                raster = _as_numpy(raster)
                labels = map_labels(raster >= 0.5 if key == "pred_bev_seg" else raster)
                canvas.draw_labels(canvas.sample_grid(labels, self.map_xbound, self.map_ybound), MAP_COLORS)
                panels.append((name, canvas.image))
        lidar2ego = sample.metainfo.get("lidar2ego") if hasattr(sample, "metainfo") else None
        x_bound, y_bound, z = self.occ_bounds()
        gt_occ, pred_occ = sample.get("gt_occ"), sample.get("pred_occ")
        for name, occ in (("occ GT", gt_occ), ("occ pred", pred_occ)):
            if occ is None:
                continue
            semantics = _as_numpy(occ["semantics"] if isinstance(occ, dict) else occ)
            canvas = base.copy()
            canvas.draw_labels(canvas.sample_grid(semantics[..., z], x_bound, y_bound, lidar2ego), OCC_COLORS)
            if isinstance(occ, dict) and "mask_camera" in occ:  # dim what no camera sees
                mask = _as_numpy(occ["mask_camera"])[..., z].astype(np.int64)
                hidden = canvas.sample_grid(mask, x_bound, y_bound, lidar2ego) == 0
                canvas.image[hidden] = (canvas.image[hidden] * 0.4).astype(np.uint8)
            height = self.occ_range[2] + (z + 0.5) * (self.occ_range[5] - self.occ_range[2]) / self.occ_grid[2]
            panels.append((f"{name} (z = {height:.1f} m ego)", canvas.image))
        return panels

    def camera_panels(self, inputs: dict, sample, calib: SensorCalibration, lidar_aug: np.ndarray):
        """The camera panels as ``(name, (H s, W s, 3) uint8 BGR)`` with projected ground-truth and predicted boxes."""
        images = inputs["img"]
        names = list(sample.metainfo.get("cam_names", [])) if hasattr(sample, "metainfo") else []
        s = self.camera_scale
        sets = [(gt_boxes(sample, lidar_aug), GT_COLOR), (self.pred_boxes(sample), PRED_COLOR)]
        projected = []
        for boxes, color in sets:
            if not len(boxes):
                continue
            points = np.concatenate([box_corners(boxes).reshape(-1, 3), box_centres(boxes)], 0)
            uv, depth = calib.project_points(torch.as_tensor(points, dtype=calib.dtype)[None])
            projected.append((len(boxes), _as_numpy(uv[0]), _as_numpy(depth[0]), color))
        panels = []
        for cam in range(len(images)):
            image = upscale(to_uint8_bgr(images[cam], rgb=True), s)
            for count, uv, depth, color in projected:
                # OpenCV's pixel-centre convention: pixel k of the input is the block [k s, k s + s).
                pix = np.clip(uv[cam] * s + (s - 1) / 2, -1e4, 1e4)
                corners, centres = pix[: 8 * count].reshape(count, 8, 2), pix[8 * count :]
                corner_depth, centre_depth = depth[cam, : 8 * count].reshape(count, 8), depth[cam, 8 * count :]
                for box in range(count):
                    for a, b in BOX_EDGES:
                        if corner_depth[box, a] > 0.1 and corner_depth[box, b] > 0.1:
                            pa = tuple(int(round(v)) for v in corners[box, a])
                            pb = tuple(int(round(v)) for v in corners[box, b])
                            cv2.line(image, pa, pb, color, 1, cv2.LINE_AA)
                    if centre_depth[box] > 0.1:
                        centre = tuple(int(round(v)) for v in centres[box])
                        cv2.circle(image, centre, max(2, s), color, -1)
            panels.append((names[cam] if cam < len(names) else f"camera {cam}", image))
        return panels

    def draw(self, inputs: dict, sample, header: str) -> dict[str, np.ndarray]:
        """Pictures of one sample.

        Args:
            inputs: one sample's packed inputs: ``points`` (P, C) in the augmented LiDAR frame, ``img``
                (N, 3, H, W) uint8 RGB and ``calib`` (a :class:`SensorCalibration` of batch 1), as
                ``PackMTLInputs`` writes them (either image part may be absent).
            sample: its ``Det3DDataSample``, with predictions when a model ran.
            header: title written above each picture.

        Returns:
            ``{'bev': picture, 'cameras': picture}`` (``cameras`` only with images and calibration),
            (H, W, 3) uint8 BGR.
        """
        calib = inputs.get("calib")
        lidar_aug = _as_numpy(calib.lidar_aug[0]).astype(np.float64) if calib is not None else np.eye(4)
        pictures = {"bev": compose_panels(self.bev_panels(inputs, sample, lidar_aug), 3, header)}
        if inputs.get("img") is not None and calib is not None:
            pictures["cameras"] = compose_panels(self.camera_panels(inputs, sample, calib, lidar_aug), 3, header)
        return pictures
