"""Evaluation entry point behind ``tools/test.py`` and ``python -m perception_mtl.test``."""

from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
from collections.abc import Sequence

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from .train import leave_process_group, load_config


def build_test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a perception_mtl checkpoint on a config's test set.")
    parser.add_argument("config", help="path to the config file")
    parser.add_argument("checkpoint", help="checkpoint file to evaluate")
    parser.add_argument("--work-dir", help="where logs and test_metrics.json go (default ./work_dirs/<config name>)")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config keys, e.g. test_dataloader.batch_size=1",
    )
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="job launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    return parser


def _jsonable(value):
    """Metric values as plain JSON (numpy scalars -> float, NaN -> null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def test(args: argparse.Namespace) -> dict:
    """Evaluates ``args.checkpoint``; writes and returns the metrics dict."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if is_main_process():
        path = osp.join(cfg.work_dir, "test_metrics.json")
        with open(path, "w") as f:
            json.dump(_jsonable(metrics), f, indent=2, sort_keys=True)
        runner.logger.info(f"test metrics written to {path}")
    return metrics


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_test_parser().parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    result = test(args)
    leave_process_group()
    return result
