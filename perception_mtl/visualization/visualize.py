"""``python tools/visualize.py CONFIG [CHECKPOINT] --out DIR [--samples N] [--split val]``: PNG pictures of
a config's samples with their ground truth and, given a checkpoint, the model's predictions.

The dataset and model are built from the config through the registries (scope ``default_scope``) as
``tools/test.py`` builds them; a checkpoint must match the model exactly (``check_checkpoint_fits``).
Without a checkpoint no model runs and the pictures say "ground truth only".
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from collections.abc import Sequence

import cv2
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
from mmengine.utils import ProgressBar

from perception_mtl.registry import DATASETS, MODELS

from .sample_visualizer import SampleVisualizer

SPLITS = ("train", "val", "test")


def build_visualize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Draw a config's samples (ground truth, predictions) as PNGs.")
    parser.add_argument("config", help="path to the config file")
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint to predict with (omit: GT only)")
    parser.add_argument("--out", required=True, help="folder for the PNGs (created)")
    parser.add_argument("--samples", type=int, default=4, help="how many samples, from the first (default 4)")
    parser.add_argument("--split", choices=SPLITS, default="val", help="which <split>_dataloader's dataset")
    parser.add_argument("--score-thr", type=float, default=None, help="hide predictions below (0.3 boxes, 0.5 faces)")
    parser.add_argument("--occ-height", type=float, default=0.4, help="height (m, ego frame) of the occupancy slice")
    parser.add_argument("--scale", type=int, default=None, help="integer image upscaling (2 cameras/faces, 3 stereo)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, e.g. a=1 b.c=2")
    return parser


def build_dataset(cfg: Config, split: str):
    """The dataset of ``cfg['<split>_dataloader']``; fails naming the key when the config has none."""
    key = f"{split}_dataloader"
    loader = cfg.get(key)
    if not loader or not loader.get("dataset"):
        have = [s for s in SPLITS if cfg.get(f"{s}_dataloader")]
        raise KeyError(f"config {cfg.filename} has no {key}.dataset (it has dataloaders for {have}); pick --split")
    return DATASETS.build(loader["dataset"])


def build_model(cfg: Config, checkpoint: str) -> torch.nn.Module:
    """``cfg.model`` with the checkpoint's weights (strict: names and shapes must match), in eval mode."""
    from perception_mtl.apis.test import check_checkpoint_fits

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    model = MODELS.build(cfg.model)
    check_checkpoint_fits(model, _load_checkpoint(checkpoint, map_location="cpu"), checkpoint)
    load_checkpoint(model, checkpoint, map_location="cpu", strict=True)
    return model.eval()


def visualize(args: argparse.Namespace) -> list[str]:
    """Writes ``<out>/<index>_<picture>.png`` for the first ``args.samples`` samples; returns the paths."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f"config file not found: {args.config}")
    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1, got {args.samples}")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    dataset = build_dataset(cfg, args.split)
    model = build_model(cfg, args.checkpoint) if args.checkpoint else None
    drawer = SampleVisualizer.from_config(cfg, args.split, args.score_thr, args.occ_height, args.scale)
    what = f"GT + predictions of {osp.basename(args.checkpoint)}" if model else "ground truth only (no checkpoint)"
    os.makedirs(args.out, exist_ok=True)
    count = min(args.samples, len(dataset))
    print(f"drawing {count} {args.split} samples of {osp.basename(args.config)} into {args.out}: {what}")
    written = []
    bar = ProgressBar(count, file=sys.stdout)
    for index in range(count):
        item = dataset[index]
        if item is None:
            raise RuntimeError(f"{args.split} sample {index} of {args.config} could not be loaded")
        sample = item["data_samples"]
        if model is not None:
            with torch.no_grad():
                sample = model.test_step(pseudo_collate([item]))[0]
        token = sample.metainfo.get("token", sample.metainfo.get("sample_idx", index))
        header = f"{osp.basename(args.config)} | {args.split} #{index} ({token}) | {what}"
        for name, picture in drawer.draw(item["inputs"], sample, header).items():
            path = osp.join(args.out, f"{index:04d}_{name}.png")
            if not cv2.imwrite(path, picture):
                raise OSError(f"could not write {path}")
            written.append(path)
        bar.update()
    sys.stdout.write("\n")
    return written


def main(argv: Sequence[str] | None = None) -> list[str]:
    return visualize(build_visualize_parser().parse_args(argv))
