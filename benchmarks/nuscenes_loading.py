"""Data-loading throughput of NuScenesMTLDataset's training pipeline with 0, 1 and 2 workers."""

import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS

from . import track

DESCRIPTION = "nuScenes MTL loading: samples/s of the training pipeline at 0/1/2 workers (one run)"


def add_arguments(parser) -> None:
    parser.add_argument("--data-root", default="data/synthetic_nuscenes/")
    parser.add_argument("--ann-file", default="nuscenes_infos_train.pkl")
    parser.add_argument("--config", default="configs/_base_/datasets/nuscenes_mtl.py", help="dataset config")
    parser.add_argument("--image-size", type=int, nargs=2, default=(128, 352), help="H W after augmentation")
    parser.add_argument("--samples", type=int, default=24, help="samples timed per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=(0, 1, 2))


def _dataset(args):
    cfg = Config.fromfile(args.config)
    pipeline = []
    for step in cfg.train_pipeline:
        step = dict(step)
        if step["type"] == "MultiViewImageAug":
            step["final_size"] = tuple(args.image_size)
        if step["type"] == "LoadBEVMapSegmentation":
            step["data_root"] = args.data_root
        pipeline.append(step)
    return DATASETS.build(
        dict(type="NuScenesMTLDataset", data_root=args.data_root, ann_file=args.ann_file, pipeline=pipeline)
    )


def run(args) -> list[dict]:
    init_default_scope("perception_mtl")
    dataset = _dataset(args)
    rows, base = [], None
    for workers in track(args.workers, f"nuscenes_loading: {args.samples} samples per worker setting"):
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=1, shuffle=True, num_workers=workers, collate_fn=pseudo_collate
        )
        iterator = iter(loader)
        next(iterator)  # worker start-up and first-map load are not throughput
        start, seen = time.perf_counter(), 0
        while seen < args.samples:
            try:
                next(iterator)
            except StopIteration:
                iterator = iter(loader)
                continue
            seen += 1
        rate = seen / (time.perf_counter() - start)
        base = base or rate
        rows.append(dict(workers=workers, samples_per_s=rate, vs_0_workers=rate / base))
    return rows
