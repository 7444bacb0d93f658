"""Every configs/bevfusion/bevfusion_* builds its model and dataloaders' datasets resolve; the full-size pillar
variant runs a forward pass on CPU (slow)."""

import pathlib

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception_mtl.registry import MODELS
from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "bevfusion").glob("bevfusion_*.py"))
EXPECTED = {
    "bevfusion_fusion_demo.py": ["camera", "lidar"],
    "bevfusion_camera_demo.py": ["camera"],
    "bevfusion_lidar_demo.py": ["lidar"],
    "bevfusion_swint-lss_voxel0075_convfuser_centerhead_8xb4-20e_nus.py": ["camera", "lidar"],
    "bevfusion_swint-lss_pillar03_convfuser_centerhead_8xb4-20e_nus.py": ["camera", "lidar"],
    "bevfusion_swint-lss_centerhead_8xb4-20e_nus.py": ["camera"],
    "bevfusion_voxel0075_centerhead_8xb4-20e_nus.py": ["lidar"],
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_model(path):
    init_default_scope("perception_mtl")
    cfg = Config.fromfile(str(path))
    model = MODELS.build(cfg.model)
    assert model.modalities == EXPECTED[path.name] and model.tasks == ("det",)
    assert cfg.val_evaluator.type == "NuScenesDetectionMetric"


@pytest.mark.slow
def test_full_size_pillar_config_runs_forward_on_cpu(monkeypatch):
    from perception_mtl.testing import bev

    init_default_scope("perception_mtl")
    cfg = Config.fromfile(str(config_path("bevfusion_swint-lss_pillar03_convfuser_centerhead_8xb4-20e_nus.py")))
    model = MODELS.build(cfg.model).eval()
    monkeypatch.setattr(bev, "IMAGE_HW", (256, 704))
    batch = bev.random_batch(1, num_points=20000)
    batch["inputs"]["calib"][0].cam2img[..., :2, :] *= 8  # the ring rig was made for 32x88 images
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        shared = model.extract_shared(data["inputs"])
        out = model.heads["det"].predict(shared.feat, data["data_samples"])
    assert shared.feat.shape == (1, 512, 180, 180)
    assert shared.modality_feats["camera"].shape == (1, 80, 180, 180)
    assert shared.modality_feats["lidar"].shape == (1, 256, 180, 180)
    assert out[0].pred_instances_3d.bboxes_3d.tensor.shape[1] == 9
