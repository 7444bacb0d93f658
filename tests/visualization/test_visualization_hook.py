"""VisualizationHook in a real (tiny) training run: pictures of the first validation samples appear in the work
dir when the validation epoch ends, not before."""

from __future__ import annotations

import os

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from perception_mtl.testing import config_path
from perception_mtl.testing.camera_calibration import tiny_cvgl_root
from perception_mtl.testing.camera_calibration import tiny_model_cfg as tiny_ugcl_cfg


class _Probe(Hook):
    """Records which picture folders existed after each validation iteration."""

    def __init__(self) -> None:
        self.seen_during_epoch: list[list[str]] = []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        folder = os.path.join(runner.work_dir, "vis")
        self.seen_during_epoch.append(sorted(os.listdir(folder)) if os.path.isdir(folder) else [])


def test_hook_writes_pictures_at_the_end_of_each_validation_epoch(tmp_path):
    cfg = Config.fromfile(str(config_path("ugcl_calib.py")))
    cfg.model = tiny_ugcl_cfg()
    for split in ("train", "val", "test"):
        cfg[f"{split}_dataloader"].dataset.data_root = tiny_cvgl_root()
    cfg.train_dataloader.batch_size = 3
    cfg.val_dataloader.batch_size = 2  # 3 test pairs: two validation iterations
    cfg.train_cfg.max_epochs = 2
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=100)
    cfg.custom_hooks = [dict(type="VisualizationHook", max_samples=2, scale=2)]
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe)
    runner.train()
    for epoch in (1, 2):
        folder = tmp_path / "vis" / f"epoch_{epoch}"
        assert sorted(p.name for p in folder.iterdir()) == ["0000_stereo.png", "0001_stereo.png"]
        picture = cv2.imread(str(folder / "0000_stereo.png"))
        # The true horizon (green) and the prediction's (red) both crossed the pair.
        assert (picture == np.array([0, 200, 0], np.uint8)).all(-1).any()
        assert (picture == np.array([0, 0, 255], np.uint8)).all(-1).any()
    # Nothing was written while an epoch's iterations ran: only earlier epochs' folders existed then.
    assert probe.seen_during_epoch == [[], [], ["epoch_1"], ["epoch_1"]]
