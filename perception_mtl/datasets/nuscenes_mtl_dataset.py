"""nuScenes for multi-task BEV models: detection boxes, map raster and occupancy from one info file."""

from __future__ import annotations

import os.path as osp
import warnings

from mmdet3d.datasets import NuScenesDataset

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.datasets.transforms.load_multi_view_images import NUSCENES_CAMERAS
from perception_mtl.registry import DATASETS

DEFAULT_DATA_PREFIX = dict(
    pts="samples/LIDAR_TOP", sweeps="sweeps/LIDAR_TOP", **{c: f"samples/{c}" for c in NUSCENES_CAMERAS}
)
REQUIRED_INFO_KEYS = ("token", "lidar_points", "ego2global")


@DATASETS.register_module()
class NuScenesMTLDataset(NuScenesDataset):
    """mmdet3d's NuScenesDataset (v2 infos) extended for detection + map + occupancy.

    Info records may carry, beside mmdet3d's keys, ``map_location``, ``scene_token``,
    ``scene_name`` and ``occ_path`` (relative to ``data_root``); infos written by mmdet3d's own
    converter load too (they just lack map and occupancy references).

    Bad input never passes silently: a broken info file raises naming the file; a sample whose
    files are missing, truncated or hold NaNs raises ``BadSampleError`` naming the file and sample
    token. With ``skip_bad_samples=True`` a training set instead warns, counts the sample in
    ``self.num_skipped`` and draws another one (evaluation still raises: skipping would change
    the benchmark).

    Args:
        data_root: dataset root (the nuScenes folder).
        ann_file: info file, relative to ``data_root`` or absolute.
        skip_bad_samples: see above.
        data_prefix: folders of the LiDAR, sweeps and cameras under ``data_root``.
        **kwargs: NuScenesDataset's arguments (pipeline, modality, test_mode, ...).
    """

    def __init__(
        self,
        data_root: str,
        ann_file: str,
        skip_bad_samples: bool = False,
        data_prefix: dict | None = None,
        modality: dict | None = None,
        **kwargs,
    ) -> None:
        self.skip_bad_samples = skip_bad_samples
        self.num_skipped = 0
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=dict(DEFAULT_DATA_PREFIX, **(data_prefix or {})),
            modality=modality or dict(use_camera=True, use_lidar=True),
            **kwargs,
        )

    def load_data_list(self) -> list[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f"info file not found: {self.ann_file}")
        try:
            return super().load_data_list()
        except BadSampleError:
            raise
        except Exception as err:  # pickle, format or schema errors: say which file
            raise ValueError(f"broken info file {self.ann_file}: {type(err).__name__}: {err}") from err

    def parse_data_info(self, info: dict) -> dict | list[dict]:
        missing = [k for k in REQUIRED_INFO_KEYS if k not in info]
        if missing:
            raise BadSampleError(f"info record lacks {missing}", self.ann_file, info.get("token"))
        for j, instance in enumerate(info.get("instances") or []):
            for key in ("bbox_label_3d", "bbox_label"):
                label = instance.get(key, -1)
                if label not in self.label_mapping:  # mmdet3d would fail with a bare KeyError
                    classes = self.METAINFO["classes"]
                    raise BadSampleError(
                        f"instance {j} has {key} {label}, outside the class list (0..{len(classes) - 1}: "
                        f"{', '.join(classes)}; -1 = ignore)",
                        self.ann_file,
                        info.get("token"),
                    )
        if info.get("occ_path"):
            info["occ_path"] = osp.join(self.data_root or "", info["occ_path"])
        return super().parse_data_info(info)

    def prepare_data(self, index: int) -> dict | None:
        try:
            return super().prepare_data(index)
        except BadSampleError as err:
            if not self.skip_bad_samples or self.test_mode:
                raise
            self.num_skipped += 1
            warnings.warn(f"skipping bad sample ({self.num_skipped} so far): {err}", stacklevel=2)
            return None
