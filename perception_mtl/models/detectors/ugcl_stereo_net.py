"""UGCL stereo calibration network: two image trunks (or one shared), stereo fusion, calibration head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS

_BN = dict(type="BN")  # norm of the ConvModule blocks (3x3 conv without bias, BN, ReLU; Kaiming-initialised conv)


def horizontal_correlation(left: Tensor, right: Tensor, max_disp: int) -> Tensor:
    """Cost volume of rectified features: (B, C, H, W) x 2 -> (B, max_disp, H, W),
    ``out[:, d, y, x] = <l(y, x), r(y, x - d)> / C`` (0 where ``x - d`` falls outside the image)."""
    width = left.shape[-1]
    padded = F.pad(right, (max_disp - 1, 0))
    volumes = [(left * padded[..., max_disp - 1 - d : max_disp - 1 - d + width]).mean(1) for d in range(max_disp)]
    return torch.stack(volumes, 1)


def _coordinate_grid(like: Tensor) -> Tensor:
    """(B, 2, H, W) channels x, y running over [-1, 1] across a (B, C, H, W) map."""
    b, _, h, w = like.shape
    ys = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0).expand(b, 2, h, w)


def mirror_stereo_pair(pairs: Tensor) -> Tensor:
    """(B, 2, 3, H, W) rectified pair -> the pair a mirrored rig sees: left' = flip(right), right' = flip(left)."""
    return torch.stack([pairs[:, 1].flip(-1), pairs[:, 0].flip(-1)], 1)


def mirror_calib_params(params: Tensor, width: int, doffs: Tensor | float = 0.0) -> Tensor:
    """(B, 10) parameters (``PARAM_NAMES`` order) of a rectified rig <-> those of its mirror image
    (see :func:`mirror_stereo_pair`; an involution for a given ``doffs``). The mirrored left camera
    is the right camera reflected in x, whose principal point is ``u0 + doffs`` (``doffs`` (B,) or a
    float: ``u0_right - u0_left`` in pixels), so ``u0' = W - 1 - u0 - doffs``, and the mirrored rig
    has the same ``doffs``; the right camera sees the world origin at ``t - (b, 0, 0)``, so
    ``tx' = b - tx``; fx, fy, v0, baseline, disparity, ty, tz and pitch are unchanged."""
    out = params.clone()
    out[:, 2] = (width - 1) - params[:, 2] - doffs
    out[:, 6] = params[:, 4] - params[:, 6]
    return out


def shift_stereo_pair(pairs: Tensor, dx: int, dy: int) -> Tensor:
    """(B, 2, 3, H, W) -> float pair with both views translated by whole pixels (content moves ``dx``
    right and ``dy`` down), edges replicated into the uncovered border: what the rig sees with its
    principal point at ``(u0 + dx, v0 + dy)``, except in that border. Nothing else changes (same
    rays per content pixel, so the disparity, baseline, t and pitch are those of the original)."""
    height, width = pairs.shape[-2:]
    if abs(dx) >= width or abs(dy) >= height:
        raise ValueError(f"shift_stereo_pair: shift ({dx}, {dy}) leaves nothing of a {width}x{height} image")
    padded = F.pad(pairs.flatten(0, 1).float(), (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)), mode="replicate")
    x0, y0 = max(-dx, 0), max(-dy, 0)
    return padded[..., y0 : y0 + height, x0 : x0 + width].reshape(pairs.shape)


@MODELS.register_module()
class UGCLStereoNet(BaseModel):
    """Calibration from a rectified stereo pair (UGCL, arXiv 2402.08437), pure PyTorch.

    Left and right images run through a timm trunk (``shared_trunk=True``: one set of weights, as a
    Siamese network; False: two trunks as in the original's two InceptionV3). Stereo fusion:

    - a horizontal correlation volume (``max_disp`` shifts) of the L2-normalised features at level
      ``corr_level`` (an early, high-resolution level, so a few pixels of disparity show), reduced
      by strided convs to the size of the deepest level;
    - the deepest features of both views, concatenated with it, then conv layers, two normalised
      coordinate channels (x, y in [-1, 1]; absolute image position matters for the principal point,
      vanishing points and the world-origin image) and adaptive average pooling to ``pool_size``.

    The flattened map feeds the head (``CameraCalibrationHead``), whose ``in_channels`` is filled in.

    Inputs are uint8 or float pairs (B, 2, 3, H, W) (left, right; or a list of (2, 3, H, W)),
    normalised here with ``mean`` / ``std``. Loss keys are namespaced ``calib.<loss>``.

    Args:
        backbone: ``TimmBackbone`` config (``out_indices`` must include ``corr_level``'s level).
        head: ``CameraCalibrationHead`` config.
        shared_trunk: one trunk for both views (True) or one per view.
        corr_level: index into the backbone's outputs used for the correlation volume.
        max_disp: correlation shifts at that level.
        test_flip: in 'predict' mode, also run the mirrored pair (:func:`mirror_stereo_pair`) and
            average the two parameter sets. Valid only for rectified pairs whose right camera is
            the left one moved by +baseline along x with the same K up to the principal-point
            offset ``doffs`` (each sample's metainfo ``doffs``, 0 when absent; our synthetic data),
            not for the original CVGL pairs (a right camera with its own pitch and FOV).
        test_shifts: in 'predict' mode, also run the pair translated by each ``(dx, dy)`` whole pixels
            (:func:`shift_stereo_pair`; each also mirrored with ``test_flip``), subtract the shift
            from the predicted u0, v0 and average all views. Valid for any pinhole pair.
        fusion_channels: channels of the fused map.
        pool_size: (h, w) of the pooled fused map.
        mean, std: per-channel RGB normalisation of the 0-255 input.
        data_preprocessor: MMEngine data preprocessor config (default: moves data to the device).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        backbone: dict,
        head: dict,
        shared_trunk: bool = True,
        corr_level: int = 0,
        max_disp: int = 8,
        test_flip: bool = False,
        test_shifts: Sequence[Sequence[int]] = (),
        fusion_channels: int = 128,
        pool_size: Sequence[int] = (3, 4),
        mean: Sequence[float] = (123.675, 116.28, 103.53),
        std: Sequence[float] = (58.395, 57.12, 57.375),
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if max_disp < 1:
            raise ValueError(f"UGCLStereoNet: max_disp must be >= 1, got {max_disp}")
        self.trunks = nn.ModuleDict({"left": MODELS.build(backbone)})
        self.shared_trunk = shared_trunk
        if not shared_trunk:
            self.trunks["right"] = MODELS.build(backbone)
        channels = list(self.trunks["left"].out_channels)
        strides = list(self.trunks["left"].strides)
        if not 0 <= corr_level < len(channels) - 1:
            raise ValueError(
                f"UGCLStereoNet: corr_level must index a level above the deepest one (0..{len(channels) - 2}), "
                f"got {corr_level}"
            )
        self.corr_level, self.max_disp, self.test_flip = corr_level, max_disp, test_flip
        shifts = [tuple(int(v) for v in shift) for shift in test_shifts]
        if any(len(shift) != 2 or shift == (0, 0) for shift in shifts):
            raise ValueError(f"UGCLStereoNet: test_shifts must be nonzero (dx, dy) pixel pairs, got {test_shifts}")
        self.test_shifts = shifts
        reduce, convs, cin = strides[-1] // strides[corr_level], [], 32
        while reduce > 1:
            convs.append(ConvModule(cin, 32, 3, stride=2, padding=1, norm_cfg=_BN))
            cin, reduce = 32, reduce // 2
        corr_in = ConvModule(max_disp, 32, 3, padding=1, norm_cfg=_BN)
        self.corr_encoder = nn.Sequential(corr_in, *convs) if convs else corr_in
        self.fusion = nn.Sequential(
            ConvModule(2 * channels[-1] + 32, fusion_channels, 3, padding=1, norm_cfg=_BN),
            ConvModule(fusion_channels, fusion_channels, 3, padding=1, norm_cfg=_BN),
        )
        self.position = ConvModule(fusion_channels + 2, fusion_channels, 3, padding=1, norm_cfg=_BN)
        self.pool_size = tuple(int(s) for s in pool_size)
        head = dict(head)
        head.setdefault("in_channels", fusion_channels * self.pool_size[0] * self.pool_size[1])
        self.head = MODELS.build(head)
        self.register_buffer("img_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    # ----------------------------------------------------------------------------- export boundaries
    def extract_feat(self, pairs: Tensor) -> Tensor:
        """(B, 2, 3, H, W) images (0-255) -> (B, fusion_channels * h * w) stereo feature vector."""
        left = (pairs[:, 0].float() - self.img_mean) / self.img_std
        right = (pairs[:, 1].float() - self.img_mean) / self.img_std
        if self.shared_trunk:
            feats = self.trunks["left"](torch.cat([left, right]))
            n = left.shape[0]  # a traced size, not len(): the ONNX graph keeps a dynamic batch
            feats_l = [f[:n] for f in feats]
            feats_r = [f[n:] for f in feats]
        else:
            feats_l, feats_r = self.trunks["left"](left), self.trunks["right"](right)
        fl, fr = (F.normalize(f[self.corr_level], dim=1) for f in (feats_l, feats_r))
        corr = self.corr_encoder(horizontal_correlation(fl, fr, self.max_disp) * fl.shape[1])
        deep_l, deep_r = feats_l[-1], feats_r[-1]
        if corr.shape[-2:] != deep_l.shape[-2:]:
            corr = F.adaptive_avg_pool2d(corr, deep_l.shape[-2:])
        fused = self.fusion(torch.cat([deep_l, deep_r, corr], 1))
        fused = self.position(torch.cat([fused, _coordinate_grid(fused)], 1))
        return F.adaptive_avg_pool2d(fused, self.pool_size).flatten(1)

    def calib_forward(self, pairs: Tensor) -> Tensor:
        """(B, 2, 3, H, W) -> (B, 11) raw head outputs (see ``CameraCalibrationHead.forward``). The export boundary."""
        return self.head(self.extract_feat(pairs))

    # ----------------------------------------------------------------------------- MMEngine contract
    def forward(
        self,
        inputs: Tensor | Sequence[Tensor],
        data_samples: Sequence[BaseDataElement] | None = None,
        mode: str = "tensor",
    ) -> Tensor | dict[str, Tensor] | Sequence[BaseDataElement]:
        """Per ``mode``: 'tensor' the raw head outputs; 'loss' ``calib.loss_*``; 'predict' the samples
        with ``pred_calib`` (10,) (fx, fy, u0, v0, baseline, disparity, tx, ty, tz, pitch in radians)."""
        pairs = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
        if pairs.dim() != 5 or pairs.shape[1:3] != (2, 3):
            raise ValueError(f"UGCLStereoNet: expected (B, 2, 3, H, W) stereo pairs, got {tuple(pairs.shape)}")
        if mode == "tensor":
            return self.calib_forward(pairs)
        if mode == "loss":
            if data_samples is None:
                raise ValueError("UGCLStereoNet: mode='loss' needs data_samples with gt_calib")
            feats = self.extract_feat(pairs)
            # The head's geometry (det R, dehomogenising) needs float32 under a bfloat16 autocast.
            with torch.autocast(feats.device.type, enabled=False):
                losses = self.head.loss(feats.float(), data_samples)
            return {f"calib.{k}": v for k, v in losses.items()}
        if mode == "predict":
            samples = data_samples if data_samples is not None else [BaseDataElement() for _ in range(len(pairs))]
            if not self.test_flip and not self.test_shifts:
                return self.head.predict(self.extract_feat(pairs), samples)
            doffs = torch.tensor([float(s.metainfo.get("doffs", 0.0)) for s in samples], device=pairs.device)
            for sample, p in zip(samples, self._predict_augmented(pairs, doffs).detach().float()):
                sample.pred_calib = p
            return samples
        raise ValueError(f"UGCLStereoNet: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")

    def _predict_augmented(self, pairs: Tensor, doffs: Tensor | float = 0.0) -> Tensor:
        """(B, 10) parameters averaged over the shifted and mirrored views, each mapped back to the
        original rig (``doffs`` (B,) or a float: each pair's ``u0_right - u0_left``, pixels). One trunk
        pass over all views (eval-mode BN: the same as one pass per view)."""
        views = [(0, 0, False)] + [(dx, dy, False) for dx, dy in self.test_shifts]
        if self.test_flip:
            views += [(dx, dy, True) for dx, dy, _ in views]
        batches = []
        for dx, dy, mirror in views:
            view = shift_stereo_pair(pairs, dx, dy)  # (0, 0): the pair itself, as float
            batches.append(mirror_stereo_pair(view) if mirror else view)
        params = self.head.decode(self.calib_forward(torch.cat(batches)))["params"].split(len(pairs))
        mapped = []
        for (dx, dy, mirror), p in zip(views, params):
            p = mirror_calib_params(p, pairs.shape[-1], doffs) if mirror else p.clone()
            p[:, 2] -= dx
            p[:, 3] -= dy
            mapped.append(p)
        return torch.stack(mapped).mean(0)
