"""ONNX Runtime inference of an export (``manifest.json`` + graphs), returning the PyTorch model's data samples.

:class:`ORTBEVRunner` chains the graphs of :mod:`perception_mtl.deploy.bev_graphs` with the steps that
stay outside them, all taken from the PyTorch model itself (not copies): the data preprocessor
(image normalisation, mmcv voxelisation), the view transform's pool indices (turned into the pooling
plan when the rig is not fixed), the occupancy head's ``lidar2ego`` per sample, and the heads'
decoders (``CenterDetHead.predict_by_outputs``: box coder + NMS; ``predict_by_feat`` of the map and
occupancy heads). :class:`ORTModel` wraps it as an MMEngine model so ``Runner.test`` evaluates it
with the config's evaluator (``tools/test.py --backend onnxruntime``).

Errors name the graph and input: a missing graph file, a manifest exported from another model config,
an input of the wrong shape or dtype, or a sample whose rig differs from a ``--fixed-rig`` export.
"""

from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import Tensor

from .bev_graphs import HEAD_EXTRA_INPUTS, unflatten_head_outputs
from .bev_pool_plan import PoolPlan, build_pool_plan
from .export import CALIB_FIELDS, MANIFEST, MANIFEST_FORMAT, model_config_hash

_NP_DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "float64": np.float64, "uint8": np.uint8}


class ManifestError(ValueError):
    """The export directory does not fit the model or the inputs (names the graph and input)."""


def load_manifest(onnx_dir: str) -> dict:
    """Reads ``onnx_dir/manifest.json`` and checks its format and that every graph file exists."""
    path = osp.join(onnx_dir, MANIFEST)
    if not osp.isfile(path):
        raise ManifestError(f"no {MANIFEST} in {onnx_dir}; export with tools/export_onnx.py first")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    for name, graph in manifest["graphs"].items():
        file = osp.join(onnx_dir, graph["file"])
        if not osp.isfile(file):
            raise ManifestError(f"graph '{name}': file {file} is missing (listed in {path})")
    return manifest


def check_manifest_config(manifest: dict, cfg, onnx_dir: str) -> None:
    """Raises :class:`ManifestError` when the graphs were exported from another model config."""
    expected = manifest["config"]["model_sha256"]
    actual = model_config_hash(cfg)
    if expected != actual:
        raise ManifestError(
            f"{osp.join(onnx_dir, MANIFEST)} was exported from {manifest['config']['path']} (model config sha256 "
            f"{expected[:12]}...), which builds a different model than this config (sha256 {actual[:12]}...); "
            "export this config again"
        )


class GraphSession:
    """One graph's ONNX Runtime session; checks every feed against the manifest's inputs."""

    def __init__(self, name: str, path: str, spec: dict, providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        self.name, self.spec = name, spec
        options = ort.SessionOptions()
        options.log_severity_level = 3
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit():  # share the machine as the PyTorch side does
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(path, options, providers=list(providers or ["CPUExecutionProvider"]))
        self.output_names = [o["name"] for o in spec["outputs"]]

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds cast to the graph's dtypes; :class:`ManifestError` on a missing, extra or misshaped input."""
        names = [i["name"] for i in self.spec["inputs"]]
        missing, extra = [n for n in names if n not in feeds], [n for n in feeds if n not in names]
        if missing or extra:
            raise ManifestError(f"graph '{self.name}': inputs {names} expected, missing {missing}, unexpected {extra}")
        out = {}
        for item in self.spec["inputs"]:
            name, shape = item["name"], item["shape"]
            value = np.asarray(feeds[name])
            ok = value.ndim == len(shape) and all(isinstance(d, str) or d == s for d, s in zip(shape, value.shape))
            if not ok:
                raise ManifestError(
                    f"graph '{self.name}' input '{name}': expected shape {shape} (strings are free dims), "
                    f"got {list(value.shape)}"
                )
            dtype = np.dtype(_NP_DTYPES.get(item["dtype"], value.dtype))
            if np.issubdtype(value.dtype, np.floating) and not np.issubdtype(dtype, np.floating):
                raise ManifestError(
                    f"graph '{self.name}' input '{name}': expected {item['dtype']}, got {value.dtype} (not cast: "
                    "it would truncate)"
                )
            out[name] = value.astype(dtype, copy=False)
        return out

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, self.check_feeds(feeds))))


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class ORTBEVRunner:
    """Runs an exported :class:`MultiTaskBEVModel` with ONNX Runtime.

    Args:
        model: the PyTorch model built from the same config (its weights are not used: only the data
            preprocessor, the view-transform geometry and the heads' decoders are).
        onnx_dir: the export directory (``manifest.json`` + graphs).
        cfg: the config, to check the manifest was exported from the same model config (None skips).
        providers: ONNX Runtime execution providers (default CPU).
    """

    def __init__(self, model, onnx_dir: str, cfg=None, providers: Sequence[str] | None = None) -> None:
        self.model = model.eval()
        self.onnx_dir = onnx_dir
        self.manifest = load_manifest(onnx_dir)
        if self.manifest["model"] != type(model).__name__:
            raise ManifestError(f"{onnx_dir}: manifest of a {self.manifest['model']}, not a {type(model).__name__}")
        if cfg is not None:
            check_manifest_config(self.manifest, cfg, onnx_dir)
        self.tasks = tuple(self.manifest["tasks"])
        self.sessions = {
            name: GraphSession(name, osp.join(onnx_dir, g["file"]), g, providers)
            for name, g in self.manifest["graphs"].items()
        }
        for name in [f"{m}_encoder" for m in self.manifest["modalities"]] + ["bev_heads"]:
            if name not in self.sessions:
                raise ManifestError(f"{onnx_dir}: graph '{name}' is not in the manifest")
        outputs = [o["name"] for o in self.manifest["graphs"]["bev_heads"]["outputs"]]
        self.det_layout = self._det_layout(outputs)
        self._plan_cache: tuple[Tensor, PoolPlan] | None = None

    @staticmethod
    def _det_layout(outputs: Sequence[str]) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for name in outputs:
            if name.startswith("det."):
                _, group, key = name.split(".", 2)
                groups.setdefault(int(group), []).append(key)
        return [groups[g] for g in sorted(groups)]

    # ------------------------------------------------------------------ per graph
    def check_rig(self, calib) -> None:
        """Raises :class:`ManifestError` when a sample's calibration is not the fixed rig of the export."""
        rig = self.manifest.get("rig")
        for b in range(calib.batch_size):
            for field in CALIB_FIELDS:
                have = getattr(calib, field)[b].detach().cpu().double().numpy()
                want = np.asarray(rig[field], np.float64)
                if have.shape != want.shape or not np.allclose(have, want, atol=1e-5, rtol=1e-6):
                    diff = np.abs(have - want).max() if have.shape == want.shape else f"shape {have.shape}"
                    raise ManifestError(
                        f"graph 'camera_encoder' was exported for a fixed rig (--fixed-rig); sample {b} of the batch "
                        f"has another {field} (max difference {diff}); export without --fixed-rig for varying rigs"
                    )

    def pool_plan(self, calib) -> PoolPlan:
        """The pooling plan of one sample's rig (``calib`` of batch 1), cached while the pool indices repeat."""
        vt = self.model.encoders["camera"]["view_transform"]
        index = vt.pool_index(calib, tuple(self.manifest["feat_hw"]), tuple(self.manifest["image_hw"]))
        if self._plan_cache is not None and torch.equal(self._plan_cache[0], index):
            return self._plan_cache[1]
        settings = self.manifest["pool_plan"]
        num_z, num_y, num_x = vt.grid
        plan = build_pool_plan(index, num_z * num_y * num_x, run=settings["run"], num_levels=settings["levels"])
        self._plan_cache = (index, plan)
        return plan

    def camera_bev(self, img: Tensor, calib) -> np.ndarray:
        """(B, N, 3, H, W) normalised images -> (B, C, Y, X) camera BEV map."""
        session = self.sessions["camera_encoder"]
        if self.manifest.get("fixed_rig"):
            self.check_rig(calib)
            return session({"img": _numpy(img)})["camera_bev"]
        outs = []
        for b in range(img.shape[0]):
            plan = self.pool_plan(calib[b])
            feeds = {"img": _numpy(img[b : b + 1])}
            feeds.update({n: _numpy(t) for n, t in zip(PoolPlan.input_names(len(plan.levels)), plan.tensors())})
            outs.append(session(feeds)["camera_bev"])
        return np.concatenate(outs)

    def lidar_bev(self, voxels: dict) -> np.ndarray:
        """The data preprocessor's voxels of B samples -> (B, C, Y, X) LiDAR BEV map (one graph run per sample)."""
        session, outs = self.sessions["lidar_encoder"], []
        coors = voxels["coors"]
        for b in range(int(voxels["batch_size"])):
            mine = coors[:, 0] == b  # selection outside the graph (the graph takes one sample's voxels)
            sample_coors = coors[mine].clone()
            sample_coors[:, 0] = 0
            feeds = {
                "voxels": _numpy(voxels["voxels"][mine]),
                "num_points": _numpy(voxels["num_points"][mine]),
                "coors": _numpy(sample_coors),
            }
            outs.append(session(feeds)["lidar_bev"])
        return np.concatenate(outs)

    def head_outputs(self, feats: dict[str, np.ndarray], data_samples: Sequence) -> dict[str, np.ndarray]:
        """Modality BEV maps -> named raw head outputs (the ``bev_heads`` graph)."""
        feeds = {f"{m}_bev": feats[m] for m in self.manifest["modalities"]}
        like = torch.from_numpy(next(iter(feats.values())))
        for task in self.tasks:
            if "lidar2ego" in HEAD_EXTRA_INPUTS.get(task, ()):
                feeds["lidar2ego"] = _numpy(self.model.heads[task].batch_lidar2ego(data_samples, like))
        return self.sessions["bev_heads"](feeds)

    # ------------------------------------------------------------------ whole model
    def modality_feats(self, inputs: dict) -> dict[str, np.ndarray]:
        feats = {}
        for modality in self.manifest["modalities"]:
            if modality == "camera":
                for key in ("img", "calib"):
                    if key not in inputs:
                        raise KeyError(f"graph 'camera_encoder' needs inputs['{key}'] (got {sorted(inputs)})")
                feats["camera"] = self.camera_bev(inputs["img"], inputs["calib"])
            else:
                if "voxels" not in inputs:
                    raise KeyError("graph 'lidar_encoder' needs voxels; set data_preprocessor.voxelize")
                feats["lidar"] = self.lidar_bev(inputs["voxels"])
        return feats

    def raw_outputs(self, inputs: dict, data_samples: Sequence) -> dict[str, Tensor]:
        """Named raw head outputs for a preprocessed batch (as torch tensors)."""
        named = self.head_outputs(self.modality_feats(inputs), data_samples)
        return {k: torch.from_numpy(v) for k, v in named.items()}

    @torch.no_grad()
    def predict(self, inputs: dict, data_samples: Sequence) -> list:
        """The data samples with each task's predictions, decoded by the PyTorch heads."""
        named = self.raw_outputs(inputs, data_samples)
        for task in self.tasks:
            head = self.model.heads[task]
            outputs = unflatten_head_outputs(task, named, self.det_layout)
            if hasattr(head, "predict_by_outputs"):
                data_samples = head.predict_by_outputs(outputs, data_samples)
            else:
                data_samples = head.predict_by_feat(outputs, data_samples)
        return list(data_samples)


class ORTImageRunner:
    """Runs an exported image model's one graph and decodes with the PyTorch model's own heads.

    Supported: ``MultiTaskDensePredictor`` (M³ViT; each task head's ``predict_by_feat``), ``MOSFaceNet``
    (``FacePoseHead.predict_by_feat``; the priors depend only on the feature-map sizes, taken once per
    input size from a PyTorch pass of the backbone over zeros) and ``UGCLStereoNet`` without test-time
    augmentation (``CameraCalibrationHead.predict_by_feat``).
    """

    def __init__(self, model, onnx_dir: str, cfg=None, providers: Sequence[str] | None = None) -> None:
        self.model = model.eval()
        self.kind = type(model).__name__
        self.manifest = load_manifest(onnx_dir)
        if self.manifest["model"] != self.kind:
            raise ManifestError(f"{onnx_dir}: manifest of a {self.manifest['model']}, not a {self.kind}")
        if cfg is not None:
            check_manifest_config(self.manifest, cfg, onnx_dir)
        if self.kind == "UGCLStereoNet" and (model.test_flip or model.test_shifts):
            raise NotImplementedError(
                "--backend onnxruntime: UGCLStereoNet with test_flip / test_shifts averages several views; "
                "set model.test_flip=False model.test_shifts=() (the graph is one view)"
            )
        if self.kind not in ("MultiTaskDensePredictor", "MOSFaceNet", "UGCLStereoNet"):
            raise NotImplementedError(f"--backend onnxruntime does not decode {self.kind} outputs yet")
        ((name, spec),) = self.manifest["graphs"].items()
        self.session = GraphSession(name, osp.join(onnx_dir, spec["file"]), spec, providers)
        self._priors: dict[tuple[int, int], Tensor] = {}

    def mos_priors(self, img_size: tuple[int, int]) -> Tensor:
        if img_size not in self._priors:
            with torch.no_grad():
                feats = self.model.extract_feats(torch.zeros(1, 3, *img_size))
            self._priors[img_size] = self.model.head.priors(feats, img_size)
        return self._priors[img_size]

    @torch.no_grad()
    def predict(self, inputs, data_samples: Sequence) -> list:
        x = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
        outs = {k: torch.from_numpy(v) for k, v in self.session({"inputs": _numpy(x)}).items()}
        if self.kind == "MultiTaskDensePredictor":
            for task, value in outs.items():
                data_samples = self.model.heads[task].predict_by_feat(value, data_samples) or data_samples
        elif self.kind == "MOSFaceNet":
            priors = self.mos_priors(tuple(int(s) for s in x.shape[-2:]))
            data_samples = self.model.head.predict_by_feat(outs, priors, data_samples)
        else:
            (raw,) = outs.values()
            data_samples = self.model.head.predict_by_feat(raw, data_samples)
        return list(data_samples)


class ORTModel(BaseModel):
    """An MMEngine model running an export with ONNX Runtime (``mode='predict'`` only), for ``Runner.test``.

    Args:
        model: the PyTorch model of the config (its data preprocessor and decoders are used).
        onnx_dir: the export directory.
        cfg: the config, checked against the manifest.
    """

    def __init__(self, model, onnx_dir: str, cfg=None, providers: Sequence[str] | None = None) -> None:
        super().__init__(data_preprocessor=model.data_preprocessor)
        runner_cls = ORTBEVRunner if type(model).__name__ == "MultiTaskBEVModel" else ORTImageRunner
        self.runner = runner_cls(model, onnx_dir, cfg, providers)
        self.pytorch_model = model

    def forward(self, inputs: dict, data_samples: list | None = None, mode: str = "predict"):
        if mode != "predict":
            raise ValueError(f"ORTModel: only mode='predict' runs through ONNX Runtime, got {mode!r}")
        if data_samples is None:
            if not isinstance(self.runner, ORTImageRunner):
                raise ValueError("ORTModel: mode='predict' needs data_samples (metainfo for decoding)")
            from mmengine.structures import BaseDataElement

            data_samples = [BaseDataElement() for _ in range(len(inputs))]
        return self.runner.predict(inputs, data_samples)
