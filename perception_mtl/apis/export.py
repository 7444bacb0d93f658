"""ONNX export entry point behind ``tools/export_onnx.py`` (the logic is in :mod:`perception_mtl.deploy`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmengine.config import DictAction


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Export a perception_mtl model to ONNX at its export boundaries, with manifest.json."
    )
    parser.add_argument("config", help="path to the config file")
    parser.add_argument("checkpoint", help="checkpoint whose weights are exported")
    parser.add_argument("--out-dir", required=True, help="directory for the .onnx graphs and manifest.json")
    parser.add_argument("--tasks", help="comma-separated heads to export (default: all of the model's), e.g. det,map")
    parser.add_argument(
        "--sparse", metavar="TASK", help="export the single-task model extracted from an MoE model for TASK"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--fixed-rig",
        action="store_true",
        help="bake the BEV-pool plan of the test set's first sample into the camera graph (one rig only)",
    )
    parser.add_argument("--verify", action="store_true", help="compare PyTorch and ONNX Runtime on a few test samples")
    parser.add_argument("--verify-samples", type=int, default=3, help="test samples for --verify (default 3)")
    parser.add_argument(
        "--no-tensorrt-check",
        action="store_true",
        help="write graphs even when TensorRT 10's parser could not build them (violations stay in the manifest)",
    )
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    from perception_mtl.deploy.export import export
    from perception_mtl.deploy.verify import format_diffs, verify

    args = build_export_parser().parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else None
    manifest = export(
        args.config,
        args.checkpoint,
        args.out_dir,
        tasks=tasks,
        opset=args.opset,
        fixed_rig=args.fixed_rig,
        cfg_options=args.cfg_options,
        strict_tensorrt=not args.no_tensorrt_check,
        sparse=args.sparse,
    )
    for name, graph in manifest["graphs"].items():
        trt = "TensorRT 10 ok" if graph["tensorrt10"]["ok"] else f"TensorRT 10: {graph['tensorrt10']['violations']}"
        shapes = ", ".join(f"{i['name']}{i['shape']}" for i in graph["inputs"])
        print(f"{name}: {graph['file']} ({shapes}); {trt}")
    print(f"manifest: {args.out_dir}/manifest.json")
    if args.verify:
        diffs = verify(args.config, args.checkpoint, args.out_dir, args.verify_samples, args.cfg_options)
        print(format_diffs(diffs, tolerance=1e-4))
        manifest["verify"] = diffs
    return manifest
