"""Training entry point behind ``tools/train.py`` and ``python -m perception_mtl.train``."""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import re
import warnings
import zipfile
from collections.abc import Sequence

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def build_train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a perception_mtl model from a config.")
    parser.add_argument("config", help="path to the config file, e.g. configs/grad_balance/grad_balance_two_task_ew.py")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default ./work_dirs/<config name>)")
    parser.add_argument(
        "--resume",
        nargs="?",
        type=str,
        const="auto",
        help="resume from this checkpoint; without a path, from the latest one in the work dir",
    )
    parser.add_argument("--amp", action="store_true", help="mixed-precision training (needs a GPU)")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config keys, e.g. train_cfg.max_epochs=2 optim_wrapper.optimizer.lr=0.01",
    )
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="job launcher")
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    return parser


def load_config(config: str, cfg_options: dict | None, work_dir: str | None, launcher: str) -> Config:
    """Reads a config, applies ``--cfg-options`` and the work dir / launcher settings."""
    if not osp.isfile(config):
        raise FileNotFoundError(f"config file not found: {config}")
    cfg = Config.fromfile(config)
    if cfg_options:
        warn_unknown_cfg_options(cfg, cfg_options, config)
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(config))[0])
    cfg.launcher = launcher
    _drop_disabled_default_hooks(cfg)
    if launcher != "none":
        _prepare_cpu_distributed(cfg)
    return cfg


def warn_unknown_cfg_options(cfg: Config, cfg_options: dict, config: str = "the config") -> list[str]:
    """Warns about each ``--cfg-options`` key that is not already in the config (a typo would
    otherwise be added as a new key that nothing reads), naming the key, the level where the path
    breaks and close matches there. Returns the unknown keys. Adding a key is still allowed."""
    import difflib

    unknown = []
    for key in cfg_options:
        node, walked = (cfg._cfg_dict if isinstance(cfg, Config) else cfg), []
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                where = ".".join(walked) or "the top level"
                choices = [str(k) for k in node] if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, choices, n=3)
                hint = f"; did you mean {' or '.join(repr('.'.join([*walked, c])) for c in close)}?" if close else ""
                warnings.warn(
                    f"--cfg-options: {key!r} is not in {config} ({where} has no {part!r}){hint} "
                    "It is added as a new key; if nothing reads it, it has no effect.",
                    stacklevel=2,
                )
                unknown.append(key)
                break
            walked.append(part)
    return unknown


# Default hooks MMEngine always registers; ``name=None`` removes one of these.
_MMENGINE_DEFAULT_HOOKS = {"runtime_info", "timer", "sampler_seed", "logger", "param_scheduler", "checkpoint"}


def _drop_disabled_default_hooks(cfg: Config) -> None:
    """Lets ``default_hooks.<name>=None`` switch off the project's extra default hooks (rng_state,
    non_finite_guard) as it does MMEngine's own; MMEngine asserts on None for names it does not know."""
    hooks = cfg.get("default_hooks")
    if not hooks:
        return
    for name in [n for n, h in hooks.items() if h is None and n not in _MMENGINE_DEFAULT_HOOKS]:
        hooks.pop(name)


def _prepare_cpu_distributed(cfg: Config) -> None:
    """Makes a torchrun job work without GPUs.

    MMEngine's pytorch launcher always calls ``torch.cuda.set_device`` and defaults to NCCL, and
    its DDP wrapper passes ``device_ids``, which DDP rejects for CPU modules. So on a CPU-only
    machine we join the process group through gloo ourselves (the Runner then skips its own
    init) and wrap without device ids.
    """
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        return
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False)
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


# Wrappers with an AMP twin that --amp switches to.
_AMP_WRAPPERS = {"OptimWrapper": "AmpOptimWrapper", "GradBalanceOptimWrapper": "GradBalanceAmpOptimWrapper"}


def enable_amp(cfg: Config) -> None:
    import torch

    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper in _AMP_WRAPPERS.values():
        return
    if wrapper not in _AMP_WRAPPERS:
        raise ValueError(f"--amp: optim_wrapper.type is {wrapper!r}; set AMP in that wrapper's config instead")
    if wrapper == "OptimWrapper" and not torch.cuda.is_available():
        raise RuntimeError("--amp needs a CUDA device (MMEngine's AmpOptimWrapper is GPU-only); none is available")
    cfg.optim_wrapper.type = _AMP_WRAPPERS[wrapper]
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def _is_whole_checkpoint(path: str) -> bool:
    """A torch zip checkpoint whose central directory is intact (a truncated write loses it)."""
    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def find_resume_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` (no path) continues from.

    ``last_checkpoint`` names it; when that file is missing, empty or names a missing or broken
    checkpoint, the newest whole ``epoch_*.pth`` / ``iter_*.pth`` in ``work_dir`` is used, with a
    warning. With none, an error: silently training from scratch would look like a resume.
    """
    pointer = osp.join(work_dir, "last_checkpoint")
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is not None and not osp.isabs(named) and not osp.isfile(named):
            named = osp.join(work_dir, osp.basename(named))
        if named is not None and _is_whole_checkpoint(named):
            return named
    candidates = [
        p for p in glob.glob(osp.join(work_dir, "*.pth")) if re.fullmatch(r"(epoch|iter)_\d+\.pth", osp.basename(p))
    ]
    candidates.sort(key=lambda p: (osp.getmtime(p), int(re.findall(r"\d+", osp.basename(p))[0])), reverse=True)
    for path in candidates:
        if _is_whole_checkpoint(path):
            why = "is missing" if not osp.isfile(pointer) else f"names {named!r}" if named else "is empty"
            warnings.warn(f"--resume: {pointer} {why}; resuming from the newest whole checkpoint {path}", stacklevel=2)
            return path
    raise FileNotFoundError(
        f"--resume: no checkpoint to resume from in work dir {work_dir} "
        "(no last_checkpoint and no whole epoch_*.pth / iter_*.pth); drop --resume to train from scratch"
    )


def train(args: argparse.Namespace) -> Runner:
    """Builds the runner from parsed arguments and trains; returns the runner."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"--resume: checkpoint not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def leave_process_group() -> None:
    """Frees what still talks over the torchrun process group, then destroys the group.

    A gloo group (or a DDP wrapper whose reducer still holds gloo work) left for interpreter
    shutdown can abort a rank with "terminate called without an active exception" (pytorch#190489),
    failing a run that had finished. The Runner sits in reference cycles, so its DDP model is only
    freed by the cycle collector: collect before destroying, while the interpreter is fully alive.
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> None:
    args = build_train_parser().parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    runner = train(args)
    del runner  # the DDP model must go before the process group does (leave_process_group)
    leave_process_group()
