"""Stops (or skips the step) when a loss or gradient is NaN/Inf, saying where it came from.

Without it a NaN loss is back-propagated, the optimizer writes NaN into every weight it touches,
and training carries on silently, logging ``loss: nan`` until the schedule ends. This hook guards
each training step from two places, on any ``OptimWrapper`` (plain, ``GradBalanceOptimWrapper``,
``BFloat16OptimWrapper``, ...) without changes to them:

* the model's ``parse_losses`` is wrapped to keep the loss terms of the iteration; before
  ``optim_wrapper.update_params`` runs, any term containing ``loss`` that is not finite stops the
  step before a backward is run (under DDP the decision is all-reduced, so every rank skips);
* ``optim_wrapper.step`` is wrapped to check the gradients of every parameter group before the
  optimizer (and gradient clipping) sees them. Under AMP with a loss scaler, overflowing gradients
  are the scaler's business (it skips the step and lowers the scale), so gradients are not checked.

The error or warning names the task (the ``<task>.`` prefix of the loss key, or ``heads.<task>.``
in a parameter's name), the loss terms, and the parameter group (index, lr, the first non-finite
parameters). ``action='skip'`` drops the step (no backward or no optimizer step, gradients zeroed)
and raises once ``max_consecutive`` steps in a row were non-finite; ``action='stop'`` raises at
the first. A checkpoint already written is never touched, so the run can resume from it.
"""

from __future__ import annotations

import functools
import logging
import math
import re

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from perception_mtl.registry import HOOKS

_GUARDED = "_non_finite_guard"


class NonFiniteTrainingError(FloatingPointError):
    """Training met a NaN/Inf loss or gradient (raised by :class:`NonFiniteGuardHook`)."""


def _task_of_loss(key: str) -> str:
    return key.split(".", 1)[0] if "." in key else "model"


def _task_of_param(name: str) -> str:
    m = re.search(r"(?:^|\.)heads\.([^.]+)\.", name)
    return m.group(1) if m else "shared"


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:.4g}"


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Refuses to train on NaN/Inf losses or gradients (see the module docstring).

    Args:
        action: 'skip' drops a non-finite step and stops after ``max_consecutive`` in a row;
            'stop' raises :class:`NonFiniteTrainingError` at the first.
        max_consecutive: with 'skip', how many non-finite steps in a row stop training (>= 1).
        check_grads: also check gradients before the optimizer step (one reduction per step).
    """

    priority = "VERY_HIGH"

    def __init__(self, action: str = "skip", max_consecutive: int = 3, check_grads: bool = True) -> None:
        if action not in ("skip", "stop"):
            raise ValueError(f"NonFiniteGuardHook: action must be 'skip' or 'stop', got {action!r}")
        if int(max_consecutive) < 1:
            raise ValueError(f"NonFiniteGuardHook: max_consecutive must be >= 1, got {max_consecutive}")
        self.action = action
        self.max_consecutive = int(max_consecutive)
        self.check_grads = check_grads
        self.consecutive = 0
        self.skipped: list[int] = []  # global iterations whose step was dropped
        self._losses: dict[str, float] = {}
        self._iter = 0
        self._epoch = 0
        self._param_names: dict[int, str] = {}

    # ------------------------------------------------------------------ installation

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._param_names = {id(p): n for n, p in model.named_parameters()}
        if not getattr(model, _GUARDED, False):
            parse_losses = model.parse_losses

            def guarded_parse_losses(losses):
                self._losses = self._loss_values(losses)
                return parse_losses(losses)

            model.parse_losses = guarded_parse_losses
            setattr(model, _GUARDED, True)
        wrappers = runner.optim_wrapper
        wrappers = list(wrappers.values()) if isinstance(wrappers, OptimWrapperDict) else [wrappers]
        for wrapper in wrappers:
            if isinstance(wrapper, OptimWrapper) and not getattr(wrapper, _GUARDED, False):
                self._guard(wrapper)

    def _guard(self, wrapper: OptimWrapper) -> None:
        update_params, step = wrapper.update_params, wrapper.step

        # functools.wraps keeps the attributes MMEngine's schedulers put on step (_with_counter).
        @functools.wraps(update_params)
        def guarded_update_params(loss, *args, **kwargs):
            bad = {k: v for k, v in self._losses.items() if not math.isfinite(v)}
            if self._any_rank(bool(bad), loss.device if isinstance(loss, torch.Tensor) else None):
                self._non_finite(self._loss_message(bad))
                wrapper.zero_grad()
                if hasattr(wrapper, "_capture"):  # GradBalanceOptimWrapper: drop the captured graph
                    wrapper._capture = None
                return None
            return update_params(loss, *args, **kwargs)

        @functools.wraps(step)
        def guarded_step(*args, **kwargs):
            scaler = getattr(wrapper, "loss_scaler", None)
            amp_scaled = scaler is not None and getattr(scaler, "is_enabled", lambda: True)()
            if self.check_grads and not amp_scaled:
                bad_groups = self._non_finite_groups(wrapper.optimizer)
                if bad_groups:
                    self._non_finite(self._grad_message(wrapper.optimizer, bad_groups))
                    wrapper.zero_grad()
                    return None
            self.consecutive = 0
            return step(*args, **kwargs)

        wrapper.update_params = guarded_update_params
        wrapper.step = guarded_step
        setattr(wrapper, _GUARDED, True)

    # ------------------------------------------------------------------ bookkeeping

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._losses = {}
        self._iter, self._epoch = runner.iter, runner.epoch

    def after_train(self, runner) -> None:
        if self.skipped:
            print_log(
                f"NonFiniteGuardHook: skipped {len(self.skipped)} non-finite step(s) at iterations "
                f"{self.skipped[:20]}{' ...' if len(self.skipped) > 20 else ''}",
                logger="current",
                level=logging.WARNING,
            )

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _loss_values(losses) -> dict[str, float]:
        """Each loss term as a float (a list of tensors summed as ``parse_losses`` does)."""
        values = {}
        if not isinstance(losses, dict):
            return values
        terms = {k: v for k, v in losses.items() if "loss" in k}
        if not terms:
            return values
        means = []
        for value in terms.values():
            if isinstance(value, torch.Tensor):
                means.append(value.detach().float().mean())
            else:
                means.append(sum(v.detach().float().mean() for v in value))
        for key, mean in zip(terms, torch.stack(means).tolist()):  # one device sync
            values[key] = mean
        return values

    @staticmethod
    def _any_rank(flag: bool, device) -> bool:
        if get_world_size() == 1:
            return flag
        t = torch.tensor([float(flag)], device=device if device is not None else "cpu")
        all_reduce(t, op="max")
        return bool(t.item())

    @staticmethod
    def _non_finite_groups(optimizer) -> list[int]:
        """Indices of the parameter groups with a NaN/Inf gradient (one reduction in the common case)."""
        grads = [[p.grad for p in g["params"] if p.grad is not None] for g in optimizer.param_groups]
        flat = [gr for group in grads for gr in group]
        if not flat:
            return []
        norms = torch.stack([n.float() for n in torch._foreach_norm(flat)])
        if bool(torch.isfinite(norms).all()):
            return []
        return [i for i, group in enumerate(grads) if group and not all(bool(torch.isfinite(g).all()) for g in group)]

    def _where(self) -> str:
        return f"epoch {self._epoch + 1}, global iteration {self._iter + 1}"

    def _loss_message(self, bad: dict[str, float]) -> str:
        if not bad:
            return f"non-finite loss on another rank at {self._where()} (this rank's loss terms are finite)"
        tasks = sorted({_task_of_loss(k) for k in bad})
        terms = ", ".join(f"{k}={_fmt(v)}" for k, v in bad.items())
        return f"non-finite loss at {self._where()}: task {', '.join(map(repr, tasks))}, term {terms}"

    def _grad_message(self, optimizer, bad_groups: list[int]) -> str:
        parts, tasks = [], set()
        for i in bad_groups:
            group = optimizer.param_groups[i]
            names = [
                self._param_names.get(id(p), f"<param {k}>")
                for k, p in enumerate(group["params"])
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())
            ]
            tasks.update(_task_of_param(n) for n in names)
            shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
            parts.append(f"parameter group {i} (lr {group.get('lr', float('nan')):.3g}): {shown}")
        task_list = sorted(tasks)
        terms = {
            k: v for k, v in self._losses.items() if _task_of_loss(k) in tasks or "shared" in tasks or not task_list
        }
        loss_terms = ", ".join(f"{k}={_fmt(v)}" for k, v in terms.items()) or "none recorded"
        return (
            f"non-finite gradient at {self._where()}: task {', '.join(map(repr, task_list))} "
            f"(from the parameter names; 'shared' = layers every task reaches), loss terms {loss_terms}; "
            + "; ".join(parts)
        )

    def _non_finite(self, message: str) -> None:
        self.consecutive += 1
        if self.action == "stop" or self.consecutive >= self.max_consecutive:
            count = "" if self.action == "stop" else f" ({self.consecutive} non-finite steps in a row)"
            raise NonFiniteTrainingError(
                f"{message}. Training stopped{count}; checkpoints already written are untouched "
                "(lower the lr, check the data, or set default_hooks.non_finite_guard.action/max_consecutive)"
            )
        self.skipped.append(self._iter + 1)
        print_log(
            f"{message}; step skipped ({self.consecutive} in a row, training stops at {self.max_consecutive})",
            logger="current",
            level=logging.WARNING,
        )
