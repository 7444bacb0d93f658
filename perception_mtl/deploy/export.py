"""``tools/export_onnx.py``: export a config's model at its export boundaries, with a manifest.

For :class:`MultiTaskBEVModel` the graphs are those of :mod:`perception_mtl.deploy.bev_graphs`
(camera encoder, LiDAR encoder, fuser + decoder + the requested heads); other models (MOS, UGCL,
M3ViT) are one graph each, exported from their ``mode='tensor'`` forward. Every graph goes through
``onnx.checker`` and the TensorRT 10 op check (:mod:`perception_mtl.deploy.tensorrt_ops`).

``manifest.json`` beside the graphs records, per graph, the file, the inputs and outputs (names,
shapes with symbolic dims as strings, dtypes) and the TensorRT check; and for the whole export the
config (path and the sha256 of its model section, which the runner checks), the checkpoint and its
sha256, the tasks, the opset and the BEV-pool plan settings (and the rig for ``fixed_rig``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import os.path as osp
import warnings
from collections.abc import Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from .bev_graphs import HEAD_EXTRA_INPUTS, BEVHeadsGraph, CameraEncoderGraph, LidarEncoderGraph
from .bev_pool_plan import PoolPlan, build_pool_plan
from .tensorrt_ops import TENSORRT10_SOURCE, check_graph

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "perception_mtl.onnx/1"
CALIB_FIELDS = ("cam2img", "lidar2cam", "img_aug", "lidar_aug")


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def model_config_hash(cfg: Config) -> str:
    """sha256 of the config's ``model`` section as canonical JSON: what the graphs were built from
    (data paths and schedules may differ between the exporting and the evaluating config)."""
    text = json.dumps(Config(dict(model=cfg.model)).to_dict()["model"], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _onnx_type_name(elem_type: int) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name


def graph_io(proto) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of an ONNX graph: ``{'name', 'shape', 'dtype'}``; symbolic dims are strings."""
    initializers = {init.name for init in proto.graph.initializer}

    def describe(value) -> dict:
        tensor = value.type.tensor_type
        shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in tensor.shape.dim]
        return {"name": value.name, "shape": shape, "dtype": _onnx_type_name(tensor.elem_type)}

    inputs = [describe(v) for v in proto.graph.input if v.name not in initializers]
    return inputs, [describe(v) for v in proto.graph.output]


def export_graph(
    module: torch.nn.Module,
    args: tuple,
    path: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict,
    opset: int,
) -> dict:
    """Exports ``module(*args)`` (TorchScript exporter) to ``path``, runs ``onnx.checker`` and the
    TensorRT 10 check; returns the manifest entry of the graph."""
    import onnx

    print_log(f"exporting {osp.basename(path)} ...", logger="current")  # tracing a BEV graph takes a while
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            path,
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    inputs, outputs = graph_io(proto)
    violations = [str(v) for v in check_graph(proto)]
    return {
        "file": osp.basename(path),
        "inputs": inputs,
        "outputs": outputs,
        "op_types": sorted({node.op_type for node in proto.graph.node}),
        "tensorrt10": {"ok": not violations, "violations": violations},
    }


def load_model(cfg: Config, checkpoint: str) -> torch.nn.Module:
    """The config's model with the checkpoint's weights (strict), in eval mode on the CPU."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from perception_mtl.registry import MODELS

    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    model = MODELS.build(copy.deepcopy(cfg.model))  # builders (mmdet3d's CenterHead) edit their cfg in place
    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {checkpoint} holds no state dict")
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return model.eval()


def sample_batches(cfg: Config, indices: Sequence[int], batch_size: int = 1) -> list[dict]:
    """``pseudo_collate`` batches of the config's test set (the samples at ``indices``)."""
    from perception_mtl.registry import DATASETS

    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if len(dataset) == 0:
        raise ValueError("the config's test set is empty; export needs one real sample for shapes")
    indices = [i % len(dataset) for i in indices]
    return [
        pseudo_collate([dataset[i] for i in indices[s : s + batch_size]]) for s in range(0, len(indices), batch_size)
    ]


# ---------------------------------------------------------------------- the multi-task BEV model
def camera_pool_plan(
    model, calib, image_hw: tuple[int, int], feat_hw: tuple[int, int], run: int, levels: int
) -> PoolPlan:
    """The BEV-pool plan of one sample's rig (``calib`` of batch 1), from the model's own pool indices."""
    vt = model.encoders["camera"]["view_transform"]
    index = vt.pool_index(calib, feat_hw, image_hw)
    num_z, num_y, num_x = vt.grid
    return build_pool_plan(index, num_z * num_y * num_x, run=run, num_levels=levels)


def camera_feat_hw(model, img: torch.Tensor) -> tuple[int, int]:
    """(fH, fW) of the camera features entering the view transform, for images like ``img``."""
    parts = model.encoders["camera"]
    with torch.no_grad():
        feats = parts["neck"](parts["backbone"](img[:1, :1].flatten(0, 1)))
    feat = feats[0] if isinstance(feats, (list, tuple)) else feats
    return tuple(int(s) for s in feat.shape[-2:])


def export_bev_model(
    model,
    data: dict,
    out_dir: str,
    tasks: Sequence[str],
    opset: int = 17,
    fixed_rig: bool = False,
    pool_run: int = 16,
    pool_levels: int = 2,
) -> dict:
    """Exports the camera encoder, LiDAR encoder and the fuser + decoder + heads graph.

    Args:
        model: a :class:`MultiTaskBEVModel` in eval mode.
        data: one preprocessed batch (``model.data_preprocessor(batch)``), for shapes and the rig.
        out_dir: where the ``.onnx`` files go.
        tasks: heads to include (a subset of ``model.tasks``).
        opset: ONNX opset.
        fixed_rig: bake the first sample's BEV-pool plan into the camera graph.
        pool_run, pool_levels: :func:`build_pool_plan` settings.

    Returns:
        The manifest's ``graphs`` and BEV fields (``feat_hw``, ``pool_plan``, ``rig``...).
    """
    from perception_mtl.models.moe.moe_utils import moe_layers, set_moe_dispatch

    if any(True for _ in moe_layers(model)):  # a task-routed MoE decoder: its fixed-shape exportable path
        set_moe_dispatch(model, "gather")
    inputs, samples = data["inputs"], data["data_samples"]
    graphs, extra = {}, {"modalities": list(model.modalities)}
    feats = {}
    if "camera" in model.modalities:
        img, calib = inputs["img"], inputs["calib"]
        image_hw = tuple(int(s) for s in img.shape[-2:])
        feat_hw = camera_feat_hw(model, img)
        plan = camera_pool_plan(model, calib[0], image_hw, feat_hw, pool_run, pool_levels)
        graph = CameraEncoderGraph(model, plan.num_points, plan if fixed_rig else None).eval()
        names = ["img"] if fixed_rig else ["img", *PoolPlan.input_names(len(plan.levels))]
        args = (img[:1],) if fixed_rig else (img[:1], *plan.tensors())
        dynamic = {"img": {0: "batch"}, "camera_bev": {0: "batch"}}
        if not fixed_rig:
            dynamic.update({name: {0: f"{name}_rows", 1: f"{name}_width"} for name in names[1:-1]})
        graphs["camera_encoder"] = export_graph(
            graph, args, osp.join(out_dir, "camera_encoder.onnx"), names, ["camera_bev"], dynamic, opset
        )
        extra.update(image_hw=list(image_hw), feat_hw=list(feat_hw), fixed_rig=fixed_rig)
        extra["pool_plan"] = {"run": pool_run, "levels": pool_levels, "num_points": plan.num_points}
        if fixed_rig:
            extra["rig"] = {f: getattr(calib[0], f)[0].tolist() for f in CALIB_FIELDS}
        with torch.no_grad():
            feats["camera"] = graph(img, *([] if fixed_rig else plan.tensors()))
    if "lidar" in model.modalities:
        vox = inputs["voxels"]
        first = vox["coors"][:, 0] == 0
        args = (vox["voxels"][first], vox["num_points"][first], vox["coors"][first])
        graph = LidarEncoderGraph(model).eval()
        names = ["voxels", "num_points", "coors"]
        dynamic = {name: {0: "num_voxels"} for name in names}
        graphs["lidar_encoder"] = export_graph(
            graph, args, osp.join(out_dir, "lidar_encoder.onnx"), names, ["lidar_bev"], dynamic, opset
        )
        with torch.no_grad():
            feats["lidar"] = graph(*args)
        if "camera" in feats:
            feats["camera"] = feats["camera"][:1]
    heads = BEVHeadsGraph(model, tasks).eval()
    head_args = [feats[m][:1] for m in model.modalities]
    for task in tasks:
        if "lidar2ego" in HEAD_EXTRA_INPUTS.get(task, ()):
            head_args.append(model.heads[task].batch_lidar2ego(samples[:1], head_args[0]))
    in_names = [f"{m}_bev" for m in model.modalities] + heads.extra_input_names()
    out_names = heads.output_names(*head_args)
    dynamic = {name: {0: "batch"} for name in in_names + out_names}
    graphs["bev_heads"] = export_graph(
        heads, tuple(head_args), osp.join(out_dir, "bev_heads.onnx"), in_names, out_names, dynamic, opset
    )
    extra["graphs"] = graphs
    return extra


# ---------------------------------------------------------------------- image models
class TensorForward(torch.nn.Module):
    """An image model's ``forward(inputs, None, mode='tensor')`` as a graph: one input, the raw outputs
    flattened (a dict by key order, nested dicts / sequences depth first)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def flatten(out, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
        if isinstance(out, torch.Tensor):
            return [(prefix or "output", out)]
        if isinstance(out, dict):
            return [
                item for key in out for item in TensorForward.flatten(out[key], f"{prefix}.{key}" if prefix else key)
            ]
        if isinstance(out, (list, tuple)):
            return [
                item
                for i, v in enumerate(out)
                for item in TensorForward.flatten(v, f"{prefix}.{i}" if prefix else str(i))
            ]
        raise TypeError(f"mode='tensor' output of type {type(out).__name__} cannot be a graph output")

    def named_outputs(self, inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        return self.flatten(self.model(inputs, None, mode="tensor"))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(value for _, value in self.named_outputs(inputs))


def export_image_model(model, data: dict, out_dir: str, name: str = "model", opset: int = 17) -> dict:
    """One graph of an image model (MOS, UGCL, M3ViT): preprocessed ``inputs`` (B, ...) -> the raw
    ``mode='tensor'`` outputs, batch dynamic. MoE layers take their exportable fixed-shape dispatch."""
    from perception_mtl.models.moe.moe_utils import moe_layers, set_moe_dispatch

    inputs = data["inputs"]
    if isinstance(inputs, (list, tuple)) and all(isinstance(x, torch.Tensor) for x in inputs):
        inputs = torch.stack(list(inputs))
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name}: expected the preprocessed inputs as one tensor, got {type(inputs).__name__}")
    if any(True for _ in moe_layers(model)):
        set_moe_dispatch(model, "gather")
    wrapper = TensorForward(model).eval()
    with torch.no_grad():
        out_names = [n for n, _ in wrapper.named_outputs(inputs[:1])]
    dynamic = {n: {0: "batch"} for n in ["inputs", *out_names]}
    path = osp.join(out_dir, f"{name}.onnx")
    entry = export_graph(wrapper, (inputs[:1],), path, ["inputs"], out_names, dynamic, opset)
    return {"graphs": {name: entry}}


# ---------------------------------------------------------------------- entry point
def sparse_task_model(model, task: str):
    """``extract_task_model(model, task)`` (every expert ``task`` can route to, so its outputs equal the
    full model's), with a clear error for a model without MoE layers."""
    from perception_mtl.models.moe import extract_task_model, moe_layers

    if not moe_layers(model):
        raise ValueError(f"--sparse {task}: {type(model).__name__} of this config has no MoE layers to extract")
    return extract_task_model(model, task).eval()


def write_manifest(
    out_dir: str,
    model_name: str,
    cfg: Config,
    config: str | None,
    checkpoint: str | None,
    tasks: Sequence[str],
    opset: int,
    body: dict,
) -> dict:
    """Writes ``out_dir/manifest.json`` from an exporter's ``body`` (``graphs`` and model fields); returns it."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "model": model_name,
        "config": {"path": osp.abspath(config) if config else None, "model_sha256": model_config_hash(cfg)},
        "checkpoint": {
            "path": osp.abspath(checkpoint) if checkpoint else None,
            "sha256": sha256_file(checkpoint) if checkpoint else None,
        },
        "tasks": list(tasks),
        "opset": opset,
        "torch": torch.__version__,
        "tensorrt10_op_source": TENSORRT10_SOURCE,
        **body,
    }
    with open(osp.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def export(
    config: str,
    checkpoint: str,
    out_dir: str,
    tasks: Sequence[str] | None = None,
    opset: int = 17,
    fixed_rig: bool = False,
    cfg_options: dict | None = None,
    strict_tensorrt: bool = True,
    pool_run: int = 16,
    pool_levels: int = 2,
    sparse: str | None = None,
) -> dict:
    """Exports the config's model with the checkpoint's weights to ``out_dir``; writes and returns the manifest.

    ``sparse`` exports the single-task model that ``extract_task_model`` cuts from an MoE model (that
    task's gates and experts only; outputs identical to the full model's for the task).

    Raises:
        ValueError: unknown tasks, ``sparse`` on a model without MoE layers, or (``strict_tensorrt``) a
            graph TensorRT 10 cannot parse.
    """
    for path, what in ((config, "config"), (checkpoint, "checkpoint")):
        if not osp.isfile(path):
            raise FileNotFoundError(f"{what} not found: {path}")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = load_model(cfg, checkpoint)
    os.makedirs(out_dir, exist_ok=True)
    batch = sample_batches(cfg, [0])[0]
    data = model.data_preprocessor(batch, False)
    kind = type(model).__name__
    if sparse is not None:
        model = sparse_task_model(model, sparse)
        if tasks and tuple(tasks) != (sparse,):
            raise ValueError(f"--sparse {sparse} exports that task alone; --tasks {list(tasks)} contradicts it")
        tasks = (sparse,) if kind == "MultiTaskBEVModel" else None
    if kind == "MultiTaskBEVModel":
        tasks = tuple(tasks or model.tasks)
        unknown = [t for t in tasks if t not in model.tasks]
        if unknown:
            raise ValueError(f"--tasks: {unknown} not in the model's tasks {list(model.tasks)}")
        body = export_bev_model(model, data, out_dir, tasks, opset, fixed_rig, pool_run, pool_levels)
    else:
        if fixed_rig or tasks:
            raise ValueError(f"--fixed-rig / --tasks apply to MultiTaskBEVModel, not {kind}")
        tasks = tuple(getattr(model, "tasks", ()) or ())
        body = export_image_model(model, data, out_dir, "model", opset)
    if sparse is not None:
        body["sparse_task"] = sparse
    manifest = write_manifest(out_dir, kind, cfg, config, checkpoint, tasks, opset, body)
    bad = {name: g["tensorrt10"]["violations"] for name, g in manifest["graphs"].items() if not g["tensorrt10"]["ok"]}
    if bad and strict_tensorrt:
        raise ValueError(
            f"graphs TensorRT 10 cannot parse without plugins: {bad} (pass --no-tensorrt-check to keep them)"
        )
    return manifest
