"""Sparse single-task inference: cut a multi-task MoE model down to one task.

``extract_task_model(model, task)`` returns a copy holding only ``task``'s router, the experts it
can route to and (through the model's ``keep_tasks``) its head. With every top-k candidate kept,
its outputs for that task are exactly the full model's. With ``coverage`` < 1, experts are pruned
to the smallest set that received at least that share of the task's routed token slots on
calibration data (``measure_expert_usage``); tokens that would have chosen a pruned expert then go
to the best kept ones, so outputs are no longer exact: the measured coverage is reported per layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .moe_utils import moe_layers, read_moe_stats, reset_moe_stats, track_moe_stats


def measure_expert_usage(model: nn.Module, task: str, run: Callable[[nn.Module], object]) -> dict[str, Tensor]:
    """Counts the token slots each expert of each MoE layer receives for ``task``.

    The model runs in eval mode under ``torch.no_grad`` while ``run(model)`` feeds it calibration
    data for ``task``. The layers' statistics counters are reset before and after.

    Args:
        model: a model with MoE layers.
        task: the task whose routing is measured.
        run: calls the model on the calibration data, e.g. ``lambda m: [m.task_forward(x, task) for x in imgs]``.

    Returns:
        Layer name -> (E,) float64 counts indexed by global expert id.
    """
    was_training = model.training
    model.eval()
    reset_moe_stats(model)
    try:
        with torch.no_grad(), track_moe_stats(model):
            run(model)
        stats = read_moe_stats(model, reset=True)
    finally:
        model.train(was_training)
    usage = {}
    for layer, (_, module) in zip(stats, moe_layers(model)):
        counts = torch.zeros(module.num_experts, dtype=torch.float64)
        counts[layer["expert_ids"]] = layer["load"][module._row(task)]
        usage[layer["name"]] = counts
    return usage


def _covering_experts(counts: Tensor, candidates: list[int], coverage: float, top_k: int) -> tuple[list[int], float]:
    """Smallest set of candidates (at least ``top_k``) holding >= ``coverage`` of the routed slots."""
    total = float(counts[candidates].sum())
    if total == 0:
        raise ValueError("extract_task_model: no routed tokens measured for a layer; feed calibration data")
    ranked = sorted(candidates, key=lambda e: (-float(counts[e]), e))
    kept, covered = [], 0.0
    for e in ranked:
        if len(kept) >= top_k and covered / total >= coverage:
            break
        kept.append(e)
        covered += float(counts[e])
    return sorted(kept), covered / total


def _copy_model(model: nn.Module) -> nn.Module:
    # Pending aux losses are graph tensors, which deepcopy refuses; the copy does not need them.
    layers = [layer for _, layer in moe_layers(model)]
    pending = [layer.aux_loss for layer in layers]
    for layer in layers:
        layer.aux_loss = None
    try:
        return copy.deepcopy(model)
    finally:
        for layer, aux in zip(layers, pending):
            layer.aux_loss = aux


def extract_task_model(
    model: nn.Module, task: str, coverage: float | None = None, usage: dict[str, Tensor] | None = None
) -> nn.Module:
    """A smaller inference copy of ``model`` for ``task`` alone (the model itself is not changed).

    Each ``MoEFeedForward`` keeps ``task``'s gate and its experts; the model's ``keep_tasks((task,))``
    is called when it has one (``MultiTaskDensePredictor`` drops the other heads). The copy is in
    eval mode and carries ``task_extraction``: per layer the kept expert ids, the number of
    candidates, and the measured coverage (None when every candidate was kept).

    Args:
        model: a multi-task model with MoE layers.
        task: the task to keep.
        coverage: None keeps every expert ``task`` can route to (outputs identical to the full
            model); a value in (0, 1] keeps, per layer, the fewest experts that received at least
            that share of ``task``'s routed slots in ``usage``.
        usage: ``measure_expert_usage`` output; required with ``coverage``.
    """
    tasks = getattr(model, "tasks", None)
    if tasks is not None and task not in tasks:
        raise KeyError(f"extract_task_model: task {task!r} is not one of the model's tasks {list(tasks)}")
    if coverage is not None:
        if not 0.0 < coverage <= 1.0:
            raise ValueError(f"extract_task_model: coverage must be in (0, 1], got {coverage}")
        if usage is None:
            raise ValueError("extract_task_model: coverage needs usage= (see measure_expert_usage)")
    small = _copy_model(model)
    layers = moe_layers(small)
    if not layers:
        raise ValueError("extract_task_model: the model has no MoEFeedForward layer")
    report = {}
    for name, layer in layers:
        candidates = layer.allowed_experts(task)
        keep, measured = candidates, None
        if coverage is not None:
            if name not in usage:
                raise KeyError(f"extract_task_model: usage has no entry for MoE layer {name!r}")
            keep, measured = _covering_experts(usage[name], candidates, coverage, layer.top_k)
        layer.restrict_to_task(task, keep)
        report[name] = dict(experts=keep, candidates=len(candidates), coverage=measured)
    if hasattr(small, "keep_tasks"):
        small.keep_tasks((task,))
    small.task_extraction = dict(task=task, coverage=coverage, layers=report)
    return small.eval()
