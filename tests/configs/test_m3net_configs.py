"""M3Net configs: each builds its model with the tasks it names; the demo trains a few steps and evaluates
all three tasks on the tiny synthetic set, and the full-size config (pillar variant on the CPU, since the
sparse voxel encoder needs CUDA) runs one training step on one synthetic sample (both slow)."""

import copy
import pathlib

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from perception_mtl.registry import MODELS
from perception_mtl.testing import REPO_ROOT, config_path, on_data_root

CONFIGS = {
    "m3net_nuscenes_demo.py": ("det", "map", "occ"),
    "m3net_ew_demo.py": ("det", "map", "occ"),
    "m3net_det_demo.py": ("det",),
    "m3net_map_demo.py": ("map",),
    "m3net_occ_demo.py": ("occ",),
    "m3net_moe_demo.py": ("det", "map", "occ"),
    "m3net_moe_swint-lss_voxel0075_mafi_8xb4-20e_nus.py": ("det", "map", "occ"),
    "m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py": ("det", "map", "occ"),
    "m3net_swint-lss_pillar03_mafi_tcs_8xb4-20e_nus.py": ("det", "map", "occ"),
}


def test_every_config_is_listed_and_the_flagship_path_exists():
    assert sorted(p.name for p in (REPO_ROOT / "configs" / "m3net").glob("*.py")) == sorted(CONFIGS)
    flagship = Config.fromfile(str(REPO_ROOT / "configs" / "m3net_nuscenes.py"))
    assert flagship.model.tasks == ("det", "map", "occ") and flagship.model.fuser.type == "MAFIFuser"
    moe = Config.fromfile(str(REPO_ROOT / "configs" / "m3net_moe_nuscenes.py"))
    assert moe.model.decoder.backbone.type == "MoEBEVDecoder" and moe.model.task_scaling is None


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_builds_its_model(name):
    init_default_scope("perception_mtl")
    cfg = Config.fromfile(str(config_path(name)))
    model = MODELS.build(cfg.model)
    assert model.tasks == CONFIGS[name] and list(model.heads) == list(CONFIGS[name])
    assert type(model.fuser).__name__ == "MAFIFuser"
    # The MoE decoder replaces per-task channel scaling as the per-task specialisation.
    assert (model.task_scaling is not None) == (len(CONFIGS[name]) > 1 and "moe" not in name)
    assert model.task_decoder == ("moe" in name)
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    assert len(evaluators) == len(CONFIGS[name])
    assert cfg.optim_wrapper.type == "GradBalanceOptimWrapper" and tuple(cfg.optim_wrapper.tasks) == CONFIGS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["m3net_nuscenes_demo.py", "m3net_moe_demo.py"])
def test_demo_trains_and_evaluates_all_three_tasks(tmp_path, synthetic_root, name):
    cfg = on_data_root(Config.fromfile(str(config_path(name))), synthetic_root)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.indices = 2
    cfg.train_cfg.max_epochs = 2
    cfg.train_cfg.val_interval = 100
    cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=100)
    runner = Runner.from_cfg(cfg)
    runner.train()
    if "moe" in name:  # routing statistics per task and layer, and each task's balance loss, are logged
        stats = pathlib.Path(runner.log_dir) / "moe_expert_stats.jsonl"
        assert stats.exists() and all(t in stats.read_text() for t in ("det", "map", "occ"))
        assert {f"train/{t}.loss_moe_balance" for t in ("det", "map", "occ")} <= set(runner.message_hub.log_scalars)
    metrics = runner.test()
    for key in ("nuscenes_det/mAP", "map/mIoU", "occ/mIoU"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, (key, metrics)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["tcs", "moe"])
def test_full_size_config_trains_one_step_on_the_cpu(synthetic_root, decoder):
    init_default_scope("perception_mtl")
    cfg = on_data_root(
        Config.fromfile(str(config_path("m3net_swint-lss_pillar03_mafi_tcs_8xb4-20e_nus.py"))), synthetic_root
    )
    if decoder == "moe":  # the full-size MoE decoder (16 experts, top 4) on the pillar variant's 180 x 180 map
        moe = Config.fromfile(str(config_path("m3net_moe_swint-lss_voxel0075_mafi_8xb4-20e_nus.py")))
        cfg.model.decoder = moe.model.decoder
        cfg.model.task_scaling = None
    from mmengine.registry import DATASETS, OPTIM_WRAPPERS

    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    wrapper_cfg.optimizer = torch.optim.AdamW(model.parameters(), lr=wrapper_cfg.optimizer.lr)
    wrapper = OPTIM_WRAPPERS.build(wrapper_cfg)
    before = [p.detach().clone() for p in model.parameters()]
    from mmengine.dataset import pseudo_collate

    log = model.train_step(pseudo_collate([dataset[0]]), wrapper)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in log.values()), log
    assert {"det.", "map.", "occ."} <= {k[:4] for k in log}
    assert (decoder == "moe") == all(f"{t}.loss_moe_balance" in log for t in ("det", "map", "occ")), sorted(log)
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > 0.9 * len(before)


def test_repo_root_is_the_checkout():
    assert (REPO_ROOT / "configs" / "m3net").is_dir() and pathlib.Path(config_path("m3net_nuscenes_demo.py")).exists()


def test_on_data_root_repoints_every_path_of_the_demo():
    cfg = on_data_root(Config.fromfile(str(config_path("m3net_nuscenes_demo.py"))), "/elsewhere/nus/")
    used = [cfg[n] for n in ("train_dataloader", "val_dataloader", "test_dataloader", "test_evaluator")]
    assert "data/synthetic_nuscenes" not in repr(used)  # no path the runner reads is left on the default root
    paste = [t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "mmdet3d.ObjectSample"]
    assert paste and paste[0]["db_sampler"]["info_path"] == "/elsewhere/nus/nuscenes_dbinfos_train.pkl"
    maps = [t for t in cfg.val_dataloader.dataset.pipeline if t["type"] == "LoadBEVMapSegmentation"]
    assert maps and maps[0]["data_root"] == "/elsewhere/nus/"
    assert all(cfg[n].num_workers == 0 for n in ("train_dataloader", "val_dataloader", "test_dataloader"))
    assert cfg.test_evaluator == cfg.val_evaluator


@pytest.mark.parametrize("name", ["m3net_nuscenes_demo.py", "m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py"])
def test_occupancy_class_names_are_the_generators(name):
    from perception_mtl.synthetic.driving.object_catalog import OCC_CLASS_NAMES

    cfg = Config.fromfile(str(config_path(name)))
    occ_metric = [ev for ev in cfg.val_evaluator if ev.type == "OccupancyMIoUMetric"]
    assert occ_metric[0].classes == list(OCC_CLASS_NAMES) == cfg.occ_classes
