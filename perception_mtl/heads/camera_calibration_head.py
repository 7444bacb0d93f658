"""Camera-calibration head of UGCL: regresses K, baseline, disparity, t and pitch, with geometric losses."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS
from perception_mtl.structures.camera_geometry import (
    axis_planes,
    dehomogenise,
    depth_from_disparity,
    intrinsic_matrix,
    projection_matrix,
    rotation_x,
    rotation_x_from_cos_sin,
    vanishing_directions,
    world_origin_image,
)

from .pose_bin_coder import PoseBinCoder

PARAM_NAMES = ("fx", "fy", "u0", "v0", "baseline", "disparity", "tx", "ty", "tz", "pitch")
LINEAR_PARAMS = PARAM_NAMES[:-1]
GEOMETRIC_TERMS = ("vp", "wc", "planes", "orth", "det", "depth")
DEFAULT_OFF_TERMS = ("depth",)  # added after the configs' recorded runs; weight 0 unless configured
ROTATION_MODES = ("cos_sin", "angle")
VP_MODES = ("sphere", "image")


@MODELS.register_module()
class CameraCalibrationHead(BaseModule):
    """MLP from a stereo feature vector to the 10 calibration parameters, and the UGCL losses.

    Targets (``gt_calib``, (10,) per sample in :data:`PARAM_NAMES` order: fx, fy, u0, v0 and
    disparity in pixels, baseline and t in metres, pitch in radians) are regressed normalised,
    ``z = (p - mean) / std``, with ``mean`` and ``std`` from ``param_stats`` (the training split's
    statistics, which the synthetic writer stores in ``meta.json``); every supervised term is an L1
    in these units, so all parameters weigh alike whatever their unit. The pitch is predicted as a
    free 2-vector ``(c, s) = (1 + o_c, o_s)`` (``rotation='cos_sin'``): the pitch is
    ``atan2(s, c)`` and ``R = [[1, 0, 0], [0, c, -s], [0, s, c]]``, which is a rotation only when
    ``c^2 + s^2 = 1`` (``R R^T = diag(1, n, n)``, ``det R = n``, ``n = c^2 + s^2``), so the
    orthonormality and determinant losses carry a real gradient. With ``rotation='angle'`` the
    head regresses the normalised pitch and builds ``R = Rx(pitch)`` exactly; the two rotation
    losses would be identically 0 and are not computed (the original's defect 3).

    Geometric losses compare ``P = K [R | t]`` built from the predicted parameters with the one
    built from the ground truth, exactly (nothing added to P), in image-size units
    (``S P`` with ``S = diag(1 / W, 1 / H, 1)``, W, H from ``img_shape``):

    - ``loss_vp``: vanishing points of the world axes ``vp_axes`` (columns of P). With
      ``vp_mode='sphere'`` (default) it is the L1 distance of the unit homogeneous vectors
      ``S P[:, i] / |S P[:, i]|``, which stays finite for vanishing points at (or near) infinity;
      with ``vp_mode='image'`` the columns are dehomogenised (``|w|`` kept >= ``vp_eps``) and only
      axes whose ground-truth vanishing point is within ``1 / vp_min_cos`` image sizes count. With
      pitch-only rotations the lateral axis X is parallel to the image plane (its vanishing point
      is always at infinity and its column does not depend on the prediction), so the default
      axes are Y (vertical, at infinity when pitch = 0) and Z (along the road).
    - ``loss_wc``: image of the world origin (column 4 dehomogenised, ``t_z`` kept >= ``wc_min_depth``).
    - ``loss_planes``: the rows of P as world planes (the planes imaged on the column u = 0 and the
      row v = 0, and the principal plane; see ``axis_planes``) in Hesse form ``(n, d)``: L1 of the
      unit normals plus L1 of the offsets over ``planes_dist_scale`` metres, summed over the planes.
    - ``loss_orth``: mean |R R^T - I|; ``loss_det``: |det R - 1| (``rotation='cos_sin'`` only).
    - ``loss_depth`` (weight 0 unless set in ``loss_weights``): the world origin triangulated from the
      predicted fx, baseline and disparity, ``Z = fx b / (d + doffs)`` (``d + doffs`` kept >=
      ``depth_min_disparity`` pixels), against the ground-truth ``t_z``, L1 in ``t_z``'s normalised
      units: the stereo triangulation of UGCL's R variant. ``doffs`` (pixels, ``u0_right - u0_left``,
      Middlebury's principal-point offset of a rectified pair) is each sample's metainfo ``doffs``
      (0 when absent: one principal point, as CVGL).

    Binned parameters (``binned``, e.g. ``fx``): besides the regression output the head gives
    ``num_bins`` logits over bins of ``bin_width`` starting at ``low`` (physical units); the prediction
    is the softmax expectation of the bin centres (replacing the regressed value), and ``loss_<param>``
    adds ``bin_cls_weight`` times the cross-entropy with a Gaussian label over the bin centres (sigma
    ``label_sigma`` of that parameter, in its units; default one bin width) to the L1 of the
    expectation. Classifying the focal length (or field of view) learns faster than regressing it
    (Lopez et al., CVPR 2019; DeepCalib).

    Loss keys: ``loss_<param>`` for the 10 parameters and ``loss_vp``, ``loss_wc``, ``loss_planes``,
    ``loss_orth``, ``loss_det``, ``loss_depth``, each times its weight in ``loss_weights`` (default 1, 0 for
    ``depth``; a weight of 0 drops the term).

    Args:
        in_channels: length of the input feature vector.
        hidden_channels: widths of the hidden layers of the MLP.
        param_stats: name -> (mean, std) per parameter of :data:`PARAM_NAMES` (missing: (0, 1)).
        rotation: 'cos_sin' or 'angle' (see above).
        loss_weights: term -> weight, terms are the 10 parameter names and ``vp``, ``wc``, ``planes``,
            ``orth``, ``det``.
        vp_mode: 'sphere' or 'image'.
        vp_axes: world axes (0 = X, 1 = Y, 2 = Z) whose vanishing points enter ``loss_vp``.
        vp_min_cos: 'image' mode: an axis counts when ``|w| / |S P[:, i]|`` of the ground truth is above this.
        vp_eps: 'image' mode: smallest ``|w|`` of a predicted vanishing point.
        wc_min_depth: smallest predicted ``t_z`` (metres) when dehomogenising the world origin.
        planes_dist_scale: metres of plane offset that weigh as much as a unit of normal in ``loss_planes``.
        depth_min_disparity: smallest ``d + doffs`` (pixels) when triangulating in ``loss_depth``.
        dropout: dropout before the output layer.
        binned: linear parameter name -> dict(low, bin_width, num_bins, label_sigma=bin_width) in the
            parameter's units (``label_sigma`` 0: one-hot labels), see above.
        bin_cls_weight: weight of the bin cross-entropy inside ``loss_<param>``.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: Sequence[int] = (256, 128),
        param_stats: Mapping[str, Sequence[float]] | None = None,
        rotation: str = "cos_sin",
        loss_weights: Mapping[str, float] | None = None,
        vp_mode: str = "sphere",
        vp_axes: Sequence[int] = (1, 2),
        vp_min_cos: float = 0.2,
        vp_eps: float = 1e-2,
        wc_min_depth: float = 0.5,
        planes_dist_scale: float = 10.0,
        depth_min_disparity: float = 0.1,
        dropout: float = 0.0,
        binned: Mapping[str, Mapping[str, float]] | None = None,
        bin_cls_weight: float = 1.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if rotation not in ROTATION_MODES:
            raise ValueError(f"CameraCalibrationHead: rotation must be one of {ROTATION_MODES}, got {rotation!r}")
        if vp_mode not in VP_MODES:
            raise ValueError(f"CameraCalibrationHead: vp_mode must be one of {VP_MODES}, got {vp_mode!r}")
        if not vp_axes or any(a not in (0, 1, 2) for a in vp_axes):
            raise ValueError(f"CameraCalibrationHead: vp_axes must be a non-empty subset of (0, 1, 2), got {vp_axes}")
        stats = dict(param_stats or {})
        unknown = set(stats) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"CameraCalibrationHead: param_stats names unknown parameters {sorted(unknown)}")
        weights = dict(loss_weights or {})
        unknown = set(weights) - set(PARAM_NAMES) - set(GEOMETRIC_TERMS)
        if unknown:
            raise ValueError(f"CameraCalibrationHead: loss_weights names unknown terms {sorted(unknown)}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"CameraCalibrationHead: loss weights must be >= 0, got {weights}")
        means = [float(stats.get(n, (0.0, 1.0))[0]) for n in PARAM_NAMES]
        stds = [float(stats.get(n, (0.0, 1.0))[1]) for n in PARAM_NAMES]
        if min(stds) <= 0:
            raise ValueError(f"CameraCalibrationHead: every std in param_stats must be > 0, got {stds}")
        self.register_buffer("param_mean", torch.tensor(means), persistent=False)
        self.register_buffer("param_std", torch.tensor(stds), persistent=False)
        self.rotation = rotation
        self.loss_weights = {
            t: float(weights.get(t, 0.0 if t in DEFAULT_OFF_TERMS else 1.0)) for t in (*PARAM_NAMES, *GEOMETRIC_TERMS)
        }
        if rotation == "angle":
            self.loss_weights["orth"] = self.loss_weights["det"] = 0.0
        self.vp_mode, self.vp_axes = vp_mode, tuple(vp_axes)
        self.vp_min_cos, self.vp_eps, self.wc_min_depth = float(vp_min_cos), float(vp_eps), float(wc_min_depth)
        if planes_dist_scale <= 0:
            raise ValueError(f"CameraCalibrationHead: planes_dist_scale must be > 0, got {planes_dist_scale}")
        self.planes_dist_scale = float(planes_dist_scale)
        if depth_min_disparity <= 0:
            raise ValueError(f"CameraCalibrationHead: depth_min_disparity must be > 0, got {depth_min_disparity}")
        self.depth_min_disparity = float(depth_min_disparity)

        layers: list[nn.Module] = []
        width = in_channels
        for hidden in hidden_channels:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.mlp = nn.Sequential(*layers)
        binned = dict(binned or {})
        unknown = set(binned) - set(LINEAR_PARAMS)
        if unknown:
            raise ValueError(f"CameraCalibrationHead: binned names unknown or non-linear parameters {sorted(unknown)}")
        self.bin_coders, self.bin_label_sigmas = {}, {}
        for name, cfg in binned.items():
            cfg = dict(cfg)
            sigma = float(cfg.pop("label_sigma", cfg.get("bin_width", 1.0)))
            if sigma < 0:
                raise ValueError(f"CameraCalibrationHead: binned.{name}.label_sigma must be >= 0, got {sigma}")
            self.bin_coders[name], self.bin_label_sigmas[name] = PoseBinCoder(**cfg), sigma
        if bin_cls_weight < 0:
            raise ValueError(f"CameraCalibrationHead: bin_cls_weight must be >= 0, got {bin_cls_weight}")
        self.bin_cls_weight = float(bin_cls_weight)
        self.num_rot_outputs = 2 if rotation == "cos_sin" else 1
        num_logits = sum(c.num_bins for c in self.bin_coders.values())
        self.out = nn.Linear(width, len(LINEAR_PARAMS) + self.num_rot_outputs + num_logits)
        nn.init.normal_(self.out.weight, std=0.01)
        nn.init.zeros_(self.out.bias)

    def forward(self, feats: Tensor) -> Tensor:
        """(B, in_channels) -> (B, 11) raw outputs (9 normalised parameters, then o_c, o_s), or (B, 10) ('angle'),
        followed by the logits of each binned parameter (in ``binned`` order)."""
        return self.out(self.mlp(feats))

    # ----------------------------------------------------------------------------- decoding
    def decode(self, raw: Tensor) -> dict[str, Tensor]:
        """Raw outputs -> ``params`` (B, 10) in physical units (pitch radians), ``rot`` (B, 3, 3) as
        assembled (not necessarily orthonormal) and ``norm`` (B, 9) the normalised linear parameters."""
        n_lin = len(LINEAR_PARAMS)
        norm = raw[:, :n_lin]
        if self.bin_coders:
            norm = norm.clone()
            for name, logits in self.bin_logits(raw).items():
                i = PARAM_NAMES.index(name)
                norm[:, i] = (self.bin_coders[name].decode(logits) - self.param_mean[i]) / self.param_std[i]
        linear = self.param_mean[:-1] + self.param_std[:-1] * norm
        if self.rotation == "cos_sin":
            cos, sin = 1.0 + raw[:, n_lin], raw[:, n_lin + 1]
            pitch = torch.atan2(sin, cos)
            rot = rotation_x_from_cos_sin(cos, sin)
        else:
            pitch = self.param_mean[-1] + self.param_std[-1] * raw[:, n_lin]
            rot = rotation_x(pitch)
        return dict(params=torch.cat([linear, pitch[:, None]], 1), rot=rot, norm=norm)

    def bin_logits(self, raw: Tensor) -> dict[str, Tensor]:
        """Binned parameter name -> (B, num_bins) logits, sliced from the raw outputs."""
        out, start = {}, len(LINEAR_PARAMS) + self.num_rot_outputs
        for name, coder in self.bin_coders.items():
            out[name] = raw[:, start : start + coder.num_bins]
            start += coder.num_bins
        return out

    @staticmethod
    def projection(params: Tensor, rot: Tensor, img_shape: Tensor) -> Tensor:
        """``S K [R | t]`` (B, 3, 4) from (B, 10) parameters, (B, 3, 3) R and (B, 2) image (H, W)."""
        fx, fy, u0, v0 = params[:, 0], params[:, 1], params[:, 2], params[:, 3]
        k = intrinsic_matrix(fx / img_shape[:, 1], fy / img_shape[:, 0], u0 / img_shape[:, 1], v0 / img_shape[:, 0])
        return projection_matrix(k, rot, params[:, 6:9])

    # ----------------------------------------------------------------------------- losses
    def loss(self, feats: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        return self.loss_by_feat(self(feats), data_samples)

    def loss_by_feat(self, raw: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """raw: (B, 11) or (B, 10) head outputs; targets from ``gt_calib`` and ``img_shape`` of each sample."""
        gt = torch.stack([torch.as_tensor(s.gt_calib) for s in data_samples]).to(raw.device, raw.dtype)
        img_shape = torch.tensor(
            [s.metainfo["img_shape"][:2] for s in data_samples], dtype=raw.dtype, device=raw.device
        )
        pred = self.decode(raw)
        losses = {}
        gt_norm = (gt[:, :-1] - self.param_mean[:-1]) / self.param_std[:-1]
        for i, name in enumerate(LINEAR_PARAMS):
            losses[f"loss_{name}"] = (pred["norm"][:, i] - gt_norm[:, i]).abs().mean()
        for name, logits in self.bin_logits(raw).items():
            target = gt[:, PARAM_NAMES.index(name)]
            ce = self.bin_coders[name].cross_entropy(logits, target, self.bin_label_sigmas[name])
            losses[f"loss_{name}"] = losses[f"loss_{name}"] + self.bin_cls_weight * ce
        pitch_err = torch.remainder(pred["params"][:, -1] - gt[:, -1] + math.pi, 2 * math.pi) - math.pi
        losses["loss_pitch"] = pitch_err.abs().mean() / self.param_std[-1]

        proj_pred = self.projection(pred["params"], pred["rot"], img_shape)
        proj_gt = self.projection(gt, rotation_x(gt[:, -1]), img_shape)
        losses["loss_vp"] = self._vp_loss(proj_pred, proj_gt)
        losses["loss_wc"] = (
            (world_origin_image(proj_pred, self.wc_min_depth) - world_origin_image(proj_gt)).abs().sum(-1).mean()
        )
        plane_err = (axis_planes(proj_pred) - axis_planes(proj_gt)).abs()
        losses["loss_planes"] = (plane_err[..., :3].sum(-1) + plane_err[..., 3] / self.planes_dist_scale).sum(-1).mean()
        if self.loss_weights["depth"] > 0:
            doffs = torch.tensor(
                [float(s.metainfo.get("doffs", 0.0)) for s in data_samples], dtype=raw.dtype, device=raw.device
            )
            losses["loss_depth"] = self._depth_loss(pred["params"], gt, doffs)
        if self.rotation == "cos_sin":
            rot = pred["rot"]
            eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
            losses["loss_orth"] = (rot @ rot.transpose(-1, -2) - eye).abs().mean()
            losses["loss_det"] = (torch.linalg.det(rot) - 1.0).abs().mean()
        return {k: v * self.loss_weights[k[len("loss_") :]] for k, v in losses.items() if self.loss_weights[k[5:]] > 0}

    def _depth_loss(self, params: Tensor, gt: Tensor, doffs: Tensor) -> Tensor:
        """Mean |Z - t_z| / std(t_z): (B, 10) predicted parameters triangulated with (B,) ``doffs``, (B, 10) gt."""
        i = {name: PARAM_NAMES.index(name) for name in ("fx", "baseline", "disparity", "tz")}
        depth = depth_from_disparity(
            params[:, i["disparity"]], params[:, i["fx"]], params[:, i["baseline"]], doffs, self.depth_min_disparity
        )
        return (depth - gt[:, i["tz"]]).abs().mean() / self.param_std[i["tz"]]

    def _vp_loss(self, proj_pred: Tensor, proj_gt: Tensor) -> Tensor:
        axes = list(self.vp_axes)
        if self.vp_mode == "sphere":
            diff = vanishing_directions(proj_pred)[:, axes] - vanishing_directions(proj_gt)[:, axes]
            return diff.abs().sum(-1).mean()
        cols_pred = proj_pred[:, :, axes].transpose(-1, -2)
        cols_gt = proj_gt[:, :, axes].transpose(-1, -2)
        finite = (cols_gt[..., 2].abs() / cols_gt.norm(dim=-1)) > self.vp_min_cos
        err = (dehomogenise(cols_pred, self.vp_eps) - dehomogenise(cols_gt, self.vp_eps)).abs().sum(-1)
        return (err * finite).sum() / finite.sum().clamp(min=1)

    # ----------------------------------------------------------------------------- prediction
    def predict(self, feats: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        return self.predict_by_feat(self(feats), data_samples)

    def predict_by_feat(self, raw: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        """Writes ``pred_calib`` (10,) float32 (:data:`PARAM_NAMES` order, pitch radians) into each sample."""
        params = self.decode(raw)["params"].detach().float()
        for sample, p in zip(data_samples, params):
            sample.pred_calib = p
        return data_samples
