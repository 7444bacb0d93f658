"""``--verify``: PyTorch against ONNX Runtime on real samples of the config's test set.

For a :class:`MultiTaskBEVModel` export each graph is compared on the same inputs (the camera graph
against ``model.camera_encoder`` with its own ``index_add`` pooling, so the pooling plan's error is
included), and the whole chain (ONNX Runtime graphs fed by each other) against the PyTorch
``mode='tensor'`` outputs. Image-model exports compare their one graph with ``mode='tensor'``.
"""

from __future__ import annotations

import os.path as osp
import sys

import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import track_iter_progress

from .bev_graphs import HEAD_EXTRA_INPUTS, BEVHeadsGraph
from .export import TensorForward, load_model, sample_batches
from .ort_runner import GraphSession, ORTBEVRunner, load_manifest


def _max_abs(a, b) -> tuple[float, float]:
    """(max |a - b|, max |a|) with ``a`` the PyTorch reference."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"verify: shapes differ, PyTorch {a.shape} vs ONNX Runtime {b.shape}")
    if not a.size:
        return 0.0, 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.abs(a - b).max()), float(np.abs(a).max())


@torch.no_grad()
def verify_bev(model, runner: ORTBEVRunner, data: dict) -> dict[str, tuple[float, float]]:
    """(max abs difference, max abs PyTorch value) per ``'<graph>/<output>'`` for one preprocessed batch."""
    inputs, samples = data["inputs"], data["data_samples"]
    diffs, ref_feats = {}, {}
    if "camera" in model.modalities:
        ref_feats["camera"] = model.camera_encoder(inputs["img"], inputs["calib"])[0]
        diffs["camera_encoder/camera_bev"] = _max_abs(
            ref_feats["camera"], runner.camera_bev(inputs["img"], inputs["calib"])
        )
    if "lidar" in model.modalities:
        vox = inputs["voxels"]
        ref_feats["lidar"] = model.lidar_encoder(vox["voxels"], vox["num_points"], vox["coors"], vox["batch_size"])
        diffs["lidar_encoder/lidar_bev"] = _max_abs(ref_feats["lidar"], runner.lidar_bev(vox))
    heads = BEVHeadsGraph(model, runner.tasks)
    args = [ref_feats[m] for m in model.modalities]
    for task in runner.tasks:
        if "lidar2ego" in HEAD_EXTRA_INPUTS.get(task, ()):
            args.append(model.heads[task].batch_lidar2ego(samples, args[0]))
    ref_outs = dict(zip(heads.output_names(*args), heads(*args)))
    ort_outs = runner.head_outputs({m: f.numpy() for m, f in ref_feats.items()}, samples)
    chained = runner.raw_outputs(inputs, samples)
    for name, ref in ref_outs.items():
        diffs[f"bev_heads/{name}"] = _max_abs(ref, ort_outs[name])
        diffs[f"chain/{name}"] = _max_abs(ref, chained[name])
    return diffs


@torch.no_grad()
def verify_single_graph(model, onnx_dir: str, manifest: dict, data: dict) -> dict[str, tuple[float, float]]:
    """An image model's one graph against its PyTorch ``mode='tensor'`` forward (its default MoE dispatch)."""
    ((name, spec),) = manifest["graphs"].items()
    inputs = data["inputs"]
    if isinstance(inputs, (list, tuple)):
        inputs = torch.stack(list(inputs))
    session = GraphSession(name, osp.join(onnx_dir, spec["file"]), spec)
    refs = dict(TensorForward(model).named_outputs(inputs))
    got = session({"inputs": inputs.numpy()})
    # A --sparse export holds one task's outputs; the full model's others have no counterpart.
    return {f"{name}/{key}": _max_abs(value, got[key]) for key, value in refs.items() if key in got}


def verify(
    config: str, checkpoint: str, onnx_dir: str, num_samples: int = 3, cfg_options: dict | None = None
) -> dict[str, dict[str, float]]:
    """Per ``'<graph>/<output>'``: ``{'max_abs_diff', 'max_abs_ref'}`` over the first ``num_samples`` test
    samples (batch 1 each); ``max_abs_ref`` is the largest PyTorch value, the scale of the difference."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = load_model(cfg, checkpoint)
    manifest = load_manifest(onnx_dir)
    runner = ORTBEVRunner(model, onnx_dir, cfg) if manifest["model"] == "MultiTaskBEVModel" else None
    worst: dict[str, dict[str, float]] = {}
    for batch in track_iter_progress(sample_batches(cfg, range(num_samples)), file=sys.stdout):
        data = model.data_preprocessor(batch, False)
        diffs = verify_bev(model, runner, data) if runner else verify_single_graph(model, onnx_dir, manifest, data)
        for key, (diff, scale) in diffs.items():
            entry = worst.setdefault(key, {"max_abs_diff": 0.0, "max_abs_ref": 0.0})
            entry["max_abs_diff"] = max(entry["max_abs_diff"], diff)
            entry["max_abs_ref"] = max(entry["max_abs_ref"], scale)
    return worst


def format_diffs(diffs: dict[str, dict[str, float]], tolerance: float | None = None) -> str:
    """A text table of :func:`verify`'s result (flags differences over ``tolerance``)."""
    width = max([len(k) for k in diffs] + [12])
    lines = [f"{'graph/output':<{width}}  max abs diff  max |PyTorch|"]
    for key, entry in diffs.items():
        diff = entry["max_abs_diff"]
        flag = "" if tolerance is None or diff <= tolerance else f"  > {tolerance:g}"
        lines.append(f"{key:<{width}}  {diff:12.3e}  {entry['max_abs_ref']:13.3e}{flag}")
    return "\n".join(lines)
