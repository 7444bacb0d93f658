"""The multi-task, multi-modal BEV model (BEVFusion skeleton): encoders -> fuser -> decoder -> heads."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.model import BaseModel, ModuleDict
from mmengine.structures import BaseDataElement
from torch import Tensor

from perception_mtl.grad_balance import ModalityHook, SharedFeatures
from perception_mtl.models.moe.moe_utils import pop_moe_aux_loss
from perception_mtl.registry import MODELS
from perception_mtl.structures import SensorCalibration

MODALITIES = ("camera", "lidar")
CAMERA_PARTS = ("backbone", "neck", "view_transform")


@MODELS.register_module()
class MultiTaskBEVModel(BaseModel):
    """Camera and/or LiDAR -> one BEV map -> shared decoder -> one head per task.

    Stages live in named ``ModuleDict``s (DESIGN §2): ``encoders['camera']`` (``backbone``,
    ``neck``, ``view_transform``), ``encoders['lidar']`` (a LiDAR encoder over the data
    preprocessor's voxels), ``fuser`` (None for a single modality), ``decoder`` (``backbone``,
    ``neck``, e.g. mmdet3d SECOND + SECONDFPN) and ``heads[task]``. Which modalities run is set
    by which encoders are configured; which tasks run by ``tasks``.

    Export boundaries are methods: :meth:`camera_encoder`, :meth:`lidar_encoder`, :meth:`fuse`,
    :meth:`bev_decode` and :meth:`head_forward`. Gradient balancing uses
    :meth:`extract_shared` and :meth:`loss_by_shared`.

    BEV maps are (B, C, Y, X) in the (augmented) LiDAR frame, rows along y, columns along x; all
    modalities must produce the same (Y, X).

    Args:
        encoders: ``{'camera': {'backbone', 'neck', 'view_transform'}, 'lidar': cfg}``, either or both.
        decoder: ``{'backbone': cfg, 'neck': cfg}``; the neck may be None.
        heads: ``{task: head cfg}``; only the tasks in ``tasks`` are built.
        tasks: tasks to train and predict, e.g. ``('det',)``.
        fuser: fuser config; required with two modalities, not allowed with one.
        loss_scale: ``{task: factor}`` multiplying that task's losses (default 1).
        task_scaling: config of a per-task channel gate on the shared feature before each head (M3Net's
            TCS, e.g. ``dict(type='TaskChannelScaling', channels=..., hidden_channels=...)``; its
            ``tasks`` are set to this model's). None feeds every head the shared feature itself.
        init_from_stage: staged training (M3Net trains detection first, then adds map, then
            occupancy): ``dict(checkpoint=PATH, keep=('encoders', 'fuser', 'decoder', 'heads.det'))``
            loads the named parts (state-dict key prefixes) of a previous stage's checkpoint in
            :meth:`init_weights`; the rest keeps its fresh initialisation. The log lists what was
            loaded, what is new and what was dropped.
        moe_loss_weight: factor on a task-conditioned decoder's load-balancing loss, which joins each
            task's losses as ``<task>.loss_moe_balance`` (that task's gates made it); one number for every
            task, or ``{task: factor}`` for each, since tasks whose own loss gradients are small (the map's)
            would otherwise have their gates steered by the balance term alone.
        data_preprocessor: defaults to ``BEVDataPreprocessor`` without voxelisation.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        encoders: dict,
        decoder: dict,
        heads: dict,
        tasks: Sequence[str] = ("det",),
        fuser: dict | None = None,
        loss_scale: dict | None = None,
        task_scaling: dict | None = None,
        init_from_stage: dict | None = None,
        moe_loss_weight: float | dict[str, float] = 0.01,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BEVDataPreprocessor"), init_cfg=init_cfg)
        unknown = sorted(set(encoders) - set(MODALITIES))
        if unknown:
            raise ValueError(f"encoders: unknown modalities {unknown}; expected a subset of {list(MODALITIES)}")
        self.modalities = [m for m in MODALITIES if encoders.get(m)]
        if not self.modalities:
            raise ValueError("encoders: configure at least one of 'camera', 'lidar'")
        self.encoders = ModuleDict()
        if "camera" in self.modalities:
            missing = [p for p in CAMERA_PARTS if not encoders["camera"].get(p)]
            if missing:
                raise ValueError(f"encoders.camera lacks {missing}")
            self.encoders["camera"] = ModuleDict({p: MODELS.build(encoders["camera"][p]) for p in CAMERA_PARTS})
        if "lidar" in self.modalities:
            self.encoders["lidar"] = MODELS.build(encoders["lidar"])
        if len(self.modalities) > 1 and fuser is None:
            raise ValueError(f"fuser: required to combine {self.modalities} (e.g. dict(type='ConvFuser', ...))")
        if len(self.modalities) == 1 and fuser is not None:
            raise ValueError(f"fuser: set to None for a single-modality model (only {self.modalities[0]} configured)")
        self.fuser = MODELS.build(fuser) if fuser is not None else None
        self.tasks = tuple(tasks)
        if not self.tasks:
            raise ValueError("tasks: name at least one task")
        if not decoder.get("backbone"):
            raise ValueError("decoder.backbone is required")
        backbone_cfg = dict(decoder["backbone"])
        backbone_cls = MODELS.get(backbone_cfg["type"]) if isinstance(backbone_cfg["type"], str) else None
        # A task-conditioned decoder (MoEBEVDecoder) runs once per task; the fuser output is then the
        # last layer the tasks share.
        self.task_decoder = bool(getattr(backbone_cls, "task_conditioned", False))
        if self.task_decoder:
            if decoder.get("neck"):
                raise ValueError("decoder.neck: a task-conditioned decoder.backbone holds its own neck; set it to None")
            backbone_cfg["tasks"] = self.tasks
        self.decoder = ModuleDict({"backbone": MODELS.build(backbone_cfg)})
        if decoder.get("neck"):
            self.decoder["neck"] = MODELS.build(decoder["neck"])
        if not isinstance(moe_loss_weight, dict):
            moe_loss_weight = {t: moe_loss_weight for t in self.tasks}
        if set(moe_loss_weight) != set(self.tasks) or any(w < 0 for w in moe_loss_weight.values()):
            raise ValueError(
                f"moe_loss_weight: need a factor >= 0 for each of {list(self.tasks)}, got {moe_loss_weight}"
            )
        self.moe_loss_weight = {t: float(moe_loss_weight[t]) for t in self.tasks}
        missing = [t for t in self.tasks if not heads.get(t)]
        if missing:
            raise ValueError(f"heads: no head configured for tasks {missing} (heads.<task>)")
        self.heads = ModuleDict({t: MODELS.build(heads[t]) for t in self.tasks})
        unknown = sorted(set(loss_scale or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f"loss_scale names tasks that are not trained: {unknown}")
        self.loss_scale = {t: float((loss_scale or {}).get(t, 1.0)) for t in self.tasks}
        self.task_scaling = MODELS.build({**task_scaling, "tasks": self.tasks}) if task_scaling else None
        if init_from_stage is not None and not init_from_stage.get("checkpoint"):
            raise ValueError("init_from_stage.checkpoint: path of the previous stage's checkpoint is required")
        self.init_from_stage = dict(init_from_stage) if init_from_stage else None

    def init_weights(self) -> None:
        """MMEngine initialisation, then the parts of a previous stage's checkpoint (``init_from_stage``)."""
        super().init_weights()
        if self.init_from_stage is not None:
            self.load_stage(**self.init_from_stage)

    def load_stage(self, checkpoint: str, keep: Sequence[str] = ("encoders", "fuser", "decoder")) -> dict:
        """Loads the state-dict entries of ``checkpoint`` whose key starts with one of ``keep``.

        Returns ``{'loaded': [...], 'new': [...], 'dropped': [...]}`` (key lists) and logs counts with
        the parts concerned: ``new`` are this model's keys left at their initialisation (e.g. the heads
        of tasks the previous stage did not train), ``dropped`` the checkpoint's keys not used (not kept,
        or absent here). A kept key whose shape differs is an error naming it.
        """
        from mmengine.logging import print_log
        from mmengine.runner.checkpoint import _load_checkpoint

        ckpt = _load_checkpoint(checkpoint, map_location="cpu")
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"init_from_stage: {checkpoint} holds no state dict")
        prefixes = tuple(f"{k.rstrip('.')}." for k in keep)
        own = self.state_dict()
        loaded = {k: v for k, v in state.items() if k.startswith(prefixes) and k in own}
        for key, value in loaded.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(
                    f"init_from_stage: {checkpoint}: {key} has shape {tuple(value.shape)}, "
                    f"this model {tuple(own[key].shape)}"
                )
        self.load_state_dict(loaded, strict=False)
        report = {
            "loaded": sorted(loaded),
            "new": sorted(set(own) - set(loaded)),
            "dropped": sorted(set(state) - set(loaded)),
        }

        def parts(keys: list[str]) -> str:
            names = sorted({".".join(k.split(".")[:2]) for k in keys})
            return ", ".join(names) if names else "-"

        for what, keys in report.items():
            print_log(f"init_from_stage {checkpoint}: {what} {len(keys)} tensors ({parts(keys)})", logger="current")
        return report

    def task_feat(self, task: str, feat: Tensor) -> Tensor:
        """The shared feature as ``heads[task]`` sees it: decoded for the task when the decoder is
        task-conditioned (``feat`` is then the fused BEV map), gated when ``task_scaling`` is set."""
        if self.task_decoder:
            feat = self.bev_decode(feat, task)
        return feat if self.task_scaling is None else self.task_scaling(feat, task)

    def keep_tasks(self, tasks: Sequence[str]) -> None:
        """Drops every head (and TCS gate) but ``tasks``'s, in place: ``extract_task_model``'s hook."""
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise KeyError(f"keep_tasks: {unknown} are not among the model's tasks {list(self.tasks)}")
        self.tasks = tuple(t for t in self.tasks if t in tasks)
        for task in list(self.heads):
            if task not in self.tasks:
                del self.heads[task]
        self.loss_scale = {t: self.loss_scale[t] for t in self.tasks}
        if self.task_scaling is not None:
            for task in list(self.task_scaling.gates):
                if task not in self.tasks:
                    del self.task_scaling.gates[task]
            self.task_scaling.tasks = self.tasks

    # ------------------------------------------------------------------ export boundaries
    def camera_encoder(
        self, img: Tensor, calib: SensorCalibration | None = None, pool_index: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Images -> camera BEV map.

        Args:
            img: (B, N, 3, H, W) normalised images.
            calib: the batch's calibration (frustum geometry); not needed with ``pool_index``.
            pool_index: precomputed BEV-pool indices (``view_transform.pool_index``), e.g. for an
                exported graph on a fixed rig.

        Returns:
            (B, C_cam, Y, X) BEV features and (B, N, D, fH, fW) depth logits.
        """
        batch, cams = img.shape[:2]
        parts = self.encoders["camera"]
        feats = parts["neck"](parts["backbone"](img.flatten(0, 1)))
        feat = feats[0] if isinstance(feats, (list, tuple)) else feats
        feat = feat.view(batch, cams, *feat.shape[1:])
        return parts["view_transform"](feat, calib, tuple(img.shape[-2:]), pool_index)

    def lidar_encoder(self, voxels: Tensor, num_points: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """Voxels (V, P, C), counts (V,), coordinates (V, 4) [b, z, y, x] -> (B, C_lidar, Y, X)."""
        return self.encoders["lidar"](voxels, num_points, coors, batch_size)

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        """``{modality: (B, C_m, Y, X)}`` -> (B, C, Y, X); the single map itself without a fuser."""
        if self.fuser is None:
            return feats[self.modalities[0]]
        return self.fuser([feats[m] for m in self.modalities])

    def bev_decode(self, bev: Tensor, task: str | None = None) -> Tensor:
        """Fused BEV (B, C, Y, X) -> decoded feature (B, C', Y', X') (SECONDFPN concatenates its scales);
        ``task`` routes a task-conditioned decoder (required there)."""
        if self.task_decoder:
            if task is None:
                raise ValueError("bev_decode: the task-conditioned decoder needs task=")
            return self.decoder["backbone"](bev, task)
        out = self.decoder["backbone"](bev)
        if "neck" in self.decoder:
            out = self.decoder["neck"](out)
        if isinstance(out, (list, tuple)):
            if len(out) != 1:
                raise ValueError(f"decoder: expected one output map, got {len(out)}; add a neck that merges them")
            out = out[0]
        return out

    def head_forward(self, task: str, feat: Tensor, *head_inputs: Tensor):
        """Raw outputs of ``heads[task]`` on the shared feature (no decoding).

        ``head_inputs`` are the head's extra forward inputs, e.g. the occupancy head's (B, 4, 4)
        ``lidar2ego`` (without them it uses its configured mount)."""
        return self.heads[task](self.task_feat(task, feat), *head_inputs)

    # ------------------------------------------------------------------ gradient-balancing contract
    def extract_shared(
        self,
        inputs: dict,
        data_samples: Sequence[BaseDataElement] | None = None,
        modality_hook: ModalityHook | None = None,
    ) -> SharedFeatures:
        """Encoders, fuser and decoder.

        Args:
            inputs: the data preprocessor's output: ``img``, ``calib``, ``points``, ``voxels``.
            data_samples: unused here (kept for the contract).
            modality_hook: applied to ``{modality: (B, C_m, Y, X)}`` before the fuser.

        Returns:
            ``SharedFeatures``: ``feat`` the decoder output (the fused map with a task-conditioned
            decoder, which :meth:`task_feat` runs per task), ``modality_feats`` the BEV maps entering
            the fuser, ``aux_losses`` ``{'depth.loss_depth'}`` in training when the view transform
            supervises depth.
        """
        feats, aux = {}, {}
        if "camera" in self.modalities:
            for key in ("img", "calib"):
                if key not in inputs:
                    raise KeyError(
                        f"MultiTaskBEVModel: the camera encoder needs inputs['{key}'] (got {sorted(inputs)})"
                    )
            img, calib = inputs["img"], inputs["calib"]
            feats["camera"], depth_logits = self.camera_encoder(img, calib)
            view_transform = self.encoders["camera"]["view_transform"]
            if self.training and getattr(view_transform, "depth_loss_weight", 0) > 0:
                if "points" not in inputs:
                    raise KeyError("encoders.camera.view_transform.depth_loss_weight > 0 needs inputs['points']")
                loss = view_transform.depth_loss(depth_logits, inputs["points"], calib, tuple(img.shape[-2:]))
                aux["depth.loss_depth"] = loss
        if "lidar" in self.modalities:
            if "voxels" not in inputs:
                raise KeyError("MultiTaskBEVModel: the LiDAR encoder needs voxels; set data_preprocessor.voxelize")
            vox = inputs["voxels"]
            feats["lidar"] = self.lidar_encoder(vox["voxels"], vox["num_points"], vox["coors"], vox["batch_size"])
        sizes = {m: tuple(f.shape[-2:]) for m, f in feats.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"encoders: BEV sizes differ {sizes}; match view_transform bounds/downsample to lidar")
        if modality_hook is not None:
            feats = modality_hook(feats)
        fused = self.fuse(feats)
        shared = fused if self.task_decoder else self.bev_decode(fused)
        return SharedFeatures(feat=shared, modality_feats=feats, aux_losses=aux)

    def loss_by_shared(self, shared_feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Task losses on the shared feature, keyed ``'<task>.<name>'`` and scaled by ``loss_scale``."""
        if data_samples is None:
            raise ValueError("MultiTaskBEVModel: mode='loss' needs data_samples with the tasks' ground truth")
        losses = {}
        pop_moe_aux_loss(self.decoder)  # drop what a forward outside this loss left behind
        for task in self.tasks:
            scale = self.loss_scale[task]
            for key, value in self.heads[task].loss(self.task_feat(task, shared_feat), data_samples).items():
                losses[f"{task}.{key}"] = value * scale if "loss" in key else value
            balance = pop_moe_aux_loss(self.decoder)
            if balance is not None:
                losses[f"{task}.loss_moe_balance"] = balance * (self.moe_loss_weight[task] * scale)
        return losses

    # ------------------------------------------------------------------ MMEngine model
    def forward(
        self, inputs: dict, data_samples: list[BaseDataElement] | None = None, mode: str = "tensor"
    ) -> dict | list[BaseDataElement]:
        """Returns per ``mode``: 'tensor' ``{task: raw head outputs}``; 'loss' the loss dict (task
        losses and auxiliary ones); 'predict' the samples with each head's predictions
        (``pred_instances_3d`` for 'det')."""
        if mode not in ("tensor", "loss", "predict"):
            raise ValueError(f"MultiTaskBEVModel: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")
        shared = self.extract_shared(inputs, data_samples)
        if mode == "loss":
            return {**self.loss_by_shared(shared.feat, data_samples), **shared.aux_losses}
        if mode == "tensor":
            return {task: self.head_forward(task, shared.feat) for task in self.tasks}
        if data_samples is None:
            raise ValueError("MultiTaskBEVModel: mode='predict' needs data_samples (metainfo for decoding)")
        for task in self.tasks:
            data_samples = self.heads[task].predict(self.task_feat(task, shared.feat), data_samples)
        return data_samples
