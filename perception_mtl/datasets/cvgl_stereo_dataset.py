"""Stereo pairs with camera parameters in the CVGL layout (memory-mapped ``.npy`` arrays).

CVGL (the CARLA dataset of the CPL / UGCL calibration papers) stores one ``.npy`` file per field,
all with the same number of rows N, read with ``np.load(path, mmap_mode='r')``::

    fx.npy fy.npy U0.npy V0.npy disparity.npy x.npy y.npy z.npy baseline.npy pitch.npy
    xworld.npy yworld.npy zworld.npy              (N,) float parameters
    left_img.npy right_img.npy                    (N, H, W, 3) uint8 RGB images

``x, y, z`` are the translation ``t`` (tx, ty, tz) of the projection ``P = K [R | t]``. An optional
``doffs.npy`` (N,) gives each rectified pair's principal-point offset ``u0_right - u0_left`` in
pixels (Middlebury's ``doffs``; depth is ``fx b / (disparity + doffs)``); CVGL has none (0).
``xworld, yworld, zworld`` a 3D world point (our synthetic writer stores the left camera centre
in the world frame there). Our synthetic data adds ``splits/train.npy`` and ``splits/test.npy``
(int64 row indices of a fixed, shuffled split) and ``meta.json`` (units, sampling ranges and the
training split's parameter statistics). For the original CVGL files, ``ordered_train_ratio=0.7``
reproduces the papers' unshuffled split (first 70 % train, last 30 % test).
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from perception_mtl.registry import DATASETS

from .bad_sample_error import BadSampleError

CVGL_PARAM_FIELDS = (
    "fx",
    "fy",
    "U0",
    "V0",
    "disparity",
    "x",
    "y",
    "z",
    "baseline",
    "pitch",
    "xworld",
    "yworld",
    "zworld",
)
CVGL_IMAGE_FIELDS = ("left_img", "right_img")
CVGL_FIELDS = CVGL_PARAM_FIELDS + CVGL_IMAGE_FIELDS
CVGL_OPTIONAL_FIELDS = ("doffs",)
"""(N,) parameter arrays read when present (``doffs``: 0 when absent, as CVGL)."""

PARAM_NAMES = ("fx", "fy", "u0", "v0", "baseline", "disparity", "tx", "ty", "tz", "pitch")
"""Order of ``gt_calib`` / ``pred_calib``: pixels (fx .. v0, disparity), metres, pitch in radians."""
PARAM_TO_FIELD = dict(
    fx="fx",
    fy="fy",
    u0="U0",
    v0="V0",
    baseline="baseline",
    disparity="disparity",
    tx="x",
    ty="y",
    tz="z",
    pitch="pitch",
)
SPLITS = ("train", "test", "all")


def cvgl_path(root: str, field: str) -> str:
    return osp.join(root, f"{field}.npy")


def split_path(root: str, split: str) -> str:
    return osp.join(root, "splits", f"{split}.npy")


def open_cvgl_arrays(root: str, fields: Sequence[str] = CVGL_FIELDS) -> dict[str, np.ndarray]:
    """Memory-maps the CVGL arrays under ``root`` and checks they agree.

    Raises:
        BadSampleError: a file is missing or unreadable, a parameter array is not (N,), an image
            array is not (N, H, W, 3) uint8 or the two image arrays differ in shape, or the arrays
            disagree on N (the message names the shorter file and the first index it lacks).
    """
    arrays = {}
    for field in fields:
        path = cvgl_path(root, field)
        if not osp.isfile(path):
            raise BadSampleError(f"CVGL array '{field}' is missing", path=path)
        try:
            arrays[field] = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as err:
            raise BadSampleError(f"cannot read CVGL array '{field}': {err}", path=path) from err
        shape = arrays[field].shape
        if field in CVGL_IMAGE_FIELDS:
            if len(shape) != 4 or shape[-1] != 3 or arrays[field].dtype != np.uint8:
                raise BadSampleError(
                    f"expected (N, H, W, 3) uint8 images, got {shape} {arrays[field].dtype}", path=path
                )
        elif len(shape) != 1:
            raise BadSampleError(f"expected a (N,) parameter array, got shape {shape}", path=path)
    lengths = {field: len(a) for field, a in arrays.items()}
    longest = max(lengths, key=lengths.get)
    for field, n in lengths.items():
        if n != lengths[longest]:
            raise BadSampleError(
                f"has {n} rows but {cvgl_path(root, longest)} has {lengths[longest]}: index {n} is missing "
                f"(parameter and image arrays must have one row per stereo pair)",
                path=cvgl_path(root, field),
                token=str(n),
            )
    images = [arrays[f].shape for f in CVGL_IMAGE_FIELDS if f in arrays]
    if len(images) == 2 and images[0] != images[1]:
        raise BadSampleError(f"left images are {images[0]} but right images are {images[1]}", path=root)
    return arrays


@DATASETS.register_module()
class CVGLStereoDataset(Dataset):
    """Stereo pairs and their 10 calibration targets from a CVGL-layout directory.

    Each item is ``dict(inputs=(2, 3, H, W) uint8 tensor (left, right RGB), data_samples=BaseDataElement)``
    with ``gt_calib`` (10,) float32 in :data:`PARAM_NAMES` order (pitch in radians) and
    ``gt_world_point`` (3,) (``xworld, yworld, zworld``); metainfo ``sample_idx`` (row in the
    arrays), ``img_shape`` (H, W) and ``doffs`` (pixels, ``u0_right - u0_left`` of the rectified
    pair: a known property of the rig, not a target; 0.0 without ``doffs.npy``).

    Args:
        data_root: directory holding the ``.npy`` files.
        split: 'train', 'test' or 'all'.
        ordered_train_ratio: if given, split by row order (first ``ratio`` of the rows train, the
            rest test; the original CVGL protocol) instead of reading ``splits/<split>.npy``.
        num_samples: keep only the first ``num_samples`` samples of the split (None: all).
        pitch_unit: unit of ``pitch.npy``, 'rad' (our writer) or 'deg'; targets are radians.
    """

    METAINFO = dict(param_names=PARAM_NAMES)

    def __init__(
        self,
        data_root: str,
        split: str = "train",
        ordered_train_ratio: float | None = None,
        num_samples: int | None = None,
        pitch_unit: str = "rad",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"CVGLStereoDataset: split must be one of {SPLITS}, got {split!r}")
        if pitch_unit not in ("rad", "deg"):
            raise ValueError(f"CVGLStereoDataset: pitch_unit must be 'rad' or 'deg', got {pitch_unit!r}")
        if ordered_train_ratio is not None and not 0 < ordered_train_ratio < 1:
            raise ValueError(f"CVGLStereoDataset: ordered_train_ratio must be in (0, 1), got {ordered_train_ratio}")
        self.data_root = data_root
        self.split = split
        self.pitch_scale = 1.0 if pitch_unit == "rad" else float(np.pi / 180.0)
        optional = [f for f in CVGL_OPTIONAL_FIELDS if osp.isfile(cvgl_path(data_root, f))]
        self.arrays = open_cvgl_arrays(data_root, CVGL_FIELDS + tuple(optional))
        total = len(self.arrays["fx"])
        self.indices = self._split_indices(total, ordered_train_ratio)
        if num_samples is not None:
            self.indices = self.indices[:num_samples]
        self.metainfo = dict(self.METAINFO, img_shape=tuple(self.arrays["left_img"].shape[1:3]))

    def _split_indices(self, total: int, ordered_train_ratio: float | None) -> np.ndarray:
        if self.split == "all":
            return np.arange(total)
        if ordered_train_ratio is not None:
            cut = int(round(total * ordered_train_ratio))
            return np.arange(cut) if self.split == "train" else np.arange(cut, total)
        path = split_path(self.data_root, self.split)
        if not osp.isfile(path):
            raise BadSampleError(
                f"split file for '{self.split}' is missing (set ordered_train_ratio for unsplit CVGL data)", path=path
            )
        indices = np.load(path).astype(np.int64)
        bad = np.flatnonzero((indices < 0) | (indices >= total))
        if indices.ndim != 1 or len(bad):
            where = int(bad[0]) if len(bad) else 0
            raise BadSampleError(
                f"split indices must be a 1-D array of rows in [0, {total}); entry {where} is out of range",
                path=path,
                token=str(where),
            )
        return indices

    def __len__(self) -> int:
        return len(self.indices)

    def get_params(self, index: int) -> np.ndarray:
        """(10,) float64 targets of item ``index`` in :data:`PARAM_NAMES` order (pitch in radians)."""
        row = int(self.indices[index])
        params = np.array([float(self.arrays[PARAM_TO_FIELD[name]][row]) for name in PARAM_NAMES])
        params[PARAM_NAMES.index("pitch")] *= self.pitch_scale
        bad = np.flatnonzero(~np.isfinite(params))
        if len(bad):
            field = PARAM_TO_FIELD[PARAM_NAMES[bad[0]]]
            raise BadSampleError(
                f"non-finite value at index {row}", path=cvgl_path(self.data_root, field), token=str(row)
            )
        return params

    def get_doffs(self, index: int) -> float:
        """Principal-point offset ``u0_right - u0_left`` (pixels) of item ``index``; 0.0 without ``doffs.npy``."""
        if "doffs" not in self.arrays:
            return 0.0
        row = int(self.indices[index])
        doffs = float(self.arrays["doffs"][row])
        if not np.isfinite(doffs):
            raise BadSampleError(
                f"non-finite value at index {row}", path=cvgl_path(self.data_root, "doffs"), token=str(row)
            )
        return doffs

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"CVGLStereoDataset({self.split}): index {index} out of range {len(self)}")
        row = int(self.indices[index])
        params = self.get_params(index)
        left = np.asarray(self.arrays["left_img"][row])
        right = np.asarray(self.arrays["right_img"][row])
        pair = torch.from_numpy(np.ascontiguousarray(np.stack([left, right]).transpose(0, 3, 1, 2)))
        sample = BaseDataElement(
            metainfo=dict(sample_idx=row, split=self.split, img_shape=left.shape[:2], doffs=self.get_doffs(index))
        )
        sample.gt_calib = torch.from_numpy(params.astype(np.float32))
        sample.gt_world_point = torch.tensor(
            [float(self.arrays[f][row]) for f in ("xworld", "yworld", "zworld")], dtype=torch.float32
        )
        return dict(inputs=pair, data_samples=sample)
