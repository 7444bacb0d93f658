"""M³ViT MoE: what sparse single-task inference saves, and how a trained model uses its experts.

``--table cost`` (default) builds a multi-task ViT-MoE (seg + depth + edge heads; E=16, top-4 by
default) and its dense twin of equal active parameters, both randomly initialised, and reports
per setting the FLOPs (mmengine.analysis, one multiply-add = one FLOP), the CPU latency and the
parameter counts:

- ``dense all-task``: every task's output from the full MoE model with every expert computed for
  every token (the dense all-experts mixture an MoE costs without sparse dispatch), one backbone
  pass per task because routing is task-conditioned. This is the reference (ratio 1).
- ``sparse all-task``: the same outputs with expert-bucketed dispatch (k experts per token).
- ``sparse single-task``: ``extract_task_model(model, task)``: one backbone pass with that task's
  router and experts, one head.
- ``dense ViT all-task`` / ``dense ViT single-task``: the dense ViT whose MLPs have the same
  parameters as k experts (one shared pass for all tasks), for context.

Latency is a ratio to the reference measured in the same run, the settings timed in turn round
after round (shared machines are noisy), with one torch thread by default (``--threads``).

``--table load --config C --checkpoint K`` reports a trained model's expert load per layer and
task on validation scenes: each expert's share of routed slots (%), the normalised gate entropy,
the zero-activation rate, and how many experts hold 90% / 99% of the task's routed slots (what a
pruned single-task extraction at that coverage would keep).
"""

from __future__ import annotations

import time
import warnings

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from . import track

DESCRIPTION = "M3ViT MoE: FLOPs/latency/params of dense all-task vs sparse single-task inference; expert load table"

TASKS = ("seg", "depth", "edge")


def add_arguments(parser) -> None:
    parser.add_argument("--table", choices=("cost", "load"), default="cost", help="which table to print")
    parser.add_argument("--experts", type=int, default=16, help="E")
    parser.add_argument("--top-k", type=int, default=4, help="k")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--embed-dim", type=int, default=384)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--num-heads", type=int, default=6)
    parser.add_argument("--moe-mlp-ratio", type=float, default=1.0, help="expert hidden width / D")
    parser.add_argument(
        "--router", choices=("PerTaskRouter", "TaskConditionedRouter"), default="PerTaskRouter", help="router type"
    )
    parser.add_argument(
        "--experts-per-task",
        type=int,
        default=0,
        help="restrict each task to this many experts (overlapping slices, as task_experts); 0: all",
    )
    parser.add_argument("--task", default="seg", help="task of the single-task rows")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting (median)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: stable timings on a shared machine; 0: keep)"
    )
    parser.add_argument("--config", help="--table load: config of the trained model")
    parser.add_argument("--checkpoint", help="--table load: checkpoint of the trained model")
    parser.add_argument("--num-samples", type=int, default=128, help="--table load: validation scenes")


class _AllTasks(nn.Module):
    """Every task's raw output of a multi-task model from one image batch (the traced unit)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model(img, mode="tensor").values())


class _OneTask(nn.Module):
    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model.task_forward(img, self.task)


def _model_cfg(args, moe: bool) -> dict:
    grid_scales = {4: (4.0, 2.0, 1.0, 0.5), 3: (2.0, 1.0, 0.5), 2: (1.0, 0.5), 1: (1.0,)}
    router = dict(type=args.router)
    if args.experts_per_task:
        # Task i may use experts start_i .. start_i + m - 1 (mod E), start_i = i * E / T: overlapping slices.
        m, e = args.experts_per_task, args.experts
        router["task_experts"] = {
            t: sorted({(round(i * e / len(TASKS)) + j) % e for j in range(m)}) for i, t in enumerate(TASKS)
        }
    n_out = min(4, args.depth)
    out_indices = sorted({max(0, args.depth * (q + 1) // n_out - 1) for q in range(n_out)})
    backbone = dict(
        type="ViTMoE",
        img_size=args.img_size,
        patch_size=args.patch_size,
        embed_dim=args.embed_dim,
        depth=args.depth,
        num_heads=args.num_heads,
        mlp_ratio=args.top_k * args.moe_mlp_ratio,  # the dense twin: as many MLP parameters as k experts
        moe_mlp_ratio=args.moe_mlp_ratio,
        moe_cfg=dict(num_experts=args.experts, top_k=args.top_k, router=router) if moe else None,
        out_indices=out_indices,
        feature_scales=grid_scales[len(out_indices)],
    )
    heads = dict(
        seg=dict(type="DenseSemSegHead", num_classes=5, channels=64),
        depth=dict(type="DenseDepthHead", channels=64),
        edge=dict(type="DenseEdgeHead", channels=64),
    )
    return dict(
        type="MultiTaskDensePredictor",
        tasks=TASKS,
        trunk_mode="per_task" if moe else "shared",
        backbone=backbone,
        heads=heads,
    )


def _flops(module: nn.Module, img: torch.Tensor) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings from the data-dependent bucket sizes
        analyzer = FlopAnalyzer(module, (img,))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return float(analyzer.total())


def _latencies(modules: list[tuple[nn.Module, str | None]], moe_model: nn.Module, img: torch.Tensor, repeats: int):
    """Median seconds per module; the settings are timed in turn, round after round, so load
    changes on a shared machine hit every setting alike."""
    from perception_mtl.models.moe import set_moe_dispatch

    times: list[list[float]] = [[] for _ in modules]
    with torch.inference_mode():
        rounds = max(1, repeats) + 1
        for round_ in track(range(rounds), f"moe: {rounds} rounds of {len(modules)} models (round 0 warms up)"):
            for i, (module, dispatch) in enumerate(modules):
                if dispatch is not None:
                    set_moe_dispatch(moe_model, dispatch)
                start = time.perf_counter()
                module(img)
                if round_:
                    times[i].append(time.perf_counter() - start)
    return [sorted(t)[len(t) // 2] for t in times]


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _active_params(model: nn.Module, task: str, dense_dispatch: bool) -> int:
    """Parameters that take part in one token's path to ``task``'s output."""
    from perception_mtl.models.moe import PerTaskRouter, moe_layers

    active = _params(model) - sum(_params(h) for t, h in model.heads.items() if t != task)
    for _, layer in moe_layers(model):
        if isinstance(layer.router, PerTaskRouter):
            active -= sum(_params(g) for t, g in layer.router.gates.items() if t != task)
        if not dense_dispatch:
            per_expert = _params(layer.experts) // len(layer.expert_ids)
            active -= (len(layer.expert_ids) - layer.top_k) * per_expert
    return active


def _cost_rows(args) -> list[dict]:
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return _measure_costs(args)
    finally:
        torch.set_num_threads(threads)


def _measure_costs(args) -> list[dict]:
    from mmengine.registry import init_default_scope

    from perception_mtl.models.moe import extract_task_model, set_moe_dispatch
    from perception_mtl.registry import MODELS

    init_default_scope("perception_mtl")
    if args.task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {args.task!r}")
    torch.manual_seed(0)
    moe_model = MODELS.build(_model_cfg(args, moe=True)).eval()
    dense_model = MODELS.build(_model_cfg(args, moe=False)).eval()
    single = extract_task_model(moe_model, args.task)
    img = torch.randn(args.batch, 3, args.img_size, args.img_size)

    dense_all = _AllTasks(moe_model)
    settings = [
        ("dense all-task (all experts, 1 pass/task)", dense_all, "dense", _params(moe_model), None),
        ("sparse all-task (top-k bucketed, 1 pass/task)", dense_all, "bucketed", _params(moe_model), None),
        (
            f"sparse single-task {args.task} (extracted)",
            _OneTask(single, args.task),
            "bucketed",
            _params(single),
            single,
        ),
        ("dense ViT all-task (equal active, shared pass)", _AllTasks(dense_model), None, _params(dense_model), None),
        (f"dense ViT single-task {args.task}", _OneTask(dense_model, args.task), None, None, None),
    ]
    flops = []
    for _, module, dispatch, _, _ in settings:
        if dispatch is not None:
            set_moe_dispatch(moe_model, dispatch)
        flops.append(_flops(module, img))
    seconds = _latencies([(module, dispatch) for _, module, dispatch, _, _ in settings], moe_model, img, args.repeats)
    rows = []
    for (name, _, dispatch, params, model), flop, sec in zip(settings, flops, seconds):
        if params is None:  # the dense single-task path: every parameter but the other heads
            params = _params(dense_model) - sum(_params(h) for t, h in dense_model.heads.items() if t != args.task)
        source = model or (moe_model if "ViT" not in name else dense_model)
        rows.append(
            dict(
                setting=name,
                gflops=flop / 1e9,
                flops_vs_dense_all_task=flop / flops[0],
                latency_vs_dense_all_task=sec / seconds[0],
                params_M=params / 1e6,
                active_params_per_task_M=_active_params(source, args.task, dispatch == "dense") / 1e6,
            )
        )
    set_moe_dispatch(moe_model, "bucketed")
    return rows


def _load_rows(args) -> list[dict]:
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from perception_mtl.models.moe import read_moe_stats, reset_moe_stats, track_moe_stats
    from perception_mtl.registry import DATASETS, MODELS

    if not args.config or not args.checkpoint:
        raise ValueError("--table load needs --config and --checkpoint")
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location="cpu")
    model.eval()
    dataset_cfg = dict(cfg.val_dataloader.dataset)
    dataset_cfg["num_samples"] = args.num_samples
    dataset = DATASETS.build(dataset_cfg)
    batch_size = cfg.val_dataloader.get("batch_size", 16)
    reset_moe_stats(model)
    with torch.no_grad(), track_moe_stats(model):
        for start in range(0, len(dataset), batch_size):
            batch = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            model(**model.data_preprocessor(batch, training=False), mode="tensor")
    rows = []
    for layer in read_moe_stats(model, reset=True):
        for r, task in enumerate(layer["rows"]):
            load = layer["load"][r]
            total = float(load.sum())
            if total == 0:
                continue
            share = load / total
            ranked = share.sort(descending=True).values.cumsum(0)
            row = dict(layer=layer["name"].replace("backbone.", "").replace(".ffn", ""), task=task)
            row.update({f"e{int(e)}": 100.0 * float(s) for e, s in zip(layer["expert_ids"], share)})
            row.update(
                entropy=float(layer["entropy"][r]) / float(layer["tokens"][r]),
                zero_act=float(layer["zero"][r].sum() / layer["hidden"][r].sum()),
                n90=int((ranked < 0.9).sum()) + 1,
                n99=int((ranked < 0.99).sum()) + 1,
            )
            rows.append(row)
    return rows


def run(args) -> list[dict]:
    return _load_rows(args) if args.table == "load" else _cost_rows(args)
