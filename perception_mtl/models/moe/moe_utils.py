"""Helpers that act on every MoE layer inside a model: aux losses, dispatch mode, routing task, statistics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .moe_feed_forward import DISPATCH_MODES, MoEFeedForward


def moe_layers(module: nn.Module) -> list[tuple[str, MoEFeedForward]]:
    """(qualified name, layer) of every ``MoEFeedForward`` in ``module``, in module order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, MoEFeedForward)]


def pop_moe_aux_loss(module: nn.Module) -> Tensor | None:
    """Sum of the load-balancing losses accumulated by the MoE layers since the last call; clears them.

    Returns None when no layer recorded one (no MoE layer, or not training).
    """
    total = None
    for _, layer in moe_layers(module):
        if layer.aux_loss is not None:
            total = layer.aux_loss if total is None else total + layer.aux_loss
            layer.aux_loss = None
    return total


def set_moe_dispatch(module: nn.Module, dispatch: str) -> None:
    """Sets the dispatch path ('bucketed', 'gather' = exportable, 'dense' = reference) of every MoE layer."""
    if dispatch not in DISPATCH_MODES:
        raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {dispatch!r}")
    for _, layer in moe_layers(module):
        layer.dispatch = dispatch


@contextmanager
def routing_task(module: nn.Module, task: str | None) -> Iterator[None]:
    """Routes every MoE layer in ``module`` by ``task`` (unless a call passes its own) inside the block."""
    layers = [layer for _, layer in moe_layers(module)]
    previous = [layer.default_task for layer in layers]
    for layer in layers:
        layer.default_task = task
    try:
        yield
    finally:
        for layer, prev in zip(layers, previous):
            layer.default_task = prev


@contextmanager
def track_moe_stats(module: nn.Module) -> Iterator[None]:
    """Records routing statistics in eval mode too (they always accumulate while training)."""
    layers = [layer for _, layer in moe_layers(module)]
    previous = [layer.track_stats for layer in layers]
    for layer in layers:
        layer.track_stats = True
    try:
        yield
    finally:
        for layer, prev in zip(layers, previous):
            layer.track_stats = prev


def reset_moe_stats(module: nn.Module) -> None:
    for _, layer in moe_layers(module):
        layer.reset_stats()


@torch.no_grad()
def read_moe_stats(module: nn.Module, reset: bool = False) -> list[dict]:
    """Raw routing statistics of every MoE layer, accumulated since the last reset.

    Returns:
        One dict per layer: ``name``; ``rows`` (task names); ``expert_ids`` (E_r,) global ids;
        ``load`` (R, E_r) routed token slots; ``zero`` and ``hidden`` (R, E_r) hidden activations
        <= 0 and seen; ``entropy`` (R,) summed gate entropy normalised by log(allowed experts);
        ``tokens`` (R,) tokens routed. All float64 CPU tensors.
    """
    stats = []
    for name, layer in moe_layers(module):
        stats.append(
            dict(
                name=name,
                rows=layer.stat_rows,
                expert_ids=layer.expert_ids.cpu(),
                load=layer.stat_load.cpu().clone(),
                zero=layer.stat_zero.cpu().clone(),
                hidden=layer.stat_hidden.cpu().clone(),
                entropy=layer.stat_entropy.cpu().clone(),
                tokens=layer.stat_tokens.cpu().clone(),
            )
        )
        if reset:
            layer.reset_stats()
    return stats


def summarize_moe_stats(stats: list[dict]) -> dict[str, dict[str, float]]:
    """Per-task summary over layers of ``read_moe_stats`` output.

    Returns:
        task -> {'entropy': mean normalised gate entropy in [0, 1]; 'zero_act': fraction of routed
        hidden activations <= 0; 'load_max': largest expert share of routed slots times the number
        of experts that share (1 = perfectly balanced over resident experts); 'dead': mean number
        of resident experts that got no token}. Tasks that routed no token are left out.
    """
    acc: dict[str, dict[str, float]] = {}
    for layer in stats:
        for r, task in enumerate(layer["rows"]):
            tokens = float(layer["tokens"][r])
            if tokens == 0:
                continue
            load = layer["load"][r]
            share = load / load.sum()
            entry = acc.setdefault(task, dict(entropy=0.0, zero=0.0, hidden=0.0, load_max=0.0, dead=0.0, layers=0))
            entry["entropy"] += float(layer["entropy"][r]) / tokens
            entry["zero"] += float(layer["zero"][r].sum())
            entry["hidden"] += float(layer["hidden"][r].sum())
            entry["load_max"] += float(share.max()) * len(share)
            entry["dead"] += float((load == 0).sum())
            entry["layers"] += 1
    summary = {}
    for task, e in acc.items():
        n = e["layers"]
        summary[task] = dict(
            entropy=e["entropy"] / n,
            zero_act=e["zero"] / e["hidden"] if e["hidden"] else float("nan"),
            load_max=e["load_max"] / n,
            dead=e["dead"] / n,
        )
    return summary


def expert_load_table(stats: list[dict]) -> list[dict]:
    """Rows ``{'layer', 'task', 'e0': share, ...}``: each task's share (in %) of routed slots per expert."""
    rows = []
    for layer in stats:
        for r, task in enumerate(layer["rows"]):
            load = layer["load"][r]
            total = float(load.sum())
            if total == 0:
                continue
            row = dict(layer=layer["name"], task=task)
            row.update({f"e{int(e)}": 100.0 * float(v) / total for e, v in zip(layer["expert_ids"], load)})
            rows.append(row)
    return rows
