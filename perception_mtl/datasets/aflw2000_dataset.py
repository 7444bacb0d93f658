"""Head-pose evaluation images in the AFLW2000-3D layout: ``<name>.jpg`` beside ``<name>.mat``."""

from __future__ import annotations

import glob
import os.path as osp

import numpy as np
import scipy.io
from mmengine.dataset import BaseDataset

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import DATASETS
from perception_mtl.structures.head_pose import pose_from_pose_para
from perception_mtl.synthetic.faces.head_model import five_from_68


def read_aflw2000_mat(path: str) -> dict:
    """Reads one AFLW2000 ``.mat``.

    ``Pose_Para`` holds [pitch, yaw, roll] in radians as its first three values (then translation
    and scale), in 3DDFA's convention, which is that of
    :mod:`perception_mtl.structures.head_pose` (positive pitch = nose up); ``pt3d_68`` is (3, 68)
    with image x, y (pixels, y down) in its first two rows.

    Returns:
        ``pose`` (3,) float32 (yaw, pitch, roll) degrees, ``landmarks68`` (68, 2) float32 pixels.

    Raises:
        BadSampleError: naming the file, when it cannot be read, has no ``Pose_Para`` (or fewer
            than 3 values) or no (>= 2, 68) ``pt3d_68``.
    """
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError) as err:
        raise BadSampleError(f"cannot read .mat: {err}", path=path) from None
    if "Pose_Para" not in mat:
        raise BadSampleError("no 'Pose_Para' (head pose) in the .mat", path=path)
    para = np.asarray(mat["Pose_Para"], np.float64).ravel()
    if para.size < 3 or not np.all(np.isfinite(para[:3])):
        raise BadSampleError(f"'Pose_Para' needs 3 finite angles, got {para[:3].tolist()}", path=path)
    if "pt3d_68" not in mat:
        raise BadSampleError("no 'pt3d_68' landmarks in the .mat", path=path)
    pts = np.asarray(mat["pt3d_68"], np.float64)
    if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] != 68:
        raise BadSampleError(f"'pt3d_68' must be (3, 68), got {pts.shape}", path=path)
    return dict(pose=pose_from_pose_para(para).astype(np.float32), landmarks68=pts[:2].T.astype(np.float32))


@DATASETS.register_module()
class AFLW2000Dataset(BaseDataset):
    """One face per image with yaw/pitch/roll (and 68 landmarks), for pose evaluation.

    The face box is the bounding box of the 68 landmarks' x, y, enlarged by ``box_expand`` of its
    size on each side (AFLW2000 has no face box); the five landmarks are derived from the 68
    (eye centres, nose tip 30, mouth corners 48 / 54). Data infos have the arrays of
    :class:`FaceDataset` (N = 1). Samples are the ``*.mat`` files under ``data_root`` /
    ``data_prefix['img']``, sorted, each with an image of the same stem (``img_suffix``);
    a missing image or a bad ``.mat`` raises :class:`BadSampleError` naming the file and its index.

    Args:
        data_root: folder of the image/.mat pairs.
        img_suffix: image extension.
        box_expand: relative enlargement of the landmark box per side.
        **kwargs: ``BaseDataset`` arguments (pipeline, test_mode, ...).
    """

    METAINFO = dict(classes=("face",))

    def __init__(self, data_root: str, img_suffix: str = ".jpg", box_expand: float = 0.0, **kwargs) -> None:
        self.img_suffix = img_suffix
        self.box_expand = float(box_expand)
        kwargs.setdefault("ann_file", "")
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = self.data_prefix.get("img") or self.data_root
        mats = sorted(glob.glob(osp.join(folder, "*.mat")))
        if not mats:
            raise BadSampleError("no .mat files found", path=folder)
        data_list = []
        for index, mat_path in enumerate(mats):
            img_path = osp.splitext(mat_path)[0] + self.img_suffix
            if not osp.isfile(img_path):
                raise BadSampleError(f"sample {index}: image not found: {img_path}", path=mat_path)
            try:
                record = read_aflw2000_mat(mat_path)
            except BadSampleError as err:
                raise BadSampleError(f"sample {index}: {err}") from None
            pts = record["landmarks68"]
            lo, hi = pts.min(0), pts.max(0)
            pad = (hi - lo) * self.box_expand
            box = np.concatenate([lo - pad, hi + pad])[None].astype(np.float32)
            data_list.append(
                dict(
                    img_path=img_path,
                    img_id=index,
                    gt_bboxes=box,
                    gt_landmarks=five_from_68(pts)[None].astype(np.float32),
                    gt_landmarks_valid=np.ones(1, bool),
                    gt_poses=record["pose"][None],
                )
            )
        return data_list
