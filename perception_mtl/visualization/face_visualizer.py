"""Pictures of one face sample: boxes, five landmarks and head-pose axes, ground truth beside prediction."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from perception_mtl.structures.head_pose import euler_to_matrix

from .panel_grid import compose_panels, to_uint8_bgr, upscale

BOX_COLOR = (255, 255, 0)  # cyan
LANDMARK_COLOR = (255, 0, 255)  # magenta
# Hopenet's draw_axis colours: head x (right) red, y (down) green, nose direction blue.
AXIS_COLORS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))


def pose_axes(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 2) image-plane directions (x right, y down; unit length in 3D) of the head's x axis (its
    right), y axis (down) and nose direction for a pose in degrees (:mod:`perception_mtl.structures.head_pose`
    convention): the columns of ``R`` and ``-R e_z``, projected orthographically, as Hopenet's ``draw_axis``."""
    rot = euler_to_matrix(yaw, pitch, roll)
    return np.stack([rot[:2, 0], rot[:2, 1], -rot[:2, 2]])


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().float().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float32)


class FaceVisualizer:
    """Draws a packed face sample (``PackFaceInputs``): one panel of ground truth and, when the model ran,
    one of predictions (faces scoring at least ``score_thr``), on the network-input image.

    Each face: its box (cyan), pose axes from the box centre, ``axis_scale`` x half the box width long
    (x red, y green, nose blue, as Hopenet), then its landmarks (magenta dots, radius ``scale``).
    Ground truth is in network-input pixels; predictions are in original-image pixels
    (``FacePoseHead.predict_by_feat``) and are mapped back with the sample's ``scale_factor`` and
    ``img_offset``. Pixel coordinates are continuous (the image spans [0, W]), so input coordinate u is
    drawn at ``u * scale`` in the upscaled picture.

    Args:
        score_thr: predicted faces below this score are not drawn.
        scale: integer upscaling of the image.
        axis_scale: axis length relative to half the box width.
    """

    def __init__(self, score_thr: float = 0.5, scale: int = 2, axis_scale: float = 0.8) -> None:
        self.score_thr = float(score_thr)
        self.scale = int(scale)
        self.axis_scale = float(axis_scale)

    def draw_faces(self, image: np.ndarray, boxes, landmarks=None, valid=None, poses=None) -> np.ndarray:
        """Draws (N, 4) xyxy boxes, (N, 5, 2) landmarks (those of ``valid`` (N,) faces) and (N, 3)
        ``(yaw, pitch, roll)`` degree poses (NaN: unknown, not drawn), input pixels, on a copy of ``image``."""
        image = image.copy()
        s = self.scale
        boxes = _numpy(boxes).reshape(-1, 4)
        for k, box in enumerate(boxes):
            x1, y1, x2, y2 = (int(round(v * s)) for v in box)
            cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOR, 1)
            if poses is not None and np.isfinite(_numpy(poses)[k]).all():
                centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) * s
                length = self.axis_scale * (box[2] - box[0]) / 2 * s
                for direction, color in zip(pose_axes(*_numpy(poses)[k]), AXIS_COLORS):
                    end = centre + length * direction
                    cv2.line(image, tuple(int(round(v)) for v in centre), tuple(int(round(v)) for v in end), color, 2)
            if landmarks is not None and (valid is None or bool(_numpy(valid)[k])):
                for x, y in _numpy(landmarks)[k]:
                    cv2.circle(image, (int(round(x * s)), int(round(y * s))), s, LANDMARK_COLOR, -1)
        return image

    @staticmethod
    def _to_input_pixels(pred, sample) -> tuple[np.ndarray, np.ndarray]:
        meta = sample.metainfo
        scale = np.asarray(meta.get("scale_factor", (1.0, 1.0)), np.float32)[:2]
        offset = np.asarray(meta.get("img_offset", (0.0, 0.0)), np.float32)[:2]
        boxes = _numpy(pred.bboxes) * np.tile(scale, 2) + np.tile(offset, 2)
        landmarks = _numpy(pred.landmarks) * scale + offset if "landmarks" in pred else None
        return boxes, landmarks

    def draw(self, inputs, sample, header: str) -> dict[str, np.ndarray]:
        """Pictures of one sample.

        Args:
            inputs: (3, H, W) uint8 BGR image as ``PackFaceInputs`` writes it.
            sample: its ``DetDataSample`` (``gt_instances``: ``bboxes``, ``landmarks``, ``landmarks_valid``,
                ``poses``), with ``pred_instances`` when a model ran.
            header: title written above the picture.

        Returns:
            ``{'faces': (HEADER + TITLE + H s, W s or 2 W s, 3) uint8 BGR picture}``.
        """
        image = upscale(to_uint8_bgr(inputs, rgb=False), self.scale)
        gt = sample.gt_instances
        panels = [
            (
                f"GT: {len(gt.bboxes)} faces",
                self.draw_faces(image, gt.bboxes, gt.get("landmarks"), gt.get("landmarks_valid"), gt.get("poses")),
            )
        ]
        pred = sample.get("pred_instances")
        if pred is not None:
            keep = _numpy(pred.scores) >= self.score_thr
            pred = pred[torch.as_tensor(keep)]
            boxes, landmarks = self._to_input_pixels(pred, sample)
            poses = pred.get("poses")
            panels.append(
                (
                    f"pred: {len(boxes)} faces (score >= {self.score_thr:g})",
                    self.draw_faces(image, boxes, landmarks, None, poses),
                )
            )
        return {"faces": compose_panels(panels, 2, header)}
