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
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from perception_mtl.engine.hooks.atomic_checkpoint_hook import atomic_write

from .train import leave_process_group, load_config


def build_test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a perception_mtl checkpoint on a config's test set.")
    parser.add_argument("config", help="path to the config file")
    parser.add_argument(
        "checkpoint", nargs="?", help="checkpoint file to evaluate (not needed with --backend onnxruntime)"
    )
    parser.add_argument(
        "--backend",
        choices=["pytorch", "onnxruntime"],
        default="pytorch",
        help="run the PyTorch model, or the ONNX export in --onnx-dir through ONNX Runtime (same metrics)",
    )
    parser.add_argument("--onnx-dir", help="export directory (manifest.json + graphs) for --backend onnxruntime")
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


def check_checkpoint_fits(model: nn.Module, checkpoint: dict, path: str, shown: int = 5) -> None:
    """Raises when the checkpoint's weights are not exactly the model's (names and shapes).

    MMEngine loads non-strictly and only warns, so another model's checkpoint was evaluated with
    random weights. Lists the first ``shown`` keys of each kind with their counts.
    """
    if is_model_wrapper(model):
        model = model.module
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds no state dict (a {type(checkpoint).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(getattr(state[k], 'shape', ()))} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]
    problems = [
        f"{len(keys)} {what} (e.g. {', '.join(keys[:shown])}{', ...' if len(keys) > shown else ''})"
        for what, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            f"checkpoint {path} does not match the model ({type(model).__name__}): "
            + "; ".join(problems)
            + f"; the model has {len(expected)} keys, the checkpoint {len(state)}"
        )


def test(args: argparse.Namespace) -> dict:
    """Evaluates ``args.checkpoint`` (or, with ``--backend onnxruntime``, the export in ``args.onnx_dir``);
    writes and returns the metrics dict."""
    backend = getattr(args, "backend", "pytorch")
    if backend == "onnxruntime":
        if not getattr(args, "onnx_dir", None):
            raise ValueError("--backend onnxruntime needs --onnx-dir (the directory tools/export_onnx.py wrote)")
    elif args.checkpoint is None:
        raise ValueError("a checkpoint is required with --backend pytorch")
    elif not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = None  # loaded below, strictly
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    if backend == "onnxruntime":
        from perception_mtl.deploy.ort_runner import ORTModel

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        runner.model = ORTModel(model, args.onnx_dir, cfg)  # weights come from the graphs
        runner.logger.info(f"evaluating the ONNX export in {args.onnx_dir} with ONNX Runtime")
    else:
        check_checkpoint_fits(runner.model, _load_checkpoint(args.checkpoint, map_location="cpu"), args.checkpoint)
        runner.load_checkpoint(args.checkpoint, map_location="cpu")
    metrics = runner.test()
    if is_main_process():
        path = osp.join(cfg.work_dir, "test_metrics.json")
        text = json.dumps(_jsonable(metrics), indent=2, sort_keys=True)
        atomic_write(path, lambda f: f.write(text.encode()))
        runner.logger.info(f"test metrics written to {path}")
    return metrics


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_test_parser().parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    result = test(args)
    leave_process_group()
    return result
