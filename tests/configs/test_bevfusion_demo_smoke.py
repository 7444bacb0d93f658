"""CPU smoke test of the fused demo config on the synthetic nuScenes-format data (slow).

A few iterations through the real pipeline (dataset, augmentations, voxelisation, model, optimiser)
on a tiny training subset: losses are finite and fall; then mini_val is evaluated by nuscenes-devkit.
"""

import json
import pathlib

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from perception_mtl.testing import config_path, on_data_root

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fused_demo_trains_and_evaluates(tmp_path, synthetic_root):
    DATA = pathlib.Path(synthetic_root)  # the session's tiny generated dataset (tests/conftest.py)
    cfg = Config.fromfile(str(config_path("bevfusion_fusion_demo.py")))
    cfg.work_dir = str(tmp_path)
    pasting = [t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "mmdet3d.ObjectSample"]
    assert pasting, "the fused demo pastes database objects"
    on_data_root(cfg, str(DATA))  # the session data, with its own object database (written by create_data)
    cfg.train_dataloader.dataset.indices = 2  # the same two samples every epoch
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_epochs = 8
    cfg.train_cfg.val_interval = 100
    cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=100)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = next(tmp_path.glob("*/vis_data/scalars.json"))
    losses = [json.loads(line)["loss"] for line in scalars.read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 8 and all(v == v and abs(v) < 1e6 for v in losses)  # finite
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    metrics = runner.test()
    assert 0.0 <= metrics["nuscenes_det/mAP"] <= 1.0 and "nuscenes_det/car_AP" in metrics
