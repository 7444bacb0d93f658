"""MOS face network: CPU latency (eager, batch 1), parameters and FLOPs per variant.

Rows (randomly initialised, nothing downloaded): ``MOS-M`` (MobileNetV2-1.0, 128-wide angle
predictors, cross-stitch units; ``configs/mos/mos_face_pose.py``), the same without cross-stitch units,
the demo model (MobileNetV2-0.5, ``configs/mos/mos_face_pose_demo.py``), and a ViT-MoE backbone variant
(patch 16, D=192, 6 blocks, 8 experts top-2 with a task-agnostic router). Latency is the median of
``--repeats`` timed ``head_forward`` calls (raw outputs for all priors, no decoding / NMS); the
variants are timed in turn, round after round, so load changes on a shared machine hit each alike,
and ``latency_vs_mos_m`` is the ratio to MOS-M in the same run. FLOPs come from
mmengine.analysis (one multiply-add = one FLOP). One torch thread by default (``--threads``).
"""

from __future__ import annotations

import time
import warnings

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from . import track

DESCRIPTION = "MOS face net: CPU eager latency (batch 1), params and FLOPs at 640x640 per variant"


def add_arguments(parser) -> None:
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (median)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: stable timings on a shared machine; 0: keep)"
    )
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (a traced forward per variant)")


def _model_cfg(backbone: dict, pose_channels: int = 128, cross_stitch: bool = True) -> dict:
    return dict(
        type="MOSFaceNet",
        backbone=backbone,
        neck=dict(type="FPNSSH", out_channels=64),
        head=dict(type="FacePoseHead", stitch_channels=64, pose_channels=pose_channels, cross_stitch=cross_stitch),
    )


def _variants(img_size: int) -> list[tuple[str, dict]]:
    mbv2 = dict(type="TimmBackbone", model_name="mobilenetv2_100", out_indices=(2, 3, 4))
    vit = dict(
        type="ViTMoE",
        img_size=img_size,
        patch_size=16,
        embed_dim=192,
        depth=6,
        num_heads=3,
        moe_cfg=dict(num_experts=8, top_k=2, router=dict(type="NoisyTopKGate")),
        out_indices=(1, 3, 5),
        feature_scales=(2.0, 1.0, 0.5),
    )
    return [
        ("MOS-M (MobileNetV2-1.0)", _model_cfg(mbv2)),
        ("MOS-M without cross-stitch", _model_cfg(mbv2, cross_stitch=False)),
        ("demo (MobileNetV2-0.5)", _model_cfg(dict(mbv2, model_name="mobilenetv2_050"), pose_channels=64)),
        ("ViT-MoE backbone (E=8, k=2)", _model_cfg(vit)),
    ]


class _HeadForward(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.head_forward(img).values())


def _flops(module: nn.Module, img: torch.Tensor) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = FlopAnalyzer(module, (img,))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return float(analyzer.total())


def _measure(args) -> list[dict]:
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import MODELS

    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    img = torch.randn(args.batch, 3, args.img_size, args.img_size)
    variants = [(name, _HeadForward(MODELS.build(cfg)).eval()) for name, cfg in _variants(args.img_size)]
    times: list[list[float]] = [[] for _ in variants]
    with torch.inference_mode():
        rounds = max(1, args.repeats) + 1
        for round_ in track(range(rounds), f"mos: {rounds} rounds of {len(variants)} models (round 0 warms up)"):
            for i, (_, module) in enumerate(variants):
                start = time.perf_counter()
                module(img)
                if round_:
                    times[i].append(time.perf_counter() - start)
    medians = [sorted(t)[len(t) // 2] for t in times]
    rows = []
    for (name, module), sec in zip(variants, medians):
        row = dict(
            model=name,
            img=f"{args.img_size}x{args.img_size}",
            threads=torch.get_num_threads(),
            latency_ms=1000.0 * sec,
            latency_vs_mos_m=sec / medians[0],
            params_M=sum(p.numel() for p in module.parameters()) / 1e6,
        )
        if not args.no_flops:
            row["gflops"] = _flops(module, img) / 1e9
        rows.append(row)
    return rows


def run(args) -> list[dict]:
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return _measure(args)
    finally:
        torch.set_num_threads(threads)
