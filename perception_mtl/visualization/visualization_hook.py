"""A validation hook that writes pictures of the first few validation samples every epoch."""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Sequence

import cv2
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from perception_mtl.registry import HOOKS

from .sample_visualizer import SampleVisualizer, unbatch


@HOOKS.register_module()
class VisualizationHook(Hook):
    """Draws the first ``max_samples`` validation samples with the model's predictions (the same pictures as
    ``tools/visualize.py``) and writes them at the end of each validation epoch to
    ``<work_dir>/<out_dir>/epoch_<E>/<index>_<picture>.png`` (E: training epochs done, 0 for a validation
    run alone). Only the main process draws; other ranks skip.

    Use from a config: ``custom_hooks = [dict(type='VisualizationHook', max_samples=4)]``.

    Args:
        max_samples: samples drawn per validation epoch (the first ones the loader yields).
        interval: draw every ``interval``-th validation epoch.
        out_dir: folder under the work dir.
        score_thr: predictions below it are not drawn (default 0.3 boxes, 0.5 faces).
        occ_height: ego-frame height (metres) of the occupancy slice.
        scale: integer image upscaling (default 2 cameras and faces, 3 stereo pairs).
    """

    priority = "LOW"

    def __init__(
        self,
        max_samples: int = 4,
        interval: int = 1,
        out_dir: str = "vis",
        score_thr: float | None = None,
        occ_height: float = 0.4,
        scale: int | None = None,
    ) -> None:
        if max_samples < 1 or interval < 1:
            raise ValueError(f"VisualizationHook: max_samples and interval must be >= 1, got {max_samples}, {interval}")
        self.max_samples = int(max_samples)
        self.interval = int(interval)
        self.out_dir = out_dir
        self.score_thr, self.occ_height, self.scale = score_thr, occ_height, scale
        self._drawer: SampleVisualizer | None = None
        self._pictures: list[tuple[int, dict]] = []
        self._seen = 0
        self._validations = 0

    def before_val_epoch(self, runner) -> None:
        self._pictures, self._seen = [], 0
        self._validations += 1

    def _active(self) -> bool:
        return is_main_process() and self._validations % self.interval == 0 and self._seen < self.max_samples

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict | None = None, outputs: Sequence | None = None):
        if not self._active() or data_batch is None or outputs is None:
            return
        if self._drawer is None:
            self._drawer = SampleVisualizer.from_config(runner.cfg, "val", self.score_thr, self.occ_height, self.scale)
        name = osp.basename(runner.cfg.filename or "") or runner.experiment_name
        for inputs, sample in unbatch(data_batch, outputs):
            if self._seen >= self.max_samples:
                break
            token = sample.metainfo.get("token", sample.metainfo.get("sample_idx", self._seen))
            header = f"{name} | epoch {runner.epoch} val #{self._seen} ({token}) | GT + predictions"
            self._pictures.append((self._seen, self._drawer.draw(inputs, sample, header)))
            self._seen += 1

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not self._pictures:
            return
        folder = osp.join(runner.work_dir, self.out_dir, f"epoch_{runner.epoch}")
        os.makedirs(folder, exist_ok=True)
        for index, pictures in self._pictures:
            for picture_name, picture in pictures.items():
                path = osp.join(folder, f"{index:04d}_{picture_name}.png")
                if not cv2.imwrite(path, picture):
                    raise OSError(f"VisualizationHook: could not write {path}")
        runner.logger.info(f"VisualizationHook: {len(self._pictures)} samples drawn into {folder}")
        self._pictures = []
