"""Faces in the RetinaFace / WIDER FACE ``label.txt`` format, optionally extended with head pose."""

from __future__ import annotations

import os.path as osp

import numpy as np
from mmengine.dataset import BaseDataset

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import DATASETS

FACE_LINE_LENGTHS = {4: "box", 20: "box + landmarks + score", 23: "box + landmarks + score + pose"}


def empty_face_arrays() -> dict:
    return dict(
        gt_bboxes=np.zeros((0, 4), np.float32),
        gt_landmarks=np.zeros((0, 5, 2), np.float32),
        gt_landmarks_valid=np.zeros((0,), bool),
        gt_poses=np.zeros((0, 3), np.float32),
    )


def parse_label_txt(path: str) -> list[dict]:
    """Parses a RetinaFace ``label.txt``.

    A ``# <image path>`` line starts each image; each following line is one face with 4 values
    (``x y w h``, RetinaFace's val file), 20 values (+ five ``x y flag`` landmark triples and the
    blur/score column, RetinaFace's train file) or 23 values (+ ``yaw pitch roll`` degrees, our
    extension). Landmarks whose first x is negative (RetinaFace writes -1) are invalid; a face
    without pose gets NaN angles.

    Returns:
        One dict per image: ``img_path`` (as written), ``line`` (1-based line of the ``#``), and the
        arrays of :func:`empty_face_arrays` (boxes as xyxy).

    Raises:
        BadSampleError: naming the file and line, for a face line before any image line, a line
            with a number of values not in (4, 20, 23), a value that is not a finite number, or a
            negative width/height.
    """
    if not osp.isfile(path):
        raise BadSampleError("label file not found", path=path)
    images: list[dict] = []
    faces: list[list[float]] = []

    def close() -> None:
        if images:
            images[-1].update(_face_arrays(faces))
        faces.clear()

    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                close()
                name = line[1:].strip()
                if not name:
                    raise BadSampleError(f"line {number}: '#' without an image path", path=path)
                images.append(dict(img_path=name, line=number))
                continue
            if not images:
                raise BadSampleError(f"line {number}: face line before any '# <image>' line", path=path)
            try:
                values = [float(v) for v in line.split()]
            except ValueError as err:
                raise BadSampleError(f"line {number}: not a number ({err}): {line[:80]!r}", path=path) from None
            if len(values) not in FACE_LINE_LENGTHS:
                raise BadSampleError(
                    f"line {number}: {len(values)} values, expected one of "
                    f"{', '.join(f'{n} ({k})' for n, k in FACE_LINE_LENGTHS.items())}",
                    path=path,
                )
            if not np.all(np.isfinite(values)):
                raise BadSampleError(f"line {number}: non-finite value", path=path)
            if values[2] < 0 or values[3] < 0:
                raise BadSampleError(f"line {number}: negative box size w={values[2]}, h={values[3]}", path=path)
            faces.append(values)
    close()
    return images


def _face_arrays(faces: list[list[float]]) -> dict:
    if not faces:
        return empty_face_arrays()
    n = len(faces)
    boxes = np.array([f[:4] for f in faces], np.float32)
    boxes[:, 2:] += boxes[:, :2]
    landmarks = np.full((n, 5, 2), -1.0, np.float32)
    poses = np.full((n, 3), np.nan, np.float32)
    for i, f in enumerate(faces):
        if len(f) >= 20:
            landmarks[i] = np.array(f[4:19], np.float32).reshape(5, 3)[:, :2]
        if len(f) == 23:
            poses[i] = f[20:23]
    valid = landmarks[:, 0, 0] >= 0
    return dict(gt_bboxes=boxes, gt_landmarks=landmarks, gt_landmarks_valid=valid, gt_poses=poses)


@DATASETS.register_module()
class FaceDataset(BaseDataset):
    """Face detection + 5 landmarks + head pose from a RetinaFace ``label.txt`` (see :func:`parse_label_txt`).

    Each data info holds ``img_path`` (``data_root`` / ``data_prefix['img']`` / the ``#`` path),
    ``img_id``, ``label_line`` and ``gt_bboxes`` (N, 4) xyxy, ``gt_landmarks`` (N, 5, 2),
    ``gt_landmarks_valid`` (N,), ``gt_poses`` (N, 3) yaw/pitch/roll degrees (NaN = unknown).
    Faces smaller than ``min_size`` pixels (width or height) are dropped (WIDER has zero-size
    boxes). Every image file is checked when the annotations load: a missing one raises
    :class:`BadSampleError` naming the label file, its line and the image path.

    For the synthetic data, ``python tools/create_data.py faces --out-dir data/synthetic_faces``
    writes ``train/label.txt`` and ``val/label.txt`` with their images.

    Args:
        ann_file: the ``label.txt`` (relative to ``data_root`` or absolute).
        data_root: dataset root.
        data_prefix: ``dict(img=...)``, folder the ``#`` paths are relative to (default: the
            label file's folder).
        min_size: smallest face side kept, in pixels.
        check_images: check that every image exists when loading.
        **kwargs: ``BaseDataset`` arguments (pipeline, test_mode, indices, ...).
    """

    METAINFO = dict(classes=("face",))

    def __init__(
        self,
        ann_file: str,
        data_root: str = "",
        data_prefix: dict | None = None,
        min_size: float = 1.0,
        check_images: bool = True,
        **kwargs,
    ) -> None:
        self.min_size = float(min_size)
        self.check_images = check_images
        self.img_root_is_label_dir = not (data_prefix or {}).get("img")
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix or dict(img=""), **kwargs)

    def load_data_list(self) -> list[dict]:
        if not osp.isfile(self.ann_file):
            raise BadSampleError(
                "label file not found (synthetic data: python tools/create_data.py faces --out-dir <root>)",
                path=self.ann_file,
            )
        img_root = osp.dirname(self.ann_file) if self.img_root_is_label_dir else self.data_prefix["img"]
        data_list = []
        for img_id, record in enumerate(parse_label_txt(self.ann_file)):
            img_path = osp.join(img_root, record.pop("img_path"))
            line = record.pop("line")
            if self.check_images and not osp.isfile(img_path):
                raise BadSampleError(f"line {line}: image not found: {img_path}", path=self.ann_file)
            sizes = record["gt_bboxes"][:, 2:] - record["gt_bboxes"][:, :2]
            keep = (sizes >= self.min_size).all(1)
            info = {k: v[keep] for k, v in record.items()}
            info.update(img_path=img_path, img_id=img_id, label_line=line)
            data_list.append(info)
        return data_list
