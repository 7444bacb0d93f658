"""Geometry-keyed cache of :class:`SparseBEVPoolPlan` (one per camera rig + augmentation)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import Tensor

from perception_mtl.models.view_transforms.sparse_bev_pool import SparseBEVPoolPlan
from perception_mtl.structures import SensorCalibration

_MATRICES = ("cam2img", "lidar2cam", "img_aug", "lidar_aug")


class SparseBEVPoolCache:
    """Keeps the last ``max_entries`` pooling plans, keyed by the exact geometry that fixes them.

    The key is the batch's calibration matrices (``cam2img``, ``lidar2cam``, ``img_aug``,
    ``lidar_aug``; compared value by value, so any change of calibration, image augmentation or BEV
    augmentation misses) plus a hashable ``extra`` key for everything else the pattern depends on
    (feature-map and image sizes, grid). Unlike UniTR's fixed-mapping cache this is exact: a plan is
    only re-used for the very geometry it was built from. Under per-sample random augmentation every
    batch misses and the plan is rebuilt (the ``bev_pool`` benchmark measures that this still pays).

    Args:
        max_entries: plans kept (least recently used dropped first); 1 covers a fixed rig, 2 also
            alternating train / val geometries.

    Attributes:
        hits, misses: lookups served from the cache / that built a new plan.
    """

    def __init__(self, max_entries: int = 1) -> None:
        if max_entries < 1:
            raise ValueError(f"SparseBEVPoolCache: max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[int, tuple[Hashable, tuple[Tensor, ...], SparseBEVPoolPlan]] = OrderedDict()
        self._next_id = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def get(
        self, calib: SensorCalibration, extra: Hashable, build: Callable[[], SparseBEVPoolPlan]
    ) -> SparseBEVPoolPlan:
        """The plan of this geometry: cached when the matrices and ``extra`` match, else ``build()``."""
        matrices = tuple(getattr(calib, name) for name in _MATRICES)
        for entry_id, (entry_extra, entry_mats, plan) in self._entries.items():
            if entry_extra == extra and all(_same(a, b) for a, b in zip(entry_mats, matrices)):
                self._entries.move_to_end(entry_id)
                self.hits += 1
                return plan
        self.misses += 1
        plan = build()
        self._entries[self._next_id] = (extra, tuple(m.detach().clone() for m in matrices), plan)
        self._next_id += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return plan


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
