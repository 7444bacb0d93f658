"""M3Net's task-routed MoE BEV decoder: parameters, FLOPs and CPU latency of the full model, of each
extracted single-task model and of the TCS model, on a real batch of the synthetic data.

``python tools/benchmark.py bev_moe [--config ...] [--tcs-config ...] [--data-root data/synthetic_nuscenes]``

Rows: the TCS model (``m3net_nuscenes_demo.py``: one decoder pass shared by the heads), the MoE model
(``m3net_moe_demo.py``: one decoder pass per task) with every expert computed on every cell (dense
dispatch, the all-expert reference) and with top-k dispatch, and ``extract_task_model(moe, task)`` for
each task. Both models are randomly initialised (routing then spreads over experts as at the start of
training; FLOPs do not depend on the weights). FLOPs are counted by ``torch.utils.flop_counter`` on the
forward in ``mode='tensor'`` (convolutions and matrix products; the whole model and its decoder);
``expert`` is the MoE layers' feed-forward FLOPs without their routers. The target of the tracker's
MoE issue is checked per task: the extracted decoder's expert FLOPs are at most ``k/E`` of the
all-expert decoder's for that task's pass (plus its router, listed apart). Latency is the median
process CPU time of a forward with one intra-op thread, the settings timed round-robin, as a ratio to
the full MoE model (top-k dispatch). Two more rows time a training step (forward, each task's backward for
FULLER, the update) of the TCS and the MoE model with their configs' optimiser wrappers, as a ratio to the
TCS step: how much longer the MoE demo trains on the same schedule, and so which of its epochs matches the
TCS demo's wall time.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing import config_path

from . import track, train_step_timer
from .m3net_step import load_config

DESCRIPTION = "M3Net MoE decoder: params, FLOPs, CPU latency of the full and the extracted single-task models"


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=str(config_path("m3net_moe_demo.py")))
    parser.add_argument("--tcs-config", default=str(config_path("m3net_nuscenes_demo.py")))
    parser.add_argument("--data-root", default="data/synthetic_nuscenes", help="synthetic nuScenes-format data")
    parser.add_argument("--batch", type=int, default=1, help="samples per forward")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--train-repeats", type=int, default=5, help="timed training steps per model (0: none)")


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _flops(model: nn.Module, inputs: dict) -> dict[str, float]:
    """Whole-model, decoder, MoE expert and router FLOPs of one ``mode='tensor'`` forward."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs, mode="tensor")
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    moe_layers = [n for n in counts if n.startswith(f"{root}.decoder.backbone.moes.") and n.count(".") == 4]
    router = sum(counts.get(f"{n}.router", 0) for n in moe_layers)
    return dict(
        total=float(counter.get_total_flops()),
        decoder=float(sum(counts.get(f"{root}.decoder.{part}", 0) for part in ("backbone", "neck"))),
        expert=float(sum(counts[n] for n in moe_layers) - router),
        router=float(router),
    )


def _latencies(settings: list[tuple[nn.Module, str | None]], inputs: dict, repeats: int) -> list[float]:
    from perception_mtl.models.moe import set_moe_dispatch

    times: list[list[float]] = [[] for _ in settings]
    with torch.no_grad():
        for round_ in track(range(repeats + 1), f"bev_moe: {repeats + 1} rounds of {len(settings)} models"):
            for i, (model, dispatch) in enumerate(settings):
                if dispatch is not None:
                    set_moe_dispatch(model, dispatch)
                start = time.process_time()
                model(inputs, mode="tensor")
                if round_:  # round 0 warms up
                    times[i].append(time.process_time() - start)
    return [statistics.median(t) for t in times]


def _train_step_rows(configs: dict[str, Config], batch: dict, repeats: int) -> list[dict]:
    """Median process CPU time of a training step per model (one warm-up step, then round-robin), as a
    ratio to the first model's."""
    step = train_step_timer(torch.device("cpu"))
    runs = []
    for name, cfg in configs.items():
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).train()  # random weights: a step's cost does not depend on them
        wrapper = copy.deepcopy(cfg.optim_wrapper)
        wrapper.optimizer = torch.optim.AdamW(model.parameters(), lr=wrapper.optimizer.lr)
        runs.append((name, model, OPTIM_WRAPPERS.build(wrapper), []))
    for round_ in track(range(repeats + 1), f"bev_moe: {repeats + 1} training steps of {len(runs)} models"):
        for _, model, wrapper, times in runs:
            seconds = step(model, wrapper, batch)
            if round_:
                times.append(seconds)
    reference = statistics.median(runs[0][3])
    return [
        dict(setting=f"{name} train step", tasks="all", train_step_vs_tcs=statistics.median(t) / reference)
        for name, _, _, t in runs
    ]


def run(args) -> list[dict]:
    from perception_mtl.models.moe import extract_task_model, moe_layers, set_moe_dispatch

    init_default_scope("perception_mtl")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config, args.data_root)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        torch.manual_seed(0)
        moe = MODELS.build(cfg.model).eval()
        tcs = MODELS.build(load_config(args.tcs_config, args.data_root).model).eval()
        inputs = moe.data_preprocessor(pseudo_collate([dataset[i] for i in range(args.batch)]), False)["inputs"]
        layer = moe_layers(moe)[0][1]
        k, experts = layer.top_k, layer.num_experts
        singles = {task: extract_task_model(moe, task) for task in moe.tasks}

        settings = [("TCS (shared decoder pass)", tcs, None, "all"), ("MoE all experts (dense)", moe, "dense", "all")]
        settings += [("MoE top-k", moe, "bucketed", "all")]
        settings += [(f"MoE extracted {t}", m, None, t) for t, m in singles.items()]
        flops = []
        for _, model, dispatch, _ in settings:
            if dispatch is not None:
                set_moe_dispatch(model, dispatch)
            flops.append(_flops(model, inputs))
        seconds = _latencies([(m, d) for _, m, d, _ in settings], inputs, args.repeats)
        set_moe_dispatch(moe, "bucketed")

        dense_expert_per_task = flops[1]["expert"] / len(moe.tasks)  # every pass routes the same cells
        rows = []
        for (name, model, _, tasks), flop, sec in zip(settings, flops, seconds):
            row = dict(
                setting=name,
                tasks=tasks,
                params_M=_params(model) / 1e6,
                decoder_params_M=_params(model.decoder) / 1e6,
                gflops=flop["total"] / 1e9,
                decoder_gflops=flop["decoder"] / 1e9,
                expert_mflops=flop["expert"] / 1e6,
                router_mflops=flop["router"] / 1e6,
                latency_vs_moe=sec / seconds[2],
            )
            if name.startswith("MoE extracted"):
                ratio = flop["expert"] / dense_expert_per_task
                met = ratio <= k / experts + 1e-9
                row.update(expert_vs_all_expert=ratio, target=f"<= k/E = {k}/{experts}", met=met)
            rows.append(row)
        if args.train_repeats:
            train_batch = pseudo_collate([dataset[i] for i in range(args.batch)])
            configs = {"TCS": load_config(args.tcs_config, args.data_root), "MoE top-k": cfg}
            rows += _train_step_rows(configs, train_batch, args.train_repeats)
        return rows
    finally:
        torch.set_num_threads(threads)
