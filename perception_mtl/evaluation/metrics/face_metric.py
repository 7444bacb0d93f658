"""Face detection AP (easy / medium / hard by face size), 5-point landmark NME and head-pose MAE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmdet.evaluation.functional import average_precision
from mmdet.structures.bbox import bbox_overlaps
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS

from .sem_seg_iou_metric import sample_field

DEFAULT_SPLITS = dict(easy=48.0, medium=24.0, hard=0.0)


def face_size(boxes: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of (N, 4) xyxy boxes."""
    wh = (boxes[:, 2:] - boxes[:, :2]).clip(0)
    return np.sqrt(wh[:, 0] * wh[:, 1])


def match_image(
    pred_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, gt_ignore: np.ndarray, iou_thr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching in descending score order.

    A detection takes the unmatched, non-ignored face of highest IoU >= ``iou_thr`` (true
    positive); failing that, if it overlaps an ignored face by >= ``iou_thr`` it is ignored;
    otherwise it is a false positive.

    The rule differs from VOC's (mmdet's ``tpfp_default``), where a detection whose best face is
    already taken is a false positive even if another face overlaps it enough, so it is kept here;
    the IoU is mmdet's ``bbox_overlaps`` (in float64, as the stored boxes).

    Returns:
        ``det_state`` (N,) in {1 TP, 0 FP, -1 ignored} and ``det_gt`` (N,) matched face index or -1.
    """
    order = np.argsort(-scores, kind="stable")
    state = np.zeros(len(scores), np.int64)
    matched_gt = np.full(len(scores), -1, np.int64)
    taken = np.zeros(len(gt_boxes), bool)
    iou = bbox_overlaps(torch.from_numpy(pred_boxes).double(), torch.from_numpy(gt_boxes).double()).numpy()
    for d in order:
        candidates = np.where(~taken & ~gt_ignore, iou[d], -1.0)
        if candidates.size and candidates.max() >= iou_thr:
            g = int(candidates.argmax())
            taken[g] = True
            state[d], matched_gt[d] = 1, g
        elif gt_ignore.any() and np.where(gt_ignore, iou[d], -1.0).max() >= iou_thr:
            state[d] = -1
    return state, matched_gt


@METRICS.register_module()
class FaceMetric(BaseMetric):
    """Face AP at IoU ``iou_thr`` per size split, landmark NME and pose MAE, in original-image pixels.

    Detection (WIDER-like size splits): a face's size is sqrt(w h) of its ground-truth box in
    original pixels; split ``s`` with threshold ``t_s`` counts the faces of size >= t_s and
    *ignores* the others (defaults: hard >= 0, i.e. every face; medium >= 24 px; easy >= 48 px).
    A detection matched to an ignored face, or unmatched and itself smaller than ``t_s``, is
    ignored (neither TP nor FP), as COCO's area ranges. AP is VOC's all-point interpolation over
    all detections of the split (mmdet's ``average_precision``, mode 'area'), recall denominated by
    the number of counted faces.

    Landmarks and pose are scored on the faces matched (IoU >= ``iou_thr``, greedy by score,
    hard split) by a detection with score >= ``score_thr``:

    - ``NME``: per face, the mean over the five points of the Euclidean error divided by the
      ground-truth box size sqrt(w h), averaged over matched faces with valid landmarks;
    - ``yaw_MAE`` / ``pitch_MAE`` / ``roll_MAE`` (degrees): mean absolute error over matched faces
      whose three angles are known and inside (-99, 99) (MOS's AFLW2000 protocol); ``pose_MAE`` is
      their mean; ``pose_MAE_<split>`` the same mean over the matched faces of each size split;
    - ``recall_at_thr``: matched faces / all faces.

    Reads ``pred_instances`` (``bboxes``, ``scores``, ``landmarks``, ``poses``, original pixels) and
    ``gt_instances`` (network-input pixels, mapped back with ``scale_factor`` / ``img_offset``).

    Args:
        iou_thr: IoU of a match.
        score_thr: detections used for NME / MAE.
        size_splits: split name -> minimum face size in pixels.
        max_angle: pose faces need every |angle| < this.
        prefix: key prefix (default ``face``).
    """

    default_prefix = "face"

    def __init__(
        self,
        iou_thr: float = 0.5,
        score_thr: float = 0.5,
        size_splits: dict | None = None,
        max_angle: float = 99.0,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thr, self.score_thr, self.max_angle = float(iou_thr), float(score_thr), float(max_angle)
        self.size_splits = dict(size_splits if size_splits is not None else DEFAULT_SPLITS)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = sample_field(sample, "pred_instances", "FaceMetric")
            gt = sample_field(sample, "gt_instances", "FaceMetric")
            meta = sample.get("metainfo", sample) if isinstance(sample, dict) else sample.metainfo
            scale = np.asarray(meta.get("scale_factor", (1.0, 1.0)), np.float64)[:2]
            offset = np.asarray(meta.get("img_offset", (0.0, 0.0)), np.float64)[:2]

            def arr(source, key, shape):
                value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
                if value is None:
                    return np.zeros(shape)
                return torch.as_tensor(value).detach().cpu().double().numpy().reshape(shape)

            n_gt = len(arr(gt, "bboxes", (-1, 4)))
            self.results.append(
                dict(
                    pred_boxes=arr(pred, "bboxes", (-1, 4)),
                    scores=arr(pred, "scores", (-1,)),
                    pred_landmarks=arr(pred, "landmarks", (-1, 5, 2)),
                    pred_poses=arr(pred, "poses", (-1, 3)),
                    gt_boxes=(arr(gt, "bboxes", (-1, 4)) - np.tile(offset, 2)) / np.tile(scale, 2),
                    gt_landmarks=(arr(gt, "landmarks", (-1, 5, 2)) - offset) / scale,
                    gt_landmarks_valid=arr(gt, "landmarks_valid", (-1,)).astype(bool) if n_gt else np.zeros(0, bool),
                    gt_poses=arr(gt, "poses", (-1, 3)),
                )
            )

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = {}
        for name, min_size in self.size_splits.items():
            metrics[f"AP_{name}"] = self._split_ap(results, float(min_size))
        lm_errors, pose_errors, pose_sizes, matched, total = [], [], [], 0, 0
        for r in results:
            total += len(r["gt_boxes"])
            gt_sizes = face_size(r["gt_boxes"])
            keep = r["scores"] >= self.score_thr
            state, det_gt = match_image(
                r["pred_boxes"][keep],
                r["scores"][keep],
                r["gt_boxes"],
                np.zeros(len(r["gt_boxes"]), bool),
                self.iou_thr,
            )
            for d in np.nonzero(state == 1)[0]:
                g = det_gt[d]
                matched += 1
                if r["gt_landmarks_valid"][g]:
                    err = np.linalg.norm(r["pred_landmarks"][keep][d] - r["gt_landmarks"][g], axis=-1).mean()
                    lm_errors.append(err / max(gt_sizes[g], 1e-6))
                gt_pose = r["gt_poses"][g]
                if np.all(np.isfinite(gt_pose)) and np.all(np.abs(gt_pose) < self.max_angle):
                    pose_errors.append(np.abs(r["pred_poses"][keep][d] - gt_pose))
                    pose_sizes.append(gt_sizes[g])
        metrics["NME"] = float(np.mean(lm_errors)) if lm_errors else float("nan")
        pose = np.array(pose_errors).reshape(-1, 3)
        for k, angle in enumerate(("yaw", "pitch", "roll")):
            metrics[f"{angle}_MAE"] = float(pose[:, k].mean()) if len(pose) else float("nan")
        metrics["pose_MAE"] = float(pose.mean()) if len(pose) else float("nan")
        sizes = np.array(pose_sizes)
        for name, min_size in self.size_splits.items():  # small faces carry little pose information
            in_split = sizes >= float(min_size)
            metrics[f"pose_MAE_{name}"] = float(pose[in_split].mean()) if in_split.any() else float("nan")
        metrics["recall_at_thr"] = matched / total if total else float("nan")
        return metrics

    def _split_ap(self, results: list, min_size: float) -> float:
        scores, states, num_faces = [], [], 0
        for r in results:
            ignore = face_size(r["gt_boxes"]) < min_size
            num_faces += int((~ignore).sum())
            state, _ = match_image(r["pred_boxes"], r["scores"], r["gt_boxes"], ignore, self.iou_thr)
            state[(state == 0) & (face_size(r["pred_boxes"]) < min_size)] = -1
            scores.append(r["scores"][state >= 0])
            states.append(state[state >= 0])
        if num_faces == 0:
            return float("nan")
        scores, states = np.concatenate(scores), np.concatenate(states)
        order = np.argsort(-scores, kind="stable")
        tp = np.cumsum(states[order] == 1)
        fp = np.cumsum(states[order] == 0)
        recall = tp / num_faces
        precision = tp / np.maximum(tp + fp, 1)
        return float(average_precision(recall, precision, mode="area"))
