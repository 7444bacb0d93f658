"""How well the lane-marking period of a CVGL road render measures the focal length, without learning.

In our road scenes every frontal extent (lane width, car width, the marker, disparity) scales with
y / h (rows below the horizon over camera height) whatever f is; lengths along the road carry f.
The strongest such ruler is the 9 m period of the dashed lane lines. This suite resamples each left
image onto the ground plane (``ground_plane_view``) with a focal length that is off by a random
factor r (log-normal, ``--focal-noise``) and a horizon row off by ``--horizon-noise-px`` pixels
(height and principal point exact), finds the dash period along the road by autocorrelation
(:func:`dash_period_ratio`; a wrong f stretches the road by exactly r) and reports how far the
recovered f = f_est / r_est lands from the truth. It shows what this one ruler, read by a simple
estimator, offers at a given resolution and horizon accuracy (not a bound: a learned model may combine
weaker cues and do better); the UGCL demo's fx target is discussed against it in the issue notes.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import Tensor

from perception_mtl.datasets.cvgl_stereo_dataset import open_cvgl_arrays, split_path
from perception_mtl.structures.ground_plane_view import ground_plane_view
from perception_mtl.synthetic.stereo.road_stereo_renderer import DASH_PERIOD_M

DESCRIPTION = "CVGL data: focal length recovered from the lane-dash period on the ground plane, per horizon error"


def dash_period_ratio(
    view: Tensor, valid: Tensor, step: float, period: float, lag_range: tuple[float, float]
) -> Tensor:
    """(B, Z, X) ground-plane intensity with rows ``step`` metres apart -> (B,) measured period / ``period``.

    Every column's autocorrelation along Z (over its valid cells, mean removed) is averaged with the
    column's variance as weight, so the lane-line columns dominate; the period is the highest local
    maximum with a lag inside ``lag_range`` metres, refined by a parabola through its neighbours.
    NaN where no column has enough valid cells or no maximum lies in the range.
    """
    lo, hi = int(round(lag_range[0] / step)), int(round(lag_range[1] / step))
    mask = valid.to(view.dtype)
    count = mask.sum(1, keepdim=True).clamp(min=1)
    centred = (view - (view * mask).sum(1, keepdim=True) / count) * mask
    variance = (centred**2).sum(1) / count[:, 0]  # (B, X)
    weight = variance * (count[:, 0] > hi + 1 / step)  # columns seeing the longest lag plus 1 m
    acf = []
    for lag in range(hi + 2):
        pairs = (mask[:, : mask.shape[1] - lag] * mask[:, lag:]).sum(1).clamp(min=1)
        acf.append((centred[:, : centred.shape[1] - lag] * centred[:, lag:]).sum(1) / pairs)
    acf = torch.stack(acf, 1) / variance.clamp(min=1e-12)[:, None]  # (B, lags, X)
    mean_acf = (acf * weight[:, None]).sum(-1) / weight.sum(-1, keepdim=True).clamp(min=1e-12)
    out = torch.full((len(view),), float("nan"), dtype=view.dtype)
    for b in range(len(view)):
        if weight[b].sum() <= 0:
            continue
        a = mean_acf[b]
        peaks = [k for k in range(max(lo, 1), hi + 1) if a[k] > a[k - 1] and a[k] >= a[k + 1]]
        if not peaks:
            continue
        k = max(peaks, key=lambda j: float(a[j]))
        curvature = a[k - 1] - 2 * a[k] + a[k + 1]
        offset = 0.5 * (a[k - 1] - a[k + 1]) / curvature if curvature < 0 else 0.0
        out[b] = (k + offset) * step / period
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", default="data/synthetic_cvgl", help="CVGL-layout directory")
    parser.add_argument("--split", default="test", help="split file under splits/ whose samples are used")
    parser.add_argument("--num-samples", type=int, default=400, help="first N samples of the split")
    parser.add_argument("--focal-noise", type=float, default=0.06, help="std of log(f_est / f)")
    parser.add_argument(
        "--horizon-noise-px", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0], help="std of the horizon-row error"
    )
    parser.add_argument("--step", type=float, default=0.125, help="ground-plane cell size in metres")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> list[dict]:
    arrays = open_cvgl_arrays(args.data_root, ("fx", "fy", "U0", "V0", "pitch", "yworld", "left_img"))
    indices = np.load(split_path(args.data_root, args.split))[: args.num_samples]
    if len(indices) == 0:
        raise ValueError(f"cvgl_focal_cue: split '{args.split}' of {args.data_root} has no samples")
    images = torch.from_numpy(np.ascontiguousarray(arrays["left_img"][indices])).permute(0, 3, 1, 2).float()
    gray = images.mean(1, keepdim=True) / 255.0
    param = {k: torch.from_numpy(np.asarray(arrays[k][indices], dtype=np.float32)) for k in arrays if k != "left_img"}
    height = -param["yworld"]  # the camera centre's Y (down) is minus its height above the ground
    horizon = param["V0"] - param["fy"] * torch.tan(param["pitch"])
    xs = torch.arange(-7.0 + args.step / 2, 7.0, args.step)
    zs = torch.arange(2.0 + args.step / 2, 30.0, args.step)
    rows = []
    for noise_px in args.horizon_noise_px:
        gen = torch.Generator().manual_seed(args.seed)
        ratio = torch.exp(torch.randn(len(indices), generator=gen) * args.focal_noise)
        fx_est, fy_est = param["fx"] * ratio, param["fy"] * ratio
        horizon_est = horizon + torch.randn(len(indices), generator=gen) * noise_px
        pitch_est = torch.atan((param["V0"] - horizon_est) / fy_est)
        measured = []
        for start in range(0, len(indices), 50):
            sl = slice(start, start + 50)
            view, valid = ground_plane_view(
                gray[sl], fx_est[sl], fy_est[sl], param["U0"][sl], param["V0"][sl], pitch_est[sl], height[sl], xs, zs
            )
            measured.append(dash_period_ratio(view[:, 0], valid, args.step, DASH_PERIOD_M, (6.25, 15.0)))
        measured = torch.cat(measured)
        found = ~torch.isnan(measured)
        error = (torch.log(fx_est[found] / measured[found]) - torch.log(param["fx"][found])).abs() * 100
        rows.append(
            {
                "horizon_noise_px": noise_px,
                "f_est_error_pct": float(torch.log(ratio).abs().mean() * 100),
                "median_error_pct": float(error.median()),
                "mean_error_pct": float(error.mean()),
                "within_3pct": float((error < 3).float().mean()),
                "found": float(found.float().mean()),
                "image": f"{images.shape[-1]}x{images.shape[-2]}",
                "samples": len(indices),
            }
        )
    return rows
