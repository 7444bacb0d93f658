"""nuScenes 3D detection: submission JSON in the global frame, scored by nuscenes-devkit's DetectionEval."""

from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from collections.abc import Sequence

import numpy as np
import torch
from mmdet3d.evaluation.metrics.nuscenes_metric import NuScenesMetric
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from pyquaternion import Quaternion

from perception_mtl.datasets.transforms.bev_aug import transform_boxes
from perception_mtl.engine.safe_pickle import safe_pickle_load
from perception_mtl.registry import METRICS

# Attribute of a class when its speed does not decide it (static classes have none): mmdet3d's.
DEFAULT_ATTRIBUTE: dict[str, str] = dict(NuScenesMetric.DefaultAttribute)
VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle")
CYCLES = ("bicycle", "motorcycle")


def attribute_from_speed(name: str, speed: float, moving_speed: float) -> str:
    """nuScenes attribute guessed from class and speed (m/s), as detectors without an attribute head do.

    The rule of mmdet3d's ``NuScenesMetric`` (moving vehicles and ridden cycles above the speed,
    standing pedestrians and stopped buses below, else :data:`DEFAULT_ATTRIBUTE`); written out here
    because mmdet3d keeps it inside its box formatter, which works on its own box type and a fixed
    0.2 m/s threshold.
    """
    if speed > moving_speed:
        if name in VEHICLES:
            return "vehicle.moving"
        if name in CYCLES:
            return "cycle.with_rider"
        return DEFAULT_ATTRIBUTE[name]
    if name == "pedestrian":
        return "pedestrian.standing"
    if name == "bus":
        return "vehicle.stopped"
    return DEFAULT_ATTRIBUTE[name]


def _rotation(matrix: np.ndarray) -> Quaternion:
    """Quaternion of a (nearly) orthonormal 3x3 matrix; re-orthonormalised so float32 infos pass."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64))
    return Quaternion(matrix=u @ vt)


def lidar_boxes_to_global(boxes: np.ndarray, lidar2ego: np.ndarray, ego2global: np.ndarray) -> list[dict]:
    """mmdet3d LiDAR boxes -> nuScenes global-frame box fields.

    Args:
        boxes: (K, 9) LiDAR boxes (x, y, z_bottom, l, w, h, yaw, vx, vy); yaw 0 along +x, CCW.
        lidar2ego: (4, 4) LiDAR -> ego transform of the sample.
        ego2global: (4, 4) ego -> global transform of the sample.

    Returns:
        One dict per box with ``translation`` (gravity centre, global), ``size`` (w, l, h),
        ``rotation`` (w, x, y, z quaternion, global) and ``velocity`` (vx, vy, global).
    """
    q_l2e, q_e2g = _rotation(lidar2ego[:3, :3]), _rotation(ego2global[:3, :3])
    rot = ego2global[:3, :3] @ lidar2ego[:3, :3]
    out = []
    for x, y, z, length, width, height, yaw, vx, vy in np.asarray(boxes, dtype=np.float64):
        centre = np.array([x, y, z + height / 2])  # mmdet3d boxes are bottom-centred
        centre = ego2global[:3, :3] @ (lidar2ego[:3, :3] @ centre + lidar2ego[:3, 3]) + ego2global[:3, 3]
        orientation = q_e2g * q_l2e * Quaternion(axis=[0.0, 0.0, 1.0], radians=yaw)
        velocity = rot @ np.array([vx, vy, 0.0])
        out.append(
            dict(
                translation=centre.tolist(),
                size=[float(width), float(length), float(height)],
                rotation=orientation.elements.tolist(),
                velocity=velocity[:2].tolist(),
            )
        )
    return out


@METRICS.register_module()
class NuScenesDetectionMetric(BaseMetric):
    """Writes the nuScenes detection submission and scores it with the official devkit.

    ``process`` keeps, per sample, the predicted LiDAR boxes (``pred_instances_3d``: bboxes_3d
    (K, 9) with bottom-centre z and velocity, scores_3d, labels_3d) and the sample token.
    Predictions made in a BEV-augmented frame (test-time flips) are mapped back with the
    sample's ``calib.lidar_aug``. ``compute_metrics`` moves boxes to the global frame with the
    info file's ``lidar2ego`` and ``ego2global``, adds attributes from speed, writes
    ``results_nusc.json``, runs ``DetectionEval`` (``eval_config``, e.g. detection_cvpr_2019) on
    ``eval_set`` and returns mAP, NDS, per-class AP (mean over the distance thresholds) and the
    TP errors (mATE, mASE, mAOE, mAVE, mAAE).

    Args:
        data_root: nuScenes root holding ``<version>/`` tables.
        ann_file: the evaluated split's info file (mmdet3d v2 format), relative to ``data_root``
            or absolute; gives each token's LiDAR and ego poses.
        version: nuScenes version folder, e.g. ``'v1.0-mini'``.
        eval_set: devkit split, e.g. ``'mini_val'`` or ``'val'``; predictions must cover all of it.
        eval_config: devkit detection config name.
        jsonfile_prefix: folder for the submission and devkit outputs; a temporary one if None.
        modality: the submission's ``meta`` (use_camera, use_lidar, ...).
        moving_speed: speed (m/s) above which vehicles are 'moving' and cycles 'with_rider'.
        collect_device: 'cpu' or 'gpu' for gathering results across ranks.
        prefix: metric-name prefix (default ``'nuscenes_det'``).
    """

    default_prefix = "nuscenes_det"

    def __init__(
        self,
        data_root: str,
        ann_file: str,
        version: str = "v1.0-mini",
        eval_set: str = "mini_val",
        eval_config: str = "detection_cvpr_2019",
        jsonfile_prefix: str | None = None,
        modality: dict | None = None,
        moving_speed: float = 0.2,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.data_root = data_root
        self.ann_file = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
        self.version = version
        self.eval_set = eval_set
        self.eval_config = eval_config
        self.jsonfile_prefix = jsonfile_prefix
        self.modality = dict(use_camera=True, use_lidar=True, use_radar=False, use_map=False, use_external=False)
        self.modality.update(modality or {})
        self.moving_speed = moving_speed

    def process(self, data_batch: dict | None, data_samples: Sequence[dict]) -> None:
        calibs = (data_batch or {}).get("inputs", {}).get("calib")
        for i, sample in enumerate(data_samples):
            pred = sample["pred_instances_3d"]
            boxes = pred["bboxes_3d"]
            tensor = boxes.tensor if hasattr(boxes, "tensor") else torch.as_tensor(boxes)
            tensor = tensor.detach().float().cpu()
            if tensor.shape[1] < 9:
                raise ValueError(f"NuScenesDetectionMetric: boxes need velocity (9 values), got {tensor.shape[1]}")
            if calibs is not None:
                aug = calibs[i].lidar_aug[0].double()
                if not torch.allclose(aug, torch.eye(4, dtype=aug.dtype)):
                    tensor = transform_boxes(tensor.double(), torch.linalg.inv(aug).numpy()).float()
            token = sample.get("token")
            if token is None:
                raise KeyError(
                    "NuScenesDetectionMetric: data samples need the 'token' metainfo (PackMTLInputs keeps it)"
                )
            self.results.append(
                dict(
                    token=token,
                    boxes=tensor[:, :9].numpy(),
                    scores=pred["scores_3d"].detach().float().cpu().numpy(),
                    labels=pred["labels_3d"].detach().long().cpu().numpy(),
                )
            )

    def load_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """token -> (lidar2ego, ego2global) from the info file."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f"NuScenesDetectionMetric: ann_file not found: {self.ann_file}")
        infos = safe_pickle_load(self.ann_file)
        data_list = infos["data_list"] if isinstance(infos, dict) else infos
        return {
            info["token"]: (
                np.asarray(info["lidar_points"]["lidar2ego"], np.float64),
                np.asarray(info["ego2global"], np.float64),
            )
            for info in data_list
        }

    def to_submission(self, results: Sequence[dict], class_names: Sequence[str]) -> dict:
        """Per-sample results -> the devkit's submission dict (at most 500 boxes per sample)."""
        from nuscenes.eval.detection.config import config_factory

        config = config_factory(self.eval_config)
        unknown = [c for c in class_names if c not in config.class_names]
        if unknown:
            raise ValueError(f"NuScenesDetectionMetric: classes {unknown} are not nuScenes detection classes")
        poses = self.load_poses()
        submission = {}
        for res in results:
            token = res["token"]
            if token not in poses:
                raise KeyError(f"NuScenesDetectionMetric: token {token} is not in {self.ann_file}")
            order = np.argsort(-res["scores"], kind="stable")[: config.max_boxes_per_sample]
            fields = lidar_boxes_to_global(res["boxes"][order], *poses[token])
            boxes = []
            for field, score, label in zip(fields, res["scores"][order], res["labels"][order]):
                name = class_names[int(label)]
                speed = float(np.hypot(*field["velocity"]))
                boxes.append(
                    dict(
                        sample_token=token,
                        detection_name=name,
                        detection_score=float(score),
                        attribute_name=attribute_from_speed(name, speed, self.moving_speed),
                        **field,
                    )
                )
            submission[token] = boxes
        return dict(meta=self.modality, results=submission)

    def compute_metrics(self, results: list) -> dict[str, float]:
        from nuscenes import NuScenes
        from nuscenes.eval.detection.config import config_factory
        from nuscenes.eval.detection.evaluate import DetectionEval

        logger = MMLogger.get_current_instance()
        class_names = list((self.dataset_meta or {}).get("classes", []))
        if not class_names:
            raise ValueError("NuScenesDetectionMetric: dataset_meta['classes'] is empty (set by the runner)")
        tmp = None
        if self.jsonfile_prefix is None:
            tmp = tempfile.TemporaryDirectory()
            out_dir = tmp.name
        else:
            out_dir = self.jsonfile_prefix
            os.makedirs(out_dir, exist_ok=True)
        try:
            result_path = osp.join(out_dir, "results_nusc.json")
            with open(result_path, "w") as f:
                json.dump(self.to_submission(results, class_names), f)
            nusc = NuScenes(version=self.version, dataroot=self.data_root, verbose=False)
            evaluator = DetectionEval(
                nusc, config_factory(self.eval_config), result_path, self.eval_set, output_dir=out_dir, verbose=False
            )
            metrics, _ = evaluator.evaluate()
            summary = metrics.serialize()
            with open(osp.join(out_dir, "metrics_summary.json"), "w") as f:
                json.dump(summary, f, indent=2)
        finally:
            if tmp is not None:
                tmp.cleanup()
        out = {"mAP": float(summary["mean_ap"]), "NDS": float(summary["nd_score"])}
        for short, key in (
            ("mATE", "trans_err"),
            ("mASE", "scale_err"),
            ("mAOE", "orient_err"),
            ("mAVE", "vel_err"),
            ("mAAE", "attr_err"),
        ):
            out[short] = float(summary["tp_errors"][key])
        for name, ap in summary["mean_dist_aps"].items():
            out[f"{name}_AP"] = float(ap)
        logger.info(
            "nuScenes detection: "
            + ", ".join(f"{k} {v:.4f}" for k, v in out.items() if not k.endswith("_AP"))
            + " | AP "
            + ", ".join(f"{k[:-3]} {v:.3f}" for k, v in out.items() if k.endswith("_AP"))
        )
        return out
