"""Gradient balancing as an MMEngine optim wrapper, and the model contract it relies on.

Select it by config on any multi-task model::

    optim_wrapper = dict(
        type='GradBalanceOptimWrapper',            # or 'GradBalanceAmpOptimWrapper' for AMP
        optimizer=dict(type='AdamW', lr=2e-4),
        clip_grad=dict(max_norm=35, norm_type=2),  # applied after the combination
        balancer=dict(type='FULLER', inter='imtl_g', intra='mean'),
    )

Model contract
--------------
A multi-task model (an MMEngine ``BaseModel``) implements two methods:

``extract_shared(inputs, data_samples, modality_hook=None) -> SharedFeatures``
    Runs everything shared by the tasks: modality encoders, fuser, decoder. It must call
    ``feats = modality_hook(feats)`` on the dict of modality features (``{'camera': t,
    'lidar': t}``) right before the fuser, when the hook is not None, and feed the returned
    tensors to the fuser. It returns ``SharedFeatures(feat, modality_feats, aux_losses)``:
    ``feat`` is the output of the last shared layer (a tensor, or a list of tensors for a
    multi-scale decoder), ``modality_feats`` the dict the fuser consumed (one entry, or none,
    for a single-modality model), ``aux_losses`` losses computed inside the shared layers.

``loss_by_shared(shared_feat, data_samples) -> dict[str, Tensor]``
    Runs every task head on ``shared_feat`` (and on nothing else from the backbone) and returns
    their losses with keys namespaced by task: ``'det.loss_heatmap'``, ``'map.loss_focal'``.
    As in MMEngine, only keys containing ``'loss'`` are optimised; a task's loss is the sum
    of its keys.

Its ``forward(inputs, data_samples, mode='loss')`` is then just ``loss_by_shared`` of
``extract_shared(...).feat`` plus the aux losses. A model without these methods fails in
``optim_context`` with an error that names the missing method.

How the training step uses it (and why an optim wrapper)
--------------------------------------------------------
MMEngine's ``train_step`` (``BaseModel``'s and ``MMDistributedDataParallel``'s alike) runs the
forward inside ``optim_wrapper.optim_context(model)`` and then calls
``optim_wrapper.update_params(loss)``. A train-step mixin on the model would be bypassed by
the DDP wrapper's own ``train_step``; an optim wrapper sees both calls in every setting. So,
inside ``optim_context``, the model's ``mode='loss'`` forward is replaced by the balancing
forward: ``extract_shared`` (with the modality hook), then the heads on a detached leaf copy of
the shared feature. The forward still goes through DDP, so DDP prepares its reducer as usual.
``update_params`` then:

1. takes each task's gradient with respect to the leaf and to its head's parameters in one
   ``autograd.grad`` (one head backward per task, no parameter ``.grad`` written, so DDP
   all-reduces nothing yet); in 'param' mode also each task's gradient over the shared
   parameters;
2. forms the (T, T) Gram matrix (unscaled under AMP) and, under DDP, all-reduces it with the
   task losses (T*T + T numbers), so all ranks use the same weights; in 'rep' mode these are
   exactly the weights of the global batch;
3. asks the rule for weights ``w`` and runs ONE backward: the backbone from ``sum_t w_t g_t`` at
   the shared feature, the modality branches through the intra-gradient node, and the head
   parameters from their kept per-task gradients (fed in as roots, so the heads are not
   traversed twice and DDP's gradient hooks still fire). DDP all-reduces the final gradients
   once, overlapped with that backward;
4. steps through the parent class, so gradient clipping sees the combined gradient and AMP
   unscales and skips non-finite steps as usual.

Loss-only rules (equal, uncertainty, DWA) skip steps 1-2 and cost one plain backward.
Per-iteration statistics go to MMEngine's message hub as ``train/grad_balance/...`` scalars, which
LoggerHook prints: per-task gradient norms, pairwise cosines, the weights, and the modality
gradient norms and their ratio before and after intra-gradient balancer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from perception_mtl.registry import OPTIM_WRAPPERS, TASK_UTILS

from .modality_grad_balancer import ModalityGradBalancer
from .shared_features import SharedFeatures
from .task_weighting import TaskWeighting

CONTRACT_METHODS = ("extract_shared", "loss_by_shared")


@dataclass
class _Capture:
    """What the balancing forward leaves for the backward of the same iteration."""

    module: nn.Module
    feats: list[Tensor]  # shared feature(s), in the backbone graph
    leaves: list[Tensor] | None  # detached copies the heads ran on (None: heads ran on feats)
    losses: dict[str, Tensor]  # head losses
    aux_losses: dict[str, Tensor]


def check_grad_balance_contract(module: nn.Module) -> None:
    """Raises TypeError naming the first contract method ``module`` lacks."""
    for name in CONTRACT_METHODS:
        if not callable(getattr(module, name, None)):
            raise TypeError(
                f"{type(module).__name__} does not implement the gradient-balancing contract: missing method "
                f"'{name}'. A model trained with optim_wrapper.balancer needs extract_shared(inputs, data_samples, "
                "modality_hook=None) -> SharedFeatures and loss_by_shared(shared_feat, data_samples) -> dict "
                "(see perception_mtl.grad_balance.grad_balance_optim_wrapper)."
            )


def _gram(rows: list[list[Tensor]]) -> Tensor:
    """(T, T) Gram matrix of T gradients, each given as a list of tensors (no flattening copies)."""
    t = len(rows)
    dots = {}
    for i in range(t):
        for j in range(i, t):
            dots[i, j] = sum(torch.dot(a.reshape(-1), b.reshape(-1)) for a, b in zip(rows[i], rows[j]))
    return torch.stack([torch.stack([dots[min(i, j), max(i, j)] for j in range(t)]) for i in range(t)])


def _combine(grads: list[Tensor], weights: Tensor, mult: Tensor | float) -> Tensor:
    """``mult * sum_t weights[t] * grads[t]`` in one new tensor (weights (T,) on the CPU)."""
    out = grads[0] * float(weights[0])
    for g, w in zip(grads[1:], weights[1:].tolist()):
        out.add_(g, alpha=w)
    return out.mul_(mult) if isinstance(mult, Tensor) or mult != 1.0 else out


@OPTIM_WRAPPERS.register_module()
class GradBalanceOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose update combines per-task gradients with a balancing rule.

    Args:
        optimizer: the optimizer (built by MMEngine's constructor from ``optim_wrapper.optimizer``).
        balancer: config of a rule registered in TASK_UTILS: 'FULLER', 'EqualWeighting',
            'UncertaintyWeighting', 'DWA', 'GradNorm', 'MGDA', 'PCGrad', 'CAGrad', 'IMTLG',
            'NashMTL'.
        tasks: task names in a fixed order; None takes them from the loss keys (order of first
            appearance). When set, the losses must name exactly these tasks, and rules with
            per-task state get ``num_tasks`` from it.
        monitor: measure per-task gradients and modality gradient norms for logging even when
            the rule does not need them (e.g. equal weights); it costs one head backward per
            task but does not change the update.
        balancer_param_cfg: optimizer settings of the parameter group holding the rule's own
            parameters (uncertainty log-variances, GradNorm weights); weight decay 0 by default.
        **kwargs: ``OptimWrapper`` arguments (``accumulative_counts``, ``clip_grad``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        balancer: dict,
        tasks: Sequence[str] | None = None,
        monitor: bool = False,
        balancer_param_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        self._init_base(optimizer, **kwargs)
        if tasks is not None and (isinstance(tasks, str) or len(set(tasks)) != len(tasks) or not tasks):
            raise ValueError(f"optim_wrapper.tasks must be a non-empty sequence of distinct task names, got {tasks!r}")
        self.tasks = tuple(tasks) if tasks is not None else None
        self.monitor = bool(monitor)
        self.balancer = self._build_balancer(balancer)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if params:
            self.balancer.to(params[0].device)
        own = [p for p in self.balancer.parameters() if p.requires_grad]
        if own:
            group = dict(params=own, weight_decay=0.0)
            group.update(balancer_param_cfg or {})
            self.optimizer.add_param_group(group)
        balancer = self.balancer.modality_balancer
        # With monitor=True, rules without intra-gradient balancing still log the modality ratio.
        self._observer = ModalityGradBalancer(target=None) if self.monitor and balancer is None else None
        self._capture: _Capture | None = None
        self.last_stats: dict[str, float] = {}

    def _init_base(self, optimizer: torch.optim.Optimizer, **kwargs) -> None:
        """Initialises the parent wrapper (a hook for the AMP variant)."""
        OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)

    def _build_balancer(self, cfg: dict) -> TaskWeighting:
        if not isinstance(cfg, dict) or "type" not in cfg:
            raise ValueError(f"optim_wrapper.balancer must be a config dict with a 'type', got {cfg!r}")
        cfg = dict(cfg)
        cls = TASK_UTILS.get(cfg["type"]) if isinstance(cfg["type"], str) else cfg["type"]
        if cls is None:
            raise ValueError(f"optim_wrapper.balancer.type={cfg['type']!r} is not registered in TASK_UTILS")
        if self.tasks is not None and "num_tasks" in inspect.signature(cls).parameters:
            cfg.setdefault("num_tasks", len(self.tasks))
        rule = TASK_UTILS.build(cfg)
        if not isinstance(rule, TaskWeighting):
            raise ValueError(f"optim_wrapper.balancer.type must be a TaskWeighting, got {type(rule).__name__}")
        return rule

    @property
    def _balancer(self) -> ModalityGradBalancer | None:
        balancer = self.balancer.modality_balancer
        return balancer if balancer is not None else self._observer

    @property
    def _uses_leaf(self) -> bool:
        return self.balancer.uses_gradients or self.monitor

    # ------------------------------------------------------------------ forward side

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Within this context the model's ``mode='loss'`` forward is the balancing forward."""
        module = model.module if is_model_wrapper(model) else model
        check_grad_balance_contract(module)
        if self._uses_leaf and getattr(model, "find_unused_parameters", False):
            raise ValueError(
                "GradBalanceOptimWrapper: DDP with find_unused_parameters=True would mark the backbone unused (its "
                "heads run on a detached copy of the shared feature); set model_wrapper_cfg.find_unused_parameters="
                "False"
            )
        with super().optim_context(model):
            had_own = "forward" in module.__dict__
            original = module.forward

            def balancing_forward(inputs, data_samples=None, mode: str = "tensor"):
                if mode != "loss":
                    return original(inputs, data_samples, mode)
                return self._balancing_forward(module, inputs, data_samples)

            module.forward = balancing_forward
            try:
                yield
            finally:
                if had_own:
                    module.forward = original
                else:
                    del module.forward

    def _balancing_forward(self, module: nn.Module, inputs, data_samples) -> dict[str, Tensor]:
        balancer = self._balancer
        hook = None
        if balancer is not None:
            balancer.reset()
            hook = balancer.attach
        shared = module.extract_shared(inputs, data_samples, modality_hook=hook)
        if not isinstance(shared, SharedFeatures):
            raise TypeError(
                f"{type(module).__name__}.extract_shared must return perception_mtl.grad_balance.SharedFeatures, "
                f"got {type(shared).__name__}"
            )
        if balancer is not None and len(shared.modality_feats) >= 2 and not balancer.names:
            raise RuntimeError(
                f"{type(module).__name__}.extract_shared returned {len(shared.modality_feats)} modality features but "
                "did not pass them through modality_hook before the fuser"
            )
        feats = shared.feat_tensors()
        if not feats or not all(isinstance(f, Tensor) and f.requires_grad for f in feats):
            raise ValueError(
                f"{type(module).__name__}.extract_shared: SharedFeatures.feat must be tensor(s) that require grad "
                "(the output of the trainable shared layers)"
            )
        leaves = None
        head_input = shared.feat
        if self._uses_leaf:
            leaves = [f.detach().requires_grad_() for f in feats]
            head_input = leaves[0] if isinstance(shared.feat, Tensor) else type(shared.feat)(leaves)
        losses = module.loss_by_shared(head_input, data_samples)
        if not isinstance(losses, dict):
            raise TypeError(f"{type(module).__name__}.loss_by_shared must return a dict, got {type(losses).__name__}")
        clash = set(losses) & set(shared.aux_losses)
        if clash:
            raise ValueError(f"{type(module).__name__}: head losses and SharedFeatures.aux_losses share keys {clash}")
        self._capture = _Capture(module, feats, leaves, losses, dict(shared.aux_losses))
        return {**losses, **shared.aux_losses}

    # ------------------------------------------------------------------ backward side

    def update_params(self, loss: Tensor, step_kwargs: dict | None = None, zero_kwargs: dict | None = None) -> None:
        """Balanced backward of the captured losses, then step and zero_grad as ``OptimWrapper``.

        Args:
            loss: the summed loss MMEngine's train step passes; unused (the per-task losses were
                captured by the balancing forward).
        """
        # scale_loss divides by the gradient-accumulation factor of this iteration.
        accumulation = float(self.scale_loss(torch.ones((), dtype=torch.float64)))
        self._balanced_backward(accumulation)
        self._inner_count += 1
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def backward(self, loss: Tensor, **kwargs) -> None:
        """Balanced backward of the losses captured in ``optim_context`` (``loss`` is unused)."""
        if kwargs:
            raise TypeError(f"GradBalanceOptimWrapper.backward takes no backward kwargs, got {sorted(kwargs)}")
        self._balanced_backward(1.0)
        self._inner_count += 1

    def _loss_scale(self, device: torch.device) -> Tensor | None:
        """The AMP loss scale as a tensor on ``device``, or None without (enabled) loss scaling."""
        scaler = getattr(self, "loss_scaler", None)
        if scaler is None or not scaler.is_enabled():
            return None
        return scaler.scale(torch.ones((), device=device, dtype=torch.float32))

    def _task_losses(self, losses: dict[str, Tensor]) -> tuple[list[str], list[Tensor]]:
        """Task names and each task's summed loss, kept apart: a backward from one element of a
        stacked tensor would run every task's head (with zero gradients for the others)."""
        groups: dict[str, Tensor] = {}
        for key, value in losses.items():
            if "loss" not in key:
                continue
            if "." not in key:
                raise ValueError(
                    f"GradBalanceOptimWrapper: loss key {key!r} is not namespaced by task ('<task>.<name>', e.g. "
                    "'det.loss_heatmap')"
                )
            term = value.mean() if isinstance(value, Tensor) else sum(v.mean() for v in value)
            task = key.split(".", 1)[0]
            groups[task] = groups[task] + term.float() if task in groups else term.float()
        if not groups:
            raise ValueError("GradBalanceOptimWrapper: loss_by_shared returned no loss terms (keys containing 'loss')")
        names = list(groups)
        if self.tasks is not None:
            if set(names) != set(self.tasks):
                raise ValueError(f"optim_wrapper.tasks={list(self.tasks)} but the model's losses name tasks {names}")
            names = list(self.tasks)
        return names, [groups[n] for n in names]

    def _balanced_backward(self, accumulation: float) -> None:
        capture, self._capture = self._capture, None
        if capture is None:
            raise RuntimeError(
                "GradBalanceOptimWrapper: nothing to back-propagate. Train with model.train_step(data, optim_wrapper) "
                "(MMEngine's train step runs the loss forward inside optim_wrapper.optim_context(model)), or run "
                "the mode='loss' forward inside optim_context yourself before update_params/backward."
            )
        names, loss_list = self._task_losses(capture.losses)
        task_losses = torch.stack(loss_list)
        device = task_losses.device
        amp = self._loss_scale(device)
        mult = amp * accumulation if amp is not None else accumulation
        rule = self.balancer

        feat_grads, gram, head_grads = None, None, None
        params = [p for m in (capture.module, rule) for p in m.parameters() if p.requires_grad]
        if capture.leaves is not None:
            feat_grads, head_grads = self._task_grads(loss_list, capture.leaves, params, amp)
            if rule.uses_gradients and rule.mode == "param":
                gram = self._param_gram(capture, feat_grads, amp)
            else:
                gram = _gram(feat_grads)
        stat_losses = task_losses.detach().double()
        gram, stat_losses = self._reduce(gram, stat_losses)

        objective = None
        if gram is not None and not bool(torch.isfinite(gram).all()):
            # Overflow under AMP: the final gradients are non-finite too and the scaler skips the step.
            weights = torch.ones(len(names), dtype=torch.float64)
        else:
            combination = rule(gram if rule.uses_gradients else None, stat_losses)
            weights, objective = combination.weights.double().cpu(), combination.objective
            if weights.shape != (len(names),):
                raise RuntimeError(
                    f"{type(rule).__name__} returned weights {tuple(weights.shape)} for {len(names)} tasks"
                )

        w = weights.to(device=device, dtype=torch.float32)
        head_weights = w if rule.weights_heads else torch.ones_like(w)
        # Heads enter the final backward through the task losses only when their per-task
        # gradients were not kept (loss-only rules: one plain backward).
        total = (head_weights * task_losses).sum() if head_grads is None else task_losses.new_zeros(())
        for key, value in capture.aux_losses.items():
            if "loss" in key:
                total = total + (value.mean() if isinstance(value, Tensor) else sum(v.mean() for v in value))
        if objective is not None:
            total = total + objective.to(device)
        roots, root_grads = [], []
        if total.requires_grad:
            roots, root_grads = [total * mult], [None]
        if feat_grads is not None:
            for k, feat in enumerate(capture.feats):
                roots.append(feat)
                root_grads.append(_combine([grads[k] for grads in feat_grads], weights, mult).to(feat.dtype))
        if head_grads is not None:
            # Kept head gradients are of the loss-scaled losses: the AMP scale is already in them.
            head_mult = accumulation
            for param, per_task in head_grads.items():
                grad = None
                for t, g in per_task:
                    term = g * (float(head_weights[t]) * head_mult)
                    grad = term if grad is None else grad.add_(term)
                roots.append(param)
                root_grads.append(grad)
        balancer = self._balancer
        if balancer is not None:
            balancer.grad_multiplier = mult
        # With kept head gradients, only parameters: nothing is traversed towards the leaf twice.
        torch.autograd.backward(roots, root_grads, inputs=params if capture.leaves is not None else None)
        self._log(names, gram, weights, balancer)

    def _task_grads(
        self, task_losses: list[Tensor], leaves: list[Tensor], params: list[Tensor], amp: Tensor | None
    ) -> tuple[list[list[Tensor]], dict[Tensor, list[tuple[int, Tensor]]]]:
        """One head backward per task: its gradient at each leaf and at the parameters it reaches.

        The leaves are detached from the backbone, so a task loss reaches only its head's parameters
        (and the rule's, for rules whose losses pass through them). Returns the leaf gradients per
        task (float32, unscaled; for the Gram matrix) and, per reached parameter, the
        ``(task index, gradient)`` pairs of the loss-scaled losses (for the final backward).
        """
        n = len(leaves)
        feat_grads: list[list[Tensor]] = []
        head_grads: dict[Tensor, list[tuple[int, Tensor]]] = {}
        for t, loss in enumerate(task_losses):
            scaled = loss * amp if amp is not None else loss
            got = torch.autograd.grad(scaled, [*leaves, *params], retain_graph=True, allow_unused=True)
            feat_grads.append(
                [
                    torch.zeros_like(leaf, dtype=torch.float32)
                    if g is None
                    else (g.float() / amp if amp is not None else g.float())
                    for g, leaf in zip(got[:n], leaves)
                ]
            )
            for param, g in zip(params, got[n:]):
                if g is not None:
                    head_grads.setdefault(param, []).append((t, g))
        return feat_grads, head_grads

    def _param_gram(self, capture: _Capture, feat_grads: list[list[Tensor]], amp: Tensor | None) -> Tensor:
        """Gram of per-task gradients over all shared parameters: one backbone pass per task."""
        params = [p for p in capture.module.parameters() if p.requires_grad]
        rows = []
        for grads in feat_grads:
            outs = [(g * amp if amp is not None else g).to(f.dtype) for g, f in zip(grads, capture.feats)]
            got = torch.autograd.grad(capture.feats, params, grad_outputs=outs, retain_graph=True, allow_unused=True)
            flat = torch.cat([g.reshape(-1).float() for g in got if g is not None])
            rows.append([flat / amp if amp is not None else flat])
        return _gram(rows)

    def _reduce(self, gram: Tensor | None, losses: Tensor) -> tuple[Tensor | None, Tensor]:
        """Sums the Gram matrix and losses over DDP ranks (one small all-reduce) and moves them to CPU.

        Each rank's losses are means over its own batch, so the global batch's gradient at the
        shared feature is the concatenation of the ranks' gradients divided by R, and its Gram
        matrix is ``sum_r G_r G_r^T / R^2`` (exact in 'rep' mode). In 'param' mode the ranks'
        parameter gradients overlap; the mean of their Gram matrices (``/ R``) is used, which
        leaves out the cross-rank terms, to avoid all-reducing T parameter-sized vectors.
        """
        needs = gram is not None or self.balancer.uses_losses
        if needs and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world = dist.get_world_size()
            t = losses.numel()
            packed = torch.cat([gram.double().reshape(-1) if gram is not None else losses.new_zeros(0), losses])
            dist.all_reduce(packed)
            losses = packed[-t:] / world
            if gram is not None:
                div = world**2 if self.balancer.mode != "param" else world
                gram = packed[:-t].reshape(t, t) / div
        return (gram.double().cpu() if gram is not None else None), losses.cpu()

    def _log(self, names: list[str], gram: Tensor | None, weights: Tensor, balancer: ModalityGradBalancer | None):
        """Writes this iteration's statistics as ``train/grad_balance/...`` scalars to the message hub."""
        scalars = {f"grad_balance/weight.{n}": float(w) for n, w in zip(names, weights)}
        if gram is not None:
            norms = gram.diagonal().clamp_min(0).sqrt()
            for i, name in enumerate(names):
                scalars[f"grad_balance/grad_norm.{name}"] = float(norms[i])
                for j in range(i + 1, len(names)):
                    denom = float(norms[i] * norms[j])
                    cos = float(gram[i, j]) / denom if denom > 0 else 0.0
                    scalars[f"grad_balance/cos.{name}.{names[j]}"] = cos
        if balancer is not None and balancer.last is not None and len(balancer.names) >= 2:
            before, after = balancer.last["before"].cpu(), balancer.last["after"].cpu()
            for k, name in enumerate(balancer.names):
                scalars[f"grad_balance/modality_grad_norm.{name}.before"] = float(before[k])
                scalars[f"grad_balance/modality_grad_norm.{name}.after"] = float(after[k])
            first, second = balancer.names[:2]
            for stage, norms in (("before", before), ("after", after)):
                ratio = float(norms[0] / norms[1]) if norms[1] > 0 else float("inf")
                scalars[f"grad_balance/{first}_{second}_ratio.{stage}"] = ratio
        for key, value in scalars.items():
            self.message_hub.update_scalar(f"train/{key}", value)
        self.last_stats = scalars

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """The optimizer state plus the rule's state (log-variances, DWA history, EMA, ...)."""
        state = super().state_dict()
        state["balancer"] = self.balancer.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        balancer_state = state_dict.pop("balancer", None)
        if balancer_state is not None:
            self.balancer.load_state_dict(balancer_state)
        super().load_state_dict(state_dict)

    def __repr__(self) -> str:
        return super().__repr__() + f"balancer: {self.balancer}\n"
