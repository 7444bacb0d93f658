"""Ground-truth object database for copy-paste augmentation (mmdet3d's ``ObjectSample``).

Writes, for every annotated object of the training infos, the LiDAR points inside its box (key
frame + sweeps, the same channels the training pipeline loads, xyz relative to the box's bottom
centre) as ``<db_dir>/<token>_<class>_<i>.bin`` and one ``<prefix>_dbinfos_train.pkl`` in
mmdet3d's format (``{class: [{name, path, box3d_lidar, num_points_in_gt, difficulty, group_id,
image_idx, gt_idx}]}``, plus the sample ``token``), so mmdet3d's ``DataBaseSampler`` reads it unchanged.
"""

from __future__ import annotations

import os
import os.path as osp
import sys
from collections.abc import Sequence

import mmengine
import numpy as np
import torch
from mmcv.ops import points_in_boxes_cpu
from mmengine.utils import ProgressBar


def write_gt_database(
    data_root: str,
    info_file: str = "nuscenes_infos_train.pkl",
    prefix: str = "nuscenes",
    sweeps_num: int = 4,
    use_dim: Sequence[int] = (0, 1, 2, 3),
    classes: Sequence[str] | None = None,
    progress: bool = False,
) -> dict:
    """Builds the database from ``data_root/info_file``; returns ``{class: number of objects}``.

    Only training infos should be used: pasting validation objects into training scenes would
    leak them. Objects without points are skipped (nothing to paste). ``progress`` shows a progress
    bar (mmengine's, with ETA) over the samples on stdout.
    """
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import DATASETS

    init_default_scope("perception_mtl")
    pipeline = [
        dict(
            type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=tuple(use_dim), sweeps_num=sweeps_num, test_mode=True
        ),
        dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    ]
    dataset_cfg = dict(
        type="NuScenesMTLDataset", data_root=data_root, ann_file=info_file, pipeline=pipeline, test_mode=False
    )
    if classes is not None:
        dataset_cfg["metainfo"] = dict(classes=list(classes))
    dataset = DATASETS.build(dataset_cfg)
    names = dataset.metainfo["classes"]
    db_dir_name = f"{prefix}_gt_database"
    db_dir = osp.join(data_root, db_dir_name)
    os.makedirs(db_dir, exist_ok=True)
    db_infos: dict[str, list[dict]] = {name: [] for name in names}  # every class, so samplers can name it
    group_id = 0
    bar = ProgressBar(len(dataset), file=sys.stdout) if progress else None
    for idx in range(len(dataset)):
        if bar:
            bar.update()
        results = dataset.pipeline(dataset.get_data_info(idx))  # no packing, no empty-GT resampling
        points = results["points"].tensor.numpy()
        boxes = results["gt_bboxes_3d"].tensor.numpy().astype(np.float32)  # (N, 9): bottom centre, size, yaw, vel
        labels = results["gt_labels_3d"]
        if len(boxes) == 0:
            continue
        inside = (
            points_in_boxes_cpu(
                torch.from_numpy(points[None, :, :3]).float(), torch.from_numpy(boxes[None, :, :7]).float()
            )[0]
            .numpy()
            .astype(bool)
        )  # (P, N)
        sample_idx, token = results.get("sample_idx", idx), results.get("token", str(idx))
        for i, label in enumerate(labels):
            if label < 0:
                continue
            obj = points[inside[:, i]].astype(np.float32)
            if len(obj) == 0:
                continue
            obj[:, :3] -= boxes[i, :3]
            name = names[label]
            file_name = f"{token}_{name}_{i}.bin"
            obj.tofile(osp.join(db_dir, file_name))
            db_infos.setdefault(name, []).append(
                dict(
                    name=name,
                    path=osp.join(db_dir_name, file_name),
                    image_idx=sample_idx,
                    token=token,
                    gt_idx=i,
                    box3d_lidar=boxes[i],
                    num_points_in_gt=int(len(obj)),
                    difficulty=0,
                    group_id=group_id,
                )
            )
            group_id += 1
    if bar:
        sys.stdout.write("\n")
    mmengine.dump(db_infos, osp.join(data_root, f"{prefix}_dbinfos_train.pkl"))
    return {name: len(v) for name, v in db_infos.items()}
