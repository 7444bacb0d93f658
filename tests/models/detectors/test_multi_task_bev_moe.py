"""MultiTaskBEVModel with the task-routed MoE BEV decoder: the decoder runs per task on the fused map,
each task's balance loss joins its losses, FULLER calibrates at the fuser output, and a single-task copy
(``extract_task_model``) reproduces the full model's outputs for its task with fewer parameters."""

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.models.moe import extract_task_model, measure_expert_usage, moe_layers
from perception_mtl.registry import MODELS, OPTIM_WRAPPERS
from perception_mtl.testing.bev import moe_model_cfg, random_batch

TASKS = ("det", "map")


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")


def _model_and_batch(seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(moe_model_cfg(TASKS))
    model.init_weights()
    batch = random_batch(batch=2, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for sample in batch["data_samples"]:
        sample.gt_bev_seg = torch.randint(0, 2, (6, 20, 20), generator=gen)
    return model, model.data_preprocessor(batch, training=True)


def test_decoder_runs_per_task_on_the_fused_map_and_each_task_gets_its_balance_loss():
    model, data = _model_and_batch()
    model.train()
    shared = model.extract_shared(data["inputs"], data["data_samples"])
    assert shared.feat.shape == (2, 24, 32, 32)  # the fused (here LiDAR) map, not a decoded one
    losses = model(**data, mode="loss")
    assert {"det.loss_moe_balance", "map.loss_moe_balance"} <= set(losses)
    assert all(layer.aux_loss is None for _, layer in moe_layers(model))  # popped into the task losses
    # Each task's balance loss comes from that task's gates only.
    losses["map.loss_moe_balance"].backward()
    for _, layer in moe_layers(model):
        gates = layer.router.gates
        assert gates["map"].proj.weight.grad.abs().sum() > 0
        assert gates["det"].proj.weight.grad is None or not gates["det"].proj.weight.grad.any()


def test_tasks_route_differently_and_the_decoder_needs_a_task():
    model, data = _model_and_batch()
    model.eval()
    fused = model.extract_shared(data["inputs"]).feat
    with torch.no_grad():
        det, map_ = model.bev_decode(fused, "det"), model.bev_decode(fused, "map")
    assert det.shape == map_.shape == (2, 32, 32, 32) and not torch.allclose(det, map_)
    with pytest.raises(ValueError, match="needs task="):
        model.bev_decode(fused)


def test_fuller_calibrates_at_the_fuser_output_and_every_part_learns():
    model, data = _model_and_batch()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type="GradBalanceOptimWrapper", optimizer=optimizer, tasks=TASKS, balancer=dict(type="FULLER", intra=None))
    )
    with wrapper.optim_context(model):
        losses = model(**data, mode="loss")
    loss, _ = model.parse_losses(losses)
    wrapper.backward(loss)
    assert "grad_balance/weight.det" in wrapper.last_stats and "grad_balance/weight.map" in wrapper.last_stats
    decoder = model.decoder["backbone"]
    for part in (decoder.backbone, decoder.neck, model.encoders["lidar"]):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    for _, layer in moe_layers(model):
        for task in TASKS:
            assert layer.router.gates[task].proj.weight.grad.abs().sum() > 0


def _flat(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        return [t for k in sorted(outputs) for t in _flat(outputs[k])]
    return [t for o in outputs for t in _flat(o)]


@pytest.mark.parametrize("task", TASKS)
def test_extracted_single_task_model_gives_the_full_models_outputs(task):
    model, data = _model_and_batch()
    model.eval()
    small = extract_task_model(model, task)
    assert small.tasks == (task,) and list(small.heads) == [task]
    full_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in small.parameters()) < full_params
    with torch.no_grad():
        want = _flat(model(data["inputs"], mode="tensor")[task])
        got = _flat(small(data["inputs"], mode="tensor")[task])
    assert len(got) == len(want)
    assert max(float((a - b).abs().max()) for a, b in zip(got, want)) <= 1e-5
    assert list(model.heads) == list(TASKS)  # the full model is untouched


def test_coverage_pruned_extraction_reports_its_measured_coverage():
    model, data = _model_and_batch()
    usage = measure_expert_usage(model, "map", lambda m: m(data["inputs"], mode="tensor"))
    small = extract_task_model(model, "map", coverage=0.6, usage=usage)
    layers = small.task_extraction["layers"]
    assert set(layers) == set(usage)
    for report in layers.values():
        assert 0.6 <= report["coverage"] <= 1.0 and 2 <= len(report["experts"]) <= report["candidates"]
    with torch.no_grad():
        out = small(data["inputs"], mode="tensor")["map"]
    assert torch.isfinite(out).all()


def test_a_neck_beside_the_moe_decoder_is_a_config_error():
    cfg = moe_model_cfg(TASKS)
    cfg["decoder"]["neck"] = dict(type="mmdet3d.SECONDFPN", in_channels=[16, 32], out_channels=[16, 16])
    with pytest.raises(ValueError, match="decoder.neck"):
        MODELS.build(cfg)


def test_per_task_balance_loss_weights():
    def balance(weight):
        torch.manual_seed(0)
        cfg = moe_model_cfg(TASKS)
        cfg["moe_loss_weight"] = weight
        model = MODELS.build(cfg).train()
        data = model.data_preprocessor(random_batch(batch=2, seed=0), training=True)
        for sample in data["data_samples"]:
            sample.gt_bev_seg = torch.zeros(6, 20, 20, dtype=torch.long)
        torch.manual_seed(1)  # the gates' noise
        losses = model(**data, mode="loss")
        return losses["det.loss_moe_balance"], losses["map.loss_moe_balance"]

    det, map_ = balance(0.01)
    det2, map2 = balance({"det": 0.01, "map": 0.001})
    torch.testing.assert_close(det2, det)
    torch.testing.assert_close(map2, map_ / 10)
    with pytest.raises(ValueError, match="for each of"):
        MODELS.build({**moe_model_cfg(TASKS), "moe_loss_weight": {"det": 0.01}})
