"""Training-step time with channels-last conv weights (``ChannelsLastHook``) vs the default layout,
and with channels-last plus a bfloat16 forward (``BFloat16OptimWrapper``).

Each config's model is built twice from the same weights, one copy converted with
``convert_conv_weights_to_channels_last``; the default copy, the converted copy and the converted
copy under ``torch.autocast(bfloat16)`` take forward + backward on the same batches from the
config's own training dataloader, round-robin in one process (so machine noise hits all three).
A row has the median step times of the channels-last variants divided by the default's, the largest
relative difference of the summed loss from the default's (the layout must not change the maths;
bfloat16 rounds to ~3 significant digits), and whether the CPU has bfloat16 units (without them
bfloat16 is emulated and slower).
On a CPU the clock is this process's CPU time (one intra-op thread by default).
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from perception_mtl.engine.hooks.channels_last_hook import convert_conv_weights_to_channels_last
from perception_mtl.registry import MODELS

from . import track

DESCRIPTION = "channels-last conv weights, alone and with a bfloat16 forward: train-step time vs the default (ratios)"

DEFAULT_CONFIGS = (
    "configs/ugcl/ugcl_calib_demo.py",
    "configs/mos/mos_face_pose_demo.py",
    "configs/bevfusion/bevfusion_fusion_demo.py",
)


def add_arguments(parser) -> None:
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), help="configs to time")
    parser.add_argument("--batches", type=int, default=2, help="distinct training batches per config")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the batches")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, default={}, help="KEY=VALUE overrides for every config"
    )


def _summed_loss(model, batch) -> torch.Tensor:
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode="loss")
    return sum(v.sum() for k, v in losses.items() if "loss" in k and isinstance(v, torch.Tensor))


def _batches(cfg: Config, count: int) -> list:
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    batches, loader = [], iter(Runner.build_dataloader(loader_cfg, seed=0))
    for _ in range(count):
        batches.append(next(loader))
    return batches


def time_config(path: str, batches: int, repeats: int, options: dict | None = None) -> dict:
    """One table row for the config at ``path``."""
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    torch.manual_seed(0)
    default = MODELS.build(cfg.model)
    default.init_weights()
    default.train()
    channels_last = copy.deepcopy(default)
    converted = convert_conv_weights_to_channels_last(channels_last)
    data = _batches(cfg, batches)
    variants = (("default", default, False), ("channels_last", channels_last, False), ("bf16", channels_last, True))
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    diffs = {"channels_last": 0.0, "bf16": 0.0}
    for repeat in track(range(repeats + 1), f"channels_last {path}: warm-up + {repeats} rounds"):  # 0 warms up
        for batch in data:
            losses = {}
            for name, model, bf16 in variants:
                model.zero_grad(set_to_none=True)
                start = time.process_time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = _summed_loss(model, batch)
                loss.backward()
                elapsed = time.process_time() - start
                losses[name] = loss.item()
                if repeat:
                    times[name].append(elapsed)
            scale = max(abs(losses["default"]), 1e-12)
            for name in diffs:
                diffs[name] = max(diffs[name], abs(losses["default"] - losses[name]) / scale)
    base = statistics.median(times["default"])
    return dict(
        config=path.rsplit("/", 1)[-1],
        conv_weights=converted,
        step_ms_default=1000 * base,
        step_vs_default=statistics.median(times["channels_last"]) / base,
        loss_rel_diff=diffs["channels_last"],
        bf16_step_vs_default=statistics.median(times["bf16"]) / base,
        bf16_loss_rel_diff=diffs["bf16"],
        cpu_bf16_units=_cpu_has_bf16(),
    )


def _cpu_has_bf16() -> bool:
    """True when the CPU advertises AVX512-BF16 or AMX (Linux /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run(args) -> list[dict]:
    torch.set_num_threads(args.threads)
    return [time_config(path, args.batches, args.repeats, args.cfg_options) for path in args.configs]
