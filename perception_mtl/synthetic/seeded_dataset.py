"""The skeleton of the datasets generated on the fly: splits on disjoint seed streams, one seeded generator per sample.

Sample ``i`` of a split is drawn from ``np.random.default_rng(seed + SPLIT_SEED_OFFSET[split] + i)``
and from nothing else, so an item is the same whatever the order, worker or epoch it is read in,
and train / val / test never share a scene as long as a split has at most
``SPLIT_SEED_OFFSET['val']`` samples (checked).
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

# First seed of each split's stream, relative to the base seed.
SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


class SeededGeneratedDataset(Dataset):
    """Base of the generated datasets: split, length, per-sample generator and index checks.

    A subclass sets ``METAINFO``, checks its own settings in ``__init__`` after calling this one,
    and implements :meth:`generate`.

    Args:
        split: 'train', 'val' or 'test'; selects a disjoint seed stream.
        num_samples: samples in the split, in [1, ``SPLIT_SEED_OFFSET['val']``] (more would let a
            split's seed stream run into the next split's).
        seed: base seed.

    Attributes:
        seed: the split's first seed (``seed + SPLIT_SEED_OFFSET[split]``); sample ``i`` uses ``seed + i``.
        metainfo: a copy of ``METAINFO``.
    """

    METAINFO: dict = {}

    def __init__(self, split: str, num_samples: int, seed: int) -> None:
        name = type(self).__name__
        if split not in SPLIT_SEED_OFFSET:
            raise ValueError(f"{name}: split must be one of {list(SPLIT_SEED_OFFSET)}, got {split!r}")
        if not 1 <= num_samples <= SPLIT_SEED_OFFSET["val"]:
            raise ValueError(f"{name}: num_samples must be in [1, {SPLIT_SEED_OFFSET['val']}], got {num_samples}")
        self.split = split
        self.num_samples = num_samples
        self.seed = seed + SPLIT_SEED_OFFSET[split]
        self.metainfo = dict(self.METAINFO)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"{type(self).__name__}({self.split}): index {index} out of range {self.num_samples}")
        return self.generate(index, np.random.default_rng(self.seed + index))

    def generate(self, index: int, rng: np.random.Generator) -> dict:
        """Sample ``index`` of the split, drawn from ``rng`` only: ``dict(inputs=..., data_samples=...)``."""
        raise NotImplementedError
