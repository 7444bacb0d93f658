"""Sparse single-task extraction: identical outputs, fewer parameters, pruning with coverage, ONNX export."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.deploy import export_onnx
from perception_mtl.models.moe import extract_task_model, measure_expert_usage, moe_layers, set_moe_dispatch
from perception_mtl.registry import MODELS

TASKS = ("seg", "depth", "edge")


def _model(router: dict, task_experts: dict | None = None):
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    router = dict(router, task_experts=task_experts)
    model = MODELS.build(
        dict(
            type="MultiTaskDensePredictor",
            backbone=dict(
                type="ViTMoE",
                img_size=32,
                patch_size=8,
                embed_dim=32,
                depth=4,
                num_heads=2,
                moe_cfg=dict(num_experts=8, top_k=2, router=router),
                out_indices=(1, 3),
                feature_scales=(2.0, 1.0),
            ),
            heads=dict(
                seg=dict(type="DenseSemSegHead", num_classes=4, channels=8, num_convs=1),
                depth=dict(type="DenseDepthHead", channels=8, num_convs=1),
                edge=dict(type="DenseEdgeHead", channels=8, num_convs=1),
            ),
        )
    )
    with torch.no_grad():  # sharpen the gates so tasks route differently, as after training
        for _, layer in moe_layers(model):
            for name, p in layer.router.named_parameters():
                if name.endswith("proj.weight"):
                    p.normal_()
    return model.eval()


ROUTERS = [dict(type="PerTaskRouter"), dict(type="TaskConditionedRouter", task_embed_dim=8)]


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r["type"])
def test_extracted_model_equals_full_model(router):
    model = _model(router)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = {t: model.task_forward(img, t) for t in TASKS}
        for task in TASKS:
            single = extract_task_model(model, task)
            assert single.tasks == (task,) and list(single.heads) == [task]
            assert torch.equal(single.task_forward(img, task), full[task])
            assert torch.equal(single(img, mode="tensor")[task], full[task])
    # The full model is untouched.
    assert model.tasks == TASKS and all(len(layer.expert_ids) == 8 for _, layer in moe_layers(model))


def test_task_expert_partition_keeps_only_the_tasks_experts():
    partition = dict(seg=[0, 1, 2, 3], depth=[2, 3, 4, 5], edge=[4, 5, 6, 7])
    model = _model(dict(type="PerTaskRouter"), partition)
    img = torch.randn(2, 3, 32, 32)
    single = extract_task_model(model, "depth")
    for name, layer in moe_layers(single):
        assert layer.expert_ids.tolist() == [2, 3, 4, 5]
        assert single.task_extraction["layers"][name] == dict(experts=[2, 3, 4, 5], candidates=4, coverage=None)
    with torch.no_grad():
        assert torch.equal(single.task_forward(img, "depth"), model.task_forward(img, "depth"))
    n_full = sum(p.numel() for p in model.parameters())
    n_single = sum(p.numel() for p in single.parameters())
    expert = sum(p[0].numel() for p in moe_layers(model)[0][1].experts.parameters())
    heads = sum(p.numel() for t in ("seg", "edge") for p in model.heads[t].parameters())
    gates = sum(
        p.numel() for _, layer in moe_layers(model) for t in ("seg", "edge") for p in layer.router.gates[t].parameters()
    )
    assert n_full - n_single == 2 * 4 * expert + heads + gates  # 2 MoE layers x 4 dropped experts


def test_pruning_by_measured_coverage():
    model = _model(dict(type="PerTaskRouter"))
    calib = [torch.randn(4, 3, 32, 32) for _ in range(2)]
    usage = measure_expert_usage(model, "seg", lambda m: [m.task_forward(x, "seg") for x in calib])
    assert set(usage) == {name for name, _ in moe_layers(model)}
    for counts in usage.values():
        assert counts.sum() == 2 * 4 * 16 * 2  # images x tokens x top-k
    # Full coverage on the calibration data: every used expert kept, outputs identical there.
    exact = extract_task_model(model, "seg", coverage=1.0, usage=usage)
    with torch.no_grad():
        for x in calib:
            assert torch.equal(exact.task_forward(x, "seg"), model.task_forward(x, "seg"))
    # Partial coverage: fewer experts, the stated share of routed slots kept.
    pruned = extract_task_model(model, "seg", coverage=0.6, usage=usage)
    for name, layer in moe_layers(pruned):
        report = pruned.task_extraction["layers"][name]
        counts = usage[name]
        kept = report["experts"]
        assert layer.expert_ids.tolist() == kept and 2 <= len(kept) < 8
        assert report["coverage"] == pytest.approx(float(counts[kept].sum() / counts.sum()))
        assert report["coverage"] >= 0.6
        without_smallest = sorted(kept, key=lambda e: counts[e])[1:]
        assert len(kept) == 2 or counts[without_smallest].sum() / counts.sum() < 0.6  # minimal set
    with torch.no_grad():
        out = pruned.task_forward(calib[0], "seg")
        assert out.shape == (4, 4, 32, 32) and torch.isfinite(out).all()
        idx = moe_layers(pruned)[0][1].router(torch.randn(64, 32)).indices
        assert set(idx.unique().tolist()) <= set(pruned.task_extraction["layers"][moe_layers(pruned)[0][0]]["experts"])
    with pytest.raises(ValueError, match="usage"):
        extract_task_model(model, "seg", coverage=0.9)
    with pytest.raises(ValueError, match="coverage"):
        extract_task_model(model, "seg", coverage=1.5, usage=usage)
    with pytest.raises(KeyError, match="'pose'"):
        extract_task_model(model, "pose")


class _TaskForward(torch.nn.Module):
    """Binds the task argument of the model's own export boundary, ``task_forward``."""

    def __init__(self, model, task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, img):
        return self.model.task_forward(img, self.task)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r["type"])
def test_extracted_model_exports_to_onnx_and_matches_onnxruntime(router):
    model = _model(router, dict(seg=[0, 1, 2, 3, 4], depth=[3, 4, 5, 6, 7]))
    img = torch.randn(2, 3, 32, 32)
    single = extract_task_model(model, "depth")
    with torch.no_grad():
        reference = model.task_forward(img, "depth")  # full model, expert-bucketed dispatch
        set_moe_dispatch(single, "gather")  # the exportable fixed-shape path
        exported_path = single.task_forward(img, "depth")
    torch.testing.assert_close(exported_path, reference, rtol=1e-5, atol=1e-5)
    session, ops = export_onnx(_TaskForward(single, "depth"), (img,))
    assert {"TopK", "Gather", "Einsum"} <= ops
    assert not ops & {"NonZero", "Compress", "Unique", "Loop", "If"}, ops  # no data-dependent shapes
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: img.numpy()})
    np.testing.assert_allclose(onnx_out, reference.numpy(), rtol=1e-5, atol=1e-5)
