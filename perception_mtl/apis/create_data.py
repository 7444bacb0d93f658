"""Dataset preparation behind ``tools/create_data.py``.

``synthetic``: generate the synthetic nuScenes-format dataset (and its info files).
``nuscenes``: write info files for a (real or synthetic) nuScenes root.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence


def build_create_data_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Prepare datasets: synthetic nuScenes, or info files for nuScenes.")
    sub = parser.add_subparsers(dest="dataset", required=True)

    syn = sub.add_parser("synthetic", help="generate a synthetic dataset in nuScenes' on-disk format")
    syn.add_argument("--out-dir", required=True, help="dataset root to create, e.g. data/synthetic_nuscenes")
    syn.add_argument("--scenes", type=int, default=10, help="number of scenes (<= 10: v1.0-mini names)")
    syn.add_argument("--samples-per-scene", type=int, default=40, help="key frames per scene (2 Hz; 40 = 20 s)")
    syn.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same dataset)")
    syn.add_argument("--sweeps-per-sample", type=int, default=2, help="non-key LiDAR sweeps between key frames")
    syn.add_argument("--image-width", type=int, default=400, help="camera width in pixels (height = 9/16)")
    syn.add_argument("--workers", type=int, default=None, help="parallel processes (default: up to 2)")
    syn.add_argument("--no-occupancy", action="store_true", help="skip the Occ3D labels")
    syn.add_argument("--no-gt-database", action="store_true", help="skip the object database for copy-paste aug")

    nus = sub.add_parser("nuscenes", help="write mmdet3d-v2 info files for a nuScenes-format root")
    nus.add_argument("--root", required=True, help="dataset root (holds v1.0-*/, samples/, sweeps/, maps/)")
    nus.add_argument("--version", default="v1.0-trainval", choices=["v1.0-mini", "v1.0-trainval", "v1.0-test"])
    nus.add_argument("--out-dir", default=None, help="where to write the .pkl files (default: the root)")
    nus.add_argument("--max-sweeps", type=int, default=10, help="LiDAR sweeps per sample")
    nus.add_argument("--skip-bad", action="store_true", help="skip bad samples with a warning instead of failing")

    faces = sub.add_parser("faces", help="generate synthetic faces (RetinaFace label.txt + pose, AFLW2000 .mat)")
    faces.add_argument("--out-dir", required=True, help="dataset root to create, e.g. data/synthetic_faces")
    faces.add_argument("--num-train", type=int, default=2000, help="training images")
    faces.add_argument("--num-val", type=int, default=200, help="validation images (disjoint seeds)")
    faces.add_argument("--num-pose-eval", type=int, default=100, help="AFLW2000-style pose images (.jpg + .mat)")
    faces.add_argument("--img-size", type=int, default=192, help="square image side in pixels")
    faces.add_argument("--max-faces", type=int, default=6, help="faces per detection image (1..N)")
    faces.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same dataset)")

    cvgl = sub.add_parser("cvgl", help="render synthetic road stereo pairs in the CVGL .npy layout (UGCL)")
    cvgl.add_argument("--out-dir", required=True, help="dataset root to create, e.g. data/synthetic_cvgl")
    cvgl.add_argument("--num-samples", type=int, default=8000, help="stereo pairs (train + test)")
    cvgl.add_argument("--width", type=int, default=128, help="image width in pixels")
    cvgl.add_argument("--height", type=int, default=96, help="image height in pixels")
    cvgl.add_argument("--test-ratio", type=float, default=0.2, help="share of pairs in the shuffled test split")
    cvgl.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same dataset)")
    cvgl.add_argument("--workers", type=int, default=2, help="rendering processes")
    cvgl.add_argument(
        "--supersample", type=int, default=1, help="S: S x S rays per pixel, averaged (anti-aliased edges and texture)"
    )
    return parser


def create_synthetic(args: argparse.Namespace) -> dict:
    from perception_mtl.synthetic.driving.synthetic_nuscenes_writer import SyntheticNuScenesWriter

    writer = SyntheticNuScenesWriter(
        args.out_dir,
        num_scenes=args.scenes,
        samples_per_scene=args.samples_per_scene,
        seed=args.seed,
        sweeps_per_sample=args.sweeps_per_sample,
        image_width=args.image_width,
        workers=args.workers,
        with_occupancy=not args.no_occupancy,
        with_gt_database=not args.no_gt_database,
    )
    summary = writer.run()
    print(json.dumps(summary, indent=2))
    return summary


def create_nuscenes_infos(args: argparse.Namespace) -> dict:
    from perception_mtl.datasets.converters.nuscenes_info_converter import NuScenesInfoConverter

    converter = NuScenesInfoConverter(
        args.root, args.version, args.out_dir or args.root, args.max_sweeps, skip_bad=args.skip_bad
    )
    report = converter.run()
    for path, count in report.files.items():
        print(f"{path}: {count} samples")
    if report.skipped:
        print(f"skipped {len(report.skipped)} bad samples")
    return {"files": report.files, "skipped": len(report.skipped)}


def create_faces(args: argparse.Namespace) -> dict:
    from perception_mtl.synthetic.faces import SyntheticFaceWriter

    writer = SyntheticFaceWriter(
        args.out_dir, args.num_train, args.num_val, args.num_pose_eval, args.img_size, args.max_faces, seed=args.seed
    )
    summary = writer.run(progress=True)
    print(json.dumps(summary, indent=2))
    return summary


def create_cvgl(args: argparse.Namespace) -> dict:
    from perception_mtl.synthetic.stereo import SyntheticCVGLWriter

    writer = SyntheticCVGLWriter(
        args.out_dir,
        args.num_samples,
        args.width,
        args.height,
        args.test_ratio,
        seed=args.seed,
        workers=args.workers,
        supersample=args.supersample,
    )
    meta = writer.run(progress=True)
    print(json.dumps({k: meta[k] for k in ("num_written", "split_sizes", "seconds")}, indent=2))
    return meta


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_create_data_parser().parse_args(argv)
    if args.dataset == "cvgl":
        return create_cvgl(args)
    if args.dataset == "faces":
        return create_faces(args)
    if args.dataset == "synthetic":
        return create_synthetic(args)
    return create_nuscenes_infos(args)
