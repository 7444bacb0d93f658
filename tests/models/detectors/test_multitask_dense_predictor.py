"""The multi-task dense image model: trunk modes, losses, predictions, config errors."""

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, MODELS

HEADS = dict(
    seg=dict(type="DenseSemSegHead", num_classes=5, channels=8, num_convs=1),
    depth=dict(type="DenseDepthHead", channels=8, num_convs=1),
    edge=dict(type="DenseEdgeHead", channels=8, num_convs=1),
)


_MOE = dict(num_experts=4, top_k=2)


def _cfg(moe_cfg=_MOE, **kwargs):
    cfg = dict(
        type="MultiTaskDensePredictor",
        data_preprocessor=dict(type="ImgDataPreprocessor", mean=[127.5] * 3, std=[127.5] * 3),
        backbone=dict(
            type="ViTMoE",
            img_size=32,
            patch_size=8,
            embed_dim=16,
            depth=2,
            num_heads=2,
            moe_cfg=moe_cfg,
            out_indices=(0, 1),
            feature_scales=(2.0, 1.0),
        ),
        heads=HEADS,
    )
    cfg.update(kwargs)
    return cfg


def _build(cfg):
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _batch():
    dataset = DATASETS.build(dict(type="SyntheticDenseScenes", num_samples=2, img_size=32))
    return pseudo_collate([dataset[0], dataset[1]])


def _count_backbone_calls(model):
    calls = []
    model.backbone.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(kwargs.get("task")), with_kwargs=True
    )
    return calls


def test_per_task_mode_runs_one_routed_backbone_pass_per_task():
    model = _build(_cfg())
    calls = _count_backbone_calls(model)
    losses = model(**model.data_preprocessor(_batch(), training=True), mode="loss")
    assert calls == ["seg", "depth", "edge"]
    assert set(losses) == {"seg.loss_ce", "depth.loss_log_l1", "edge.loss_bce", "moe.loss_balance"}
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(_batch(), training=False), mode="tensor")
    assert {k: tuple(v.shape) for k, v in out.items()} == dict(
        seg=(2, 5, 32, 32), depth=(2, 1, 32, 32), edge=(2, 1, 32, 32)
    )
    for task in out:
        torch.testing.assert_close(model.task_forward(model.data_preprocessor(_batch())["inputs"], task), out[task])


def test_shared_mode_runs_the_backbone_once():
    dense = _build(_cfg(moe_cfg=None, trunk_mode="shared"))
    calls = _count_backbone_calls(dense)
    losses = dense(**dense.data_preprocessor(_batch(), training=True), mode="loss")
    assert calls == [None] and "moe.loss_balance" not in losses
    agnostic = _build(
        _cfg(moe_cfg=dict(num_experts=4, top_k=2, router=dict(type="NoisyTopKGate")), trunk_mode="shared")
    )
    calls = _count_backbone_calls(agnostic)
    losses = agnostic(**agnostic.data_preprocessor(_batch(), training=True), mode="loss")
    assert calls == [None] and "moe.loss_balance" in losses
    with pytest.raises(ValueError, match="trunk_mode='shared'"):
        _build(_cfg(trunk_mode="shared"))
    # A dense backbone in per-task mode also runs once: its features would be the same for every task.
    per_task_dense = _build(_cfg(moe_cfg=None))
    calls = _count_backbone_calls(per_task_dense)
    per_task_dense(**per_task_dense.data_preprocessor(_batch(), training=True), mode="loss")
    assert calls == [None]


def test_predict_fills_every_task_field():
    model = _build(_cfg()).eval()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(_batch(), training=False), mode="predict")
    s = samples[0]
    assert s.pred_sem_seg.dtype == torch.int64 and s.pred_sem_seg.shape == (32, 32)
    assert s.pred_depth.shape == (32, 32) and (s.pred_depth >= 0.1).all() and (s.pred_depth <= 80).all()
    assert s.pred_edge.shape == (32, 32) and ((s.pred_edge >= 0) & (s.pred_edge <= 1)).all()
    assert s.gt_sem_seg.shape == (32, 32)  # targets stay for the metrics


def test_loss_weights_scale_each_task():
    cfg = _cfg(moe_cfg=None, trunk_mode="shared")
    base = _build(cfg)
    weighted = _build(dict(cfg, loss_weights=dict(depth=2.0)))
    data = base.data_preprocessor(_batch(), training=True)
    a, b = base(**data, mode="loss"), weighted(**data, mode="loss")
    torch.testing.assert_close(b["depth.loss_log_l1"], 2 * a["depth.loss_log_l1"])
    torch.testing.assert_close(b["seg.loss_ce"], a["seg.loss_ce"])


def test_keep_tasks_and_config_errors():
    model = _build(_cfg())
    model.keep_tasks(("edge",))
    assert model.tasks == ("edge",) and list(model.heads) == ["edge"]
    with pytest.raises(KeyError, match="unknown task"):
        model.task_forward(torch.randn(1, 3, 32, 32), "seg")
    with pytest.raises(ValueError, match="trunk_mode"):
        _build(_cfg(trunk_mode="both"))
    with pytest.raises(ValueError, match="loss_weights"):
        _build(_cfg(loss_weights=dict(pose=1.0)))
    with pytest.raises(ValueError, match="no entry in heads"):
        _build(_cfg(tasks=("seg", "normals")))
    with pytest.raises(ValueError, match="mode"):
        _build(_cfg())(torch.randn(1, 3, 32, 32), mode="export")
