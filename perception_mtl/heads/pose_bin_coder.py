"""Hopenet-style angle bins: classification targets and the softmax-expectation decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class PoseBinCoder:
    """Angles in degrees <-> ``num_bins`` bins of ``bin_width`` degrees starting at ``low``.

    The defaults are MOS's: 66 bins of 3 degrees over [-99, 99). Bin ``k`` covers
    ``[low + k w, low + (k + 1) w)``; an angle is *valid* when it lies in [low, high), and only
    valid angles get a class target. Decoding is the expectation of the bin centres
    ``low + (k + 0.5) w`` under the softmax of the logits. MOS's ``detect_picture.py`` (like
    Hopenet) uses ``sum(p_k k) * 3 - 99``, the expected left *edge*, which is biased by half a
    bin (-1.5 degrees); the centres make a one-hot decode land within w / 2 of the angle.

    Args:
        num_bins: number of bins (66).
        bin_width: degrees per bin (3).
        low: lower edge of the first bin (-99).
    """

    def __init__(self, num_bins: int = 66, bin_width: float = 3.0, low: float = -99.0) -> None:
        if num_bins < 2 or bin_width <= 0:
            raise ValueError(f"PoseBinCoder: need num_bins >= 2 and bin_width > 0, got {num_bins}, {bin_width}")
        self.num_bins = int(num_bins)
        self.bin_width = float(bin_width)
        self.low = float(low)

    @property
    def high(self) -> float:
        """Upper (open) end of the binned range (99 for the defaults)."""
        return self.low + self.num_bins * self.bin_width

    def valid(self, angles: Tensor) -> Tensor:
        """Bool mask of angles inside [low, high) (and finite)."""
        return torch.isfinite(angles) & (angles >= self.low) & (angles < self.high)

    def encode(self, angles: Tensor) -> Tensor:
        """Angles (...) in degrees -> int64 bin indices (...); out-of-range angles are clamped (mask them
        with :meth:`valid`)."""
        index = torch.floor((angles - self.low) / self.bin_width)
        return index.nan_to_num(0).clamp(0, self.num_bins - 1).long()

    def bin_centres(self, device=None, dtype=torch.float32) -> Tensor:
        """(num_bins,) bin centres in degrees."""
        return self.low + (torch.arange(self.num_bins, device=device, dtype=dtype) + 0.5) * self.bin_width

    def decode(self, logits: Tensor) -> Tensor:
        """(..., num_bins) logits -> (...) expected angle in degrees."""
        probs = logits.softmax(-1)
        return (probs * self.bin_centres(logits.device, probs.dtype)).sum(-1)

    def cross_entropy(self, logits: Tensor, target: Tensor, label_sigma: float = 0.0) -> Tensor:
        """Mean cross-entropy of (N, num_bins) logits with the bins of ``target`` (N,): one-hot on the bin
        holding it, or with ``label_sigma`` > 0 a Gaussian over the bin centres (sigma in the target's
        units; targets outside the bins land on the end bins)."""
        if label_sigma <= 0:
            return F.cross_entropy(logits, self.encode(target))
        centres = self.bin_centres(logits.device, logits.dtype)
        label = torch.softmax(-0.5 * ((centres[None] - target[:, None]) / label_sigma) ** 2, -1)
        return -(label * F.log_softmax(logits, -1)).sum(-1).mean()
